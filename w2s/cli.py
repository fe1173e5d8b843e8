"""The command line: LightningCLI (fit / validate / test) with a top-level ``trust:`` block, plus compare and chain."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Optional, TextIO

import torch
import yaml
from jsonargparse.typing import import_object
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

import students  # noqa: F401  (registers the students for class_path short names)
import trust_functions  # noqa: F401  (registers the trust functions)
from students.lora import LoRAStudent
from trust_functions.base import TrustFunction
from w2s.cache import atomic_write_text, cached_json, stable_hash
from w2s.config import expand_configs, instantiate
from w2s.data import W2SDataModule
from w2s.errors import w2s_error_in
from w2s.hub import preflight
from w2s.models import fast_dtype
from w2s.protocol import run_protocol
from w2s.report import log_run, run_results, save_run, summary
from w2s.teacher import model_fingerprint

# bump when a change to the evaluation code changes what a cached base accuracy would be (2: likelihood evaluation
# scores the options from their prompt's key/value cache, which can flip a near-tie)
EVALUATION_VERSION = 2
COMMANDS = {
    "fit": "run the protocol (teacher pass, trust fit, selection) and train the student on the trusted subset",
    "validate": "evaluate the student on the target test split",
    "test": "evaluate the student on the target test split (as validate, logged as test)",
    "compare": "the comparison table: every trust function (row) × seeds under one protocol",
    "chain": "the weak-to-strong chain: each generation's student becomes the next teacher",
    "inspect": "a run's most trusted wrong and least trusted right weak labels (its trust_scores.parquet)",
}


class W2SCLI(LightningCLI):
    """``fit`` runs the whole protocol (``w2s.protocol.run_protocol``), measures the student on the target test
    split before training (base) and after (final) and writes ``results.json`` and the resolved ``config.yaml``
    into its log directory; ``validate`` / ``test`` evaluate the student."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {name: args for name, args in LightningCLI.subcommands().items() if name in COMMANDS}

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_subclass_arguments(TrustFunction, "trust", instantiate=False, required=True,
                                      help="The trust function (any TrustFunction subclass, e.g. Naive).")
        # the student's checkpoint after every epoch (last.ckpt): what an interrupted fit resumes from
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 0,
                             "checkpoint.save_on_train_epoch_end": True, "checkpoint.every_n_epochs": 1})
        parser.link_arguments("trust", "data.trust", apply_on="parse")
        parser.add_argument("--chain", type=Optional[dict], default=None,
                            help="The chain command's settings (main.py chain --help); fit ignores them.")
        # the student is any LoRAStudent (class_path), LoRASFTStudent when a config gives its arguments alone
        parser.set_defaults({"model": {"class_path": "students.LoRASFTStudent"}})

    def before_instantiate_classes(self) -> None:
        """Check hub access (before anything is loaded or written), then resume an interrupted ``fit``: the
        latest run directory of the same logger with a student checkpoint, no results.json and the same
        resolved config continues from its checkpoint, in place."""
        config = self.config[self.subcommand]
        preflight(hub_references(config))
        if self.subcommand != "fit":
            return
        self._fingerprint = run_fingerprint(config)
        logger = config.trainer.logger
        init = getattr(logger, "init_args", None)  # the logger is a bool or a class_path/init_args node
        if init is None or config.ckpt_path or not issubclass(import_object(logger.class_path), TensorBoardLogger):
            return
        root = Path(init.save_dir) / (init.name or "")
        candidates = ([root / str(init.version)] if init.version is not None
                      else sorted(root.glob("version_*"), key=lambda p: int(p.name.split("_")[-1])
                                  if p.name.split("_")[-1].isdigit() else -1)[-1:])
        for run in candidates:
            stamp, last = run / "run.json", run / "checkpoints" / "last.ckpt"
            if (not (run / "results.json").exists() and last.is_file() and stamp.is_file()
                    and json.loads(stamp.read_text()).get("fingerprint") == self._fingerprint):
                init.version, config.ckpt_path = run.name, str(last)
                print(f"resuming the interrupted run in {run} from {last}", file=sys.stderr)

    def before_fit(self) -> None:
        if self.trainer.is_global_zero:  # under DDP every rank runs this; one writes
            atomic_write_text(self._log_dir() / "run.json", json.dumps({"fingerprint": self._fingerprint}))
        data = self.datamodule
        self.subset = run_protocol(data.task, data.teacher, data.trust, data.selection)
        data.connect(self.model, self.subset)
        self.base = self._base_accuracy()

    def before_validate(self) -> None:
        self.datamodule.connect(self.model)  # evaluation reads the test split only: no protocol

    before_test = before_validate

    def after_fit(self) -> None:
        final = self._evaluate(self.trainer.test, "student/test_accuracy")
        results = run_results(self.subset, self.config.fit.get("seed_everything"), self.base, final)
        if not self.trainer.is_global_zero:  # evaluation above is collective; files and logs are rank 0's
            return
        save_run(self._log_dir(), results, self.model, self.subset, self._test_correct())
        if self.trainer.logger is not None:
            log_run(self.trainer.logger, results, self.subset, self.trainer.global_step)
        print(summary(results, self._log_dir()))

    def _log_dir(self) -> Path:
        return Path(self.trainer.log_dir or ".")

    def _test_correct(self) -> list[tuple[str, bool]] | None:
        """Each test example's correctness after training, by id (one process only: under DDP each rank sees a
        padded share of the split)."""
        if self.trainer.world_size > 1:
            return None
        correct = torch.cat(self.model.test_correct).tolist()
        return [(row["id"], bool(c)) for row, c in zip(self.datamodule.evaluation_rows(), correct, strict=True)]

    def _base_accuracy(self) -> tuple[float, dict[str, float]]:
        """The untrained student's accuracy. It is the same for every trust function and seed of a setting (a new
        LoRA adapter starts as the identity), so it is measured once and cached under ``$W2S_CACHE/base``, keyed by
        the student checkpoint and dtype, the evaluation rows as token ids, the task, and the trainer's device,
        precision, validation limit and batch size. Under several processes it is measured every time (the ranks
        would have to agree on a cache hit)."""
        def measure() -> tuple[float, dict[str, float]]:
            return self._evaluate(self.trainer.validate, "student/accuracy")

        if self.trainer.world_size > 1:
            return measure()
        data, hparams, trainer = self.datamodule, dict(self.model.hparams), self.trainer
        key = {"version": EVALUATION_VERSION, "student": model_fingerprint(hparams.get("model", "")),
               "class": type(self.model).__name__, "dtype": fast_dtype(hparams.get("dtype", "float32")),
               "max_new_tokens": hparams.get("max_new_tokens"), "task": data.student_task.fingerprint(),
               "rows": stable_hash(data.evaluation_rows(), 64), "eval_batch_size": data.eval_batch_size,
               "trainer": {"accelerator": type(trainer.accelerator).__name__, "precision": str(trainer.precision),
                           "limit_val_batches": trainer.limit_val_batches}}
        (base, by), cached = cached_json("base", key, measure)
        if cached and trainer.logger is not None:  # what the measuring validate would have logged
            trainer.logger.log_metrics({"student/accuracy": base, **{f"student/accuracy/{k}": v
                                                                     for k, v in by.items()}}, step=0)
        return base, by

    def _evaluate(self, method, key: str) -> tuple[float, dict[str, float]]:
        """Student accuracy on the test split: the mean over its benchmarks (the paper's average), and each one's
        when it mixes several (else an empty dict)."""
        method(self.model, datamodule=self.datamodule, verbose=False)
        metrics = self.trainer.callback_metrics
        by = {name: float(metrics[f"{key}/{name}"]) for name in self.datamodule.eval_groups
              if f"{key}/{name}" in metrics}
        return (sum(by.values()) / len(by) if by else float(metrics[key])), by


