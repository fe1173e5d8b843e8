"""``python -m w2s.label``: the teacher pass of a config on several devices (see ``w2s.distributed``).

    python -m w2s.label --config configs/ntf_mmlu.yaml --devices 8 --accelerator gpu --strategy ddp
    python main.py fit --config configs/ntf_mmlu.yaml     # then reads the merged cache
"""

from __future__ import annotations

import argparse
import sys

import yaml
from jsonargparse import ArgumentParser

from w2s.errors import W2SError


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(prog="python -m w2s.label", description=__doc__.splitlines()[0])
    cli.add_argument("--config", required=True, help="a fit config; its data.task and data.teacher are used")
    cli.add_argument("--devices", default="auto")
    cli.add_argument("--accelerator", default="auto")
    cli.add_argument("--strategy", default="auto")
    cli.add_argument("--num_nodes", type=int, default=1)
    args = cli.parse_args(argv)
    try:
        task, teacher = data_from_config(args.config)
        from w2s.distributed import default_trainer, label_distributed
        from w2s.hub import preflight

        datasets_ = task.hub_datasets() if hasattr(task, "hub_datasets") else []
        preflight([("model", teacher.model, "data.teacher.model"),
                   *(("dataset", d, "data.task.init_args.data_dir") for d in datasets_)])

        devices = int(args.devices) if str(args.devices).isdigit() else args.devices
        trainer = default_trainer(devices, args.accelerator, args.strategy, args.num_nodes)
        splits = task.load()
        outputs = label_distributed(teacher, task, {"source": splits["source"], "target": splits["target"]},
                                    trainer)
        if trainer.global_rank == 0:
            for name, out in outputs.items():
                print(f"{name}: {len(out)} examples, teacher accuracy {out.accuracy:.3f}, {out.n_unparsed} unparsed")
    except W2SError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def data_from_config(path: str):
    """The task and teacher a fit config describes (its ``data`` block, parsed as ``fit`` parses it)."""
    from w2s.tasks.base import Task
    from w2s.teacher import Teacher

    try:
        data = yaml.safe_load(open(path))["data"]
    except (OSError, yaml.YAMLError) as e:
        raise W2SError(f"cannot read config {path} ({e})") from None
    except (KeyError, TypeError):
        raise W2SError(f"config {path} has no 'data:' block with task and teacher") from None
    parser = ArgumentParser()
    parser.add_argument("--task", type=Task, required=True)
    parser.add_argument("--teacher", type=Teacher, required=True)
    teacher = data["teacher"] if "class_path" in data["teacher"] else {"class_path": "w2s.teacher.Teacher",
                                                                      "init_args": data["teacher"]}
    config = parser.parse_object({"task": data["task"], "teacher": teacher})
    objects = parser.instantiate_classes(config)
    return objects.task, objects.teacher


if __name__ == "__main__":
    main()
