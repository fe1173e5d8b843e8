"""``python -m w2s.label``: the teacher pass of a config on several devices (see ``w2s.distributed``).

    python -m w2s.label --config configs/ntf_mmlu.yaml --devices 8 --accelerator gpu --strategy ddp
    python main.py fit --config configs/ntf_mmlu.yaml     # then reads the merged cache
"""

from __future__ import annotations

import argparse
import sys

from w2s.errors import W2SError


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(prog="python -m w2s.label", description=__doc__.splitlines()[0])
    cli.add_argument("--config", required=True, help="a fit config; its data.task and data.teacher are used")
    cli.add_argument("--devices", default="auto")
    cli.add_argument("--accelerator", default="auto")
    cli.add_argument("--strategy", default="auto")
    cli.add_argument("--num_nodes", type=int, default=1)
    cli.add_argument("--export", default=None, metavar="DIR",
                     help="also write the pass as outside teacher outputs (w2s/outside.py) into DIR: what "
                          "data.teacher.outputs_dir reads")
    args, overrides = cli.parse_known_args(argv)
    try:
        from w2s.config import instantiate, resolve_config
        from w2s.distributed import default_trainer, label_distributed
        from w2s.hub import preflight

        config = resolve_config(["--config", args.config, *overrides])  # parsed exactly as fit parses it
        task, teacher = instantiate(config["data"]["task"]), instantiate(config["data"]["teacher"])
        teacher = teacher.with_features(instantiate(config["trust"]).teacher_features())  # what fit will read
        preflight([("model", teacher.model, "data.teacher.model"),
                   *(("dataset", d, "data.task.init_args.data_dir") for d in task.hub_datasets())])

        devices = int(args.devices) if str(args.devices).isdigit() else args.devices
        trainer = default_trainer(devices, args.accelerator, args.strategy, args.num_nodes)
        splits = task.load()
        outputs = label_distributed(teacher, task, {"source": splits["source"], "target": splits["target"]},
                                    trainer)
        if trainer.global_rank == 0:
            for name, out in outputs.items():
                print(f"{name}: {len(out)} examples, teacher accuracy {out.accuracy:.3f}, {out.n_unparsed} unparsed")
                if args.export:
                    from w2s.outside import export_outputs

                    export_outputs(out, args.export, name)
            if args.export:
                print(f"outside teacher outputs written to {args.export}")
    except W2SError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