class _Parsed(Exception):
    """Carries a parsed config out of a ``W2SCLI`` that must not instantiate anything."""

    def __init__(self, config: dict) -> None:
        self.config = config


class _ParseOnly(W2SCLI):
    def before_instantiate_classes(self) -> None:
        raise _Parsed(yaml.safe_load(self.parser.dump(self.config, skip_none=False))["fit"])


def parse_fit_config(args: list[str]) -> dict[str, Any]:
    """The resolved ``fit`` config of ``args`` (already expanded), parsed exactly as ``fit`` parses it."""
    argv = sys.argv
    sys.argv = argv[:1]  # LightningCLI warns when it is given args while sys.argv holds some too
    try:
        _ParseOnly(LoRAStudent, W2SDataModule, subclass_mode_model=True, args=["fit", *args], run=True)
    except _Parsed as parsed:
        return parsed.config
    finally:
        sys.argv = argv
    raise AssertionError("unreachable: _ParseOnly always raises _Parsed")


def hub_references(config) -> list[tuple[str, str, str]]:
    """(kind, name, config key) of every model and dataset a resolved config names (hub ids or not)."""
    refs = [("model", config.model.init_args.model, "model.model")]
    if config.data.teacher.init_args.get("outputs_dir") is None:  # outside outputs: the pass needs no model
        refs.append(("model", config.data.teacher.init_args.model, "data.teacher.model"))
    refs += [("model", name, "trust.init_args.model") for name in instantiate(config.trust).hub_models()]
    refs += [("dataset", name, "data.task.init_args.data_dir") for name in instantiate(config.data.task).hub_datasets()]
    return refs


