"""The command line: LightningCLI with a top-level ``trust:`` block, base/final evaluation and results.json."""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

import students  # noqa: F401  (registers the students for class_path short names)
import trust_functions  # noqa: F401  (registers the trust functions)
from students.lora import LoRAStudent
from trust_functions.base import TrustFunction
from w2s.cache import atomic_write_text, stable_hash
from w2s.data import W2SDataModule
from w2s.errors import W2SError, w2s_error_in
from w2s.hub import preflight


class W2SCLI(LightningCLI):
    """``fit`` runs the whole protocol: teacher pass → trust fit → selection → student; ``validate``/``test``
    evaluate. A ``fit`` run measures the student before training (base) and after (final) on the target test
    split and writes ``results.json`` and the resolved ``config.yaml`` into its log directory."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_subclass_arguments(TrustFunction, "trust", instantiate=False, required=True,
                                      help="The trust function (any TrustFunction subclass, e.g. Naive).")
        # the student's checkpoint after every epoch (last.ckpt): what an interrupted fit resumes from
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 0,
                             "checkpoint.save_on_train_epoch_end": True, "checkpoint.every_n_epochs": 1})
        parser.link_arguments("trust", "data.trust", apply_on="parse")
        # the student is any LoRAStudent (class_path), LoRASFTStudent when a config gives its arguments alone
        parser.set_defaults({"model": {"class_path": "students.LoRASFTStudent"}})
        parser.link_arguments("model.init_args.model", "data.student", apply_on="parse")

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
        init = getattr(logger, "init_args", None)
        if init is None or config.ckpt_path or not str(logger.class_path).endswith("TensorBoardLogger"):
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
        log_dir = Path(self.trainer.log_dir or ".")
        if self.trainer.is_global_zero:  # under DDP every rank runs this; one writes
            atomic_write_text(log_dir / "run.json", json.dumps({"fingerprint": getattr(self, "_fingerprint", None)}))
        self.base, self.base_by = self._evaluate(self.trainer.validate, "student/accuracy")

    def after_fit(self) -> None:
        final, final_by = self._evaluate(self.trainer.test, "student/test_accuracy")
        results = self.datamodule.report | {"seed": self.config.fit.get("seed_everything")}
        results["student"] = {"accuracy": {"base": self.base, "final": final}}
        if final_by:
            results["student"]["accuracy_by_benchmark"] = {
                name: {"base": self.base_by[name], "final": value} for name, value in final_by.items()}
        log_dir = Path(self.trainer.log_dir or ".")
        if not self.trainer.is_global_zero:  # evaluation above is collective; files and logs are rank 0's
            return
        self.model.save_adapter(log_dir / "student_adapter")
        if callable(getattr(self.datamodule.trust, "save", None)):  # a fitted trust function others can reuse
            self.datamodule.trust.save(log_dir / "trust_function.pt")
        atomic_write_text(log_dir / "results.json", json.dumps(results, indent=2, default=float))
        if self.trainer.logger is not None:
            scalars = {k: v for k, v in flatten(results).items() if isinstance(v, (int, float)) and k != "seed"}
            self.trainer.logger.log_metrics(scalars, step=self.trainer.global_step)
            self._log_figures()
            self._log_hparams(results)
            self.trainer.logger.finalize("success")
        print(summary(results, log_dir))

    def _log_figures(self) -> None:
        """Reliability diagram, ROC, score histogram and purity-vs-n of the trust function (TensorBoard only)."""
        experiment = getattr(self.trainer.logger, "experiment", None)
        dm = self.datamodule
        if not hasattr(experiment, "add_figure") or dm.target_scores is None:
            return
        from w2s.plots import trust_figures  # matplotlib loads only when a figure is drawn

        chosen = None if dm.trust.keep_all else dm.report["selection"]["n"]
        for tag, figure in trust_figures(dm.target_scores, dm.target_correct, chosen).items():
            experiment.add_figure(tag, figure, global_step=self.trainer.global_step)

    def _log_hparams(self, results: dict) -> None:
        """One row of TensorBoard's HParams dashboard: trust function, n, seed → student accuracy, trust AUC and
        recovery (``compare`` writes ``hp/recovery`` once the ground-truth row of the seed has run)."""
        experiment = getattr(self.trainer.logger, "experiment", None)
        if not hasattr(experiment, "_get_file_writer"):
            return
        from torch.utils.tensorboard.summary import hparams

        params = {"trust": results["trust"]["name"], "n": results["selection"]["n"],
                  "seed": results["seed"] if results["seed"] is not None else -1,
                  "labels": results["selection"]["labels"]}
        values = {"hp/student_accuracy": results["student"]["accuracy"]["final"],
                  "hp/trust_auc": results["trust"]["auc"], "hp/recovery": float("nan")}
        step = self.trainer.global_step
        writer = experiment._get_file_writer()
        for summary_ in hparams(params, values):
            writer.add_summary(summary_, step)
        for tag in ("hp/student_accuracy", "hp/trust_auc"):
            experiment.add_scalar(tag, values[tag], step)
        experiment.flush()

    def _evaluate(self, method, key: str) -> tuple[float, dict[str, float]]:
        """Student accuracy on the test split: the mean over its benchmarks (the paper's average), and each one's
        when it mixes several (else an empty dict)."""
        method(self.model, datamodule=self.datamodule, verbose=False)
        metrics = self.trainer.callback_metrics
        by = {name: float(metrics[f"{key}/{name}"]) for name in self.datamodule.eval_groups
              if f"{key}/{name}" in metrics}
        return (sum(by.values()) / len(by) if by else float(metrics[key])), by


def hub_references(config) -> list[tuple[str, str, str]]:
    """(kind, name, config key) of every model and dataset a resolved config names (hub ids or not)."""
    refs = [("model", config.model.init_args.model, "model.model"),
            ("model", config.data.teacher.init_args.model, "data.teacher.model")]
    trust_args = getattr(config.get("trust"), "init_args", None)
    if trust_args is not None and isinstance(trust_args.get("model"), str):
        refs.append(("model", trust_args.model, "trust.init_args.model"))
    task = config.data.task
    module, _, name = task.class_path.rpartition(".")
    task_class = getattr(importlib.import_module(module), name)
    if hasattr(task_class, "hub_datasets"):  # reading the references instantiates nothing heavy
        refs += [("dataset", d, "data.task.init_args.data_dir")
                 for d in task_class(**task.init_args.as_dict()).hub_datasets()]
    return refs


def run_fingerprint(config) -> str:
    """Hash of a fit's resolved config without what only names the run (logger version, checkpoint path)."""
    tree = config.clone().as_dict()
    tree.pop("ckpt_path", None)
    logger = tree.get("trainer", {}).get("logger")
    if isinstance(logger, dict):
        logger.get("init_args", {}).pop("version", None)
    return stable_hash(tree)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a/b": 1}`` (TensorBoard tag names)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(flatten(value, name + "/") if isinstance(value, dict) else {name: value})
    return flat


def summary(results: dict, log_dir: Path) -> str:
    """A short human-readable account of one run."""
    t, s, st = results["teacher"]["accuracy"], results["trust"], results["student"]["accuracy"]
    auc = "n/a" if math.isnan(s["auc"]) else f"{s['auc']:.3f}"
    return "\n".join([
        "",
        f"w2s-trust · {s['name']} · seed {results['seed']}",
        f"  teacher accuracy      source {t['source']:.3f} · target {t['target']:.3f}",
        f"  trust on target       AUC {auc} · ECE {s['ece']:.3f} · Brier {s['brier']:.3f}",
        f"  trusted subset        n = {results['selection']['n']} ({results['selection']['labels']} labels) · "
        f"purity {s['purity']:.3f}",
        f"  student accuracy      base {st['base']:.3f} → final {st['final']:.3f}",
        f"  results               {log_dir / 'results.json'}",
    ])


def main(args: list[str] | None = None) -> None:
    """Entry point of ``main.py``: ``compare ...`` runs the comparison table, ``chain ...`` the weak-to-strong
    chain, anything else is LightningCLI.
    A W2SError (also one wrapped by jsonargparse) becomes one ``error:`` line and exit status 2."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv[:1] == ["compare"]:
            from w2s.compare import main as compare

            compare(argv[1:])
        elif argv[:1] == ["chain"]:
            from w2s.chain import main as chain

            chain(argv[1:])
        else:
            W2SCLI(LoRAStudent, W2SDataModule, subclass_mode_model=True, save_config_kwargs={"overwrite": True},
                   args=args)
    except Exception as e:  # noqa: BLE001  (a W2SError may arrive wrapped by jsonargparse's instantiation)
        error = w2s_error_in(e)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run_here(args: list[str], out: TextIO, err: TextIO) -> int:
    """``main(args)`` in this process, its output written to ``out`` / ``err``; returns the exit status its own
    process would have had (an exception other than SystemExit propagates)."""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            return 0
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else int(e.code is not None)


if __name__ == "__main__":
    main()
