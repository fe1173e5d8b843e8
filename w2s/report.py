"""What a ``fit`` run leaves behind: ``results.json``, the student's adapter, a reusable trust function, logger
scalars, figures and HParams, and the summary it prints. Plain functions: the CLI calls them, and so can a script."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger

from w2s.cache import atomic_write_text
from w2s.protocol import TrustedSubset


def run_results(subset: TrustedSubset, seed: int | None, base: tuple[float, dict[str, float]],
                final: tuple[float, dict[str, float]]) -> dict[str, Any]:
    """``results.json`` of one run: the protocol's report, the seed and the student's accuracy before and after
    training (each: the mean over the test split's benchmarks, and each benchmark's when it mixes several)."""
    results = subset.report | {"seed": seed}
    results["student"] = {"accuracy": {"base": base[0], "final": final[0]}}
    if final[1]:
        results["student"]["accuracy_by_benchmark"] = {
            name: {"base": base[1][name], "final": value} for name, value in final[1].items()}
    return results


def save_run(log_dir: Path, results: dict, student, subset: TrustedSubset,
             test_correct: list[tuple[str, bool]] | None = None) -> None:
    """The adapter, the fitted trust function where others can reuse it, every target example's trust score
    (``trust_scores.parquet``), each test example's correctness (``student_test.csv``: id, correct — for paired
    comparisons between runs), then ``results.json`` (written last: its presence marks a finished run)."""
    from w2s.trust_scores import write_trust_scores

    student.save_adapter(log_dir / "student_adapter")
    write_trust_scores(log_dir, subset.trust_scores())
    if subset.trust.reusable:
        subset.trust.save(log_dir / "trust_function.pt")
    if test_correct is not None:
        table = io.StringIO()
        csv.writer(table, lineterminator="\n").writerows([("id", "correct"), *((i, int(c)) for i, c in test_correct)])
        atomic_write_text(log_dir / "student_test.csv", table.getvalue())
    atomic_write_text(log_dir / "results.json", json.dumps(results, indent=2, default=float))


def log_run(logger: Logger, results: dict, subset: TrustedSubset, step: int) -> None:
    """Every number of ``results`` as a scalar, the trust figures (TensorBoard), and one HParams row: trust
    function, n, seed, labels → student accuracy and trust AUC (``compare`` adds ``hp/recovery``)."""
    logger.log_metrics({k: v for k, v in flatten(results).items() if isinstance(v, (int, float)) and k != "seed"},
                       step=step)
    if isinstance(logger, TensorBoardLogger):  # figures need its SummaryWriter
        from w2s.plots import trust_figures  # matplotlib loads only when a figure is drawn

        chosen = None if subset.trust.keep_all else results["selection"]["n"]
        for tag, figure in trust_figures(subset.scores, subset.correct, chosen, results["selection"]).items():
            logger.experiment.add_figure(tag, figure, global_step=step)
    params = {"trust": results["trust"]["name"], "n": results["selection"]["n"],
              "seed": results["seed"] if results["seed"] is not None else -1, "labels": results["selection"]["labels"]}
    values = {"hp/student_accuracy": results["student"]["accuracy"]["final"], "hp/trust_auc": results["trust"]["auc"]}
    logger.log_hyperparams(params, {k: v for k, v in values.items() if not math.isnan(v)}, step=step)
    logger.finalize("success")


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