def run_fingerprint(config) -> str:
    """Hash of a fit's resolved config without what only names the run (logger version, checkpoint path)."""
    tree = config.clone().as_dict()
    tree.pop("ckpt_path", None)
    logger = tree.get("trainer", {}).get("logger")
    if isinstance(logger, dict):
        logger.get("init_args", {}).pop("version", None)
    return stable_hash(tree)


def usage() -> str:
    """The command overview ``main.py --help`` prints (each command's own ``--help`` lists its options)."""
    lines = ["usage: main.py {" + ",".join(COMMANDS) + "} ...", "", "commands:"]
    lines += [f"  {name:<10}{text}" for name, text in COMMANDS.items()]
    lines += ["", "main.py <command> --help shows a command's options; configs/toy.yaml runs the toy pipeline:",
              "  python main.py fit --config configs/toy.yaml"]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    """Entry point of ``main.py``: ``compare ...`` runs the comparison table, ``chain ...`` the weak-to-strong
    chain, ``fit`` / ``validate`` / ``test`` are LightningCLI.
    A W2SError (also one wrapped by jsonargparse) becomes one ``error:`` line and exit status 2."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(usage())
        elif argv[0] == "compare":
            from w2s.compare import main as compare

            compare(argv[1:])
        elif argv[0] == "chain":
            from w2s.chain import main as chain

            chain(argv[1:])
        elif argv[0] == "inspect":
            from w2s.trust_scores import main as inspect

            inspect(argv[1:])
        else:
            expanded = expand_configs(argv)
            if args is None:  # a DDP launcher reruns sys.argv: it must carry the expanded configs too
                sys.argv[1:] = expanded
            W2SCLI(LoRAStudent, W2SDataModule, subclass_mode_model=True, save_config_kwargs={"overwrite": True},
                   args=None if args is None else expanded)
    except Exception as e:  # noqa: BLE001  (a W2SError may arrive wrapped by jsonargparse's instantiation)
        error = w2s_error_in(e)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run_here(args: list[str], out: TextIO, err: TextIO) -> int:
    """``main(args)`` in this process, its output written to ``out`` / ``err``; returns the exit status its own
    process would have had (an exception other than SystemExit propagates)."""
    argv = sys.argv
    sys.argv = [argv[0], *args]  # exactly as from the command line (main may rewrite it, as for DDP)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            return 0
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else int(e.code is not None)
        finally:
            sys.argv = argv


if __name__ == "__main__":
    main()
