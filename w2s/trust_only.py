"""``compare --trust_only``: every row's trust function on the cached teacher pass, without training students.

How well a trust function ranks the teacher's weak labels (AUC, ECE, Brier, purity of the selected n) needs only
the teacher pass and the trust fit; the students are most of a comparison's cost. This runs ``run_protocol`` for
each row and seed in this process, with each row's config resolved as its ``fit`` run resolves it, and compares
every row's target AUC with the config's own trust function by a paired bootstrap over target examples (the same
resampled examples for both rows). Target correctness is used to evaluate, never to select. A learned trust
function's numbers can differ from its ``fit`` run's in the last digits: ``fit`` draws the student's LoRA
initialisation from the seeded random stream before the trust fit, this does not.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch

from w2s import metrics
from w2s.cache import atomic_write_text
from w2s.compare import row_config_args
from w2s.config import instantiate, resolve_config
from w2s.errors import W2SError
from w2s.intervals import bootstrap_interval
from w2s.protocol import run_protocol
from w2s.runs import fmt, json_safe

if TYPE_CHECKING:
    from w2s.selection import Selection
    from w2s.tasks.base import Task
    from w2s.teacher import Teacher

COLUMNS = ["trust AUC", "PRR", "AURC", "ECE", "Brier", "purity@n", "n", "source-val AUC"]


def paired_auc_difference(scores: torch.Tensor, reference: torch.Tensor, correct: torch.Tensor,
                          resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUC(scores) − AUC(reference) on ``correct`` and its 95 % percentile interval over ``resamples`` bootstrap
    resamples of the examples (the same resample for both); resamples with one class only are skipped."""
    correct = torch.as_tensor(correct).bool()

    def difference(index) -> float | None:
        index = torch.from_numpy(index)
        c = correct[index]
        return (None if c.all() or not c.any()
                else metrics.rank_auc(scores[index], c) - metrics.rank_auc(reference[index], c))

    low, high = bootstrap_interval(difference, len(correct), resamples, seed)
    return metrics.auc(scores, correct) - metrics.auc(reference, correct), low, high


def row_parts(args: argparse.Namespace, extra: list[str], row: str) -> tuple[Task, Teacher, dict, Selection | None]:
    """The task, teacher, trust function (its config node) and selection of one row, from the row's config as its
    fit resolves it."""
    config = resolve_config([*row_config_args(args, row), *extra])
    data = config["data"]
    return (instantiate(data["task"]), instantiate(data["teacher"]), config["trust"],
            instantiate(data["selection"]) if isinstance(data.get("selection"), dict) else None)


def trust_table(args: argparse.Namespace, extra: list[str]) -> dict:
    """Every trust row × seed on the cached teacher pass; writes trust_table.md / .csv / .json."""
    from w2s.selection import Selection

    rows = [r for r in args.rows if r != "base"]  # (compare's parse_args has left out the student-side rows)
    own = next(r for r, c in args.table.items() if c is args.own)
    if own not in rows:
        raise W2SError(f"--trust_only compares every row with the config's own trust function: add its row "
                       f"'{own}' to --rows")
    values: dict[str, dict[str, list[float]]] = {}
    scores: dict[str, torch.Tensor] = {}
    failed: dict[tuple[str, int], str] = {}
    correct = None
    for row in rows:
        task, teacher, trust_node, selection = row_parts(args, extra, row)
        per_seed = {c: [] for c in COLUMNS}
        for seed in args.seeds:
            L.seed_everything(seed, verbose=False)
            try:
                subset = run_protocol(task, teacher, instantiate(trust_node), selection or Selection())
            except W2SError as error:  # one row's failure (e.g. nothing certifiable) does not stop the others
                failed[row, seed] = f"trust-only row {row}, seed {seed} failed ({error})"
                print(f"[trust_only] {failed[row, seed]}", flush=True)
                for column in COLUMNS:
                    per_seed[column].append(float("nan"))
                continue
            report = subset.report
            ranks = report["trust"]["ranks"]
            for column, value in zip(COLUMNS, [report["trust"]["auc"], report["trust"]["prr"],
                                               report["trust"]["aurc"], report["trust"]["ece"],
                                               report["trust"]["brier"], report["trust"]["purity"],
                                               report["selection"]["n"],
                                               report["trust"]["source_val"].get("auc", float("nan"))]):
                per_seed[column].append(value if ranks or column in ("purity@n", "n") else float("nan"))
            if row not in scores:  # the first seed that finished
                scores[row], correct = subset.scores, subset.correct
        values[row] = per_seed
        print(f"[trust_only] {row}: AUC {fmt(per_seed['trust AUC'], 'auc')}", flush=True)
    if correct is None:
        raise W2SError(next(iter(failed.values())))
    differences = {row: paired_auc_difference(scores[row], scores[own], correct)
                   for row in rows if row != own and own in scores and row in scores
                   and not np.isnan(values[row]["trust AUC"]).all()}
    markdown, table_csv = render(values, differences, own, args.titles, args.seeds)
    if failed:
        markdown += "\n\nFailed runs (their cells are left out):\n" + "\n".join(
            f"- {args.titles[row]}, seed {seed}: {error}" for (row, seed), error in failed.items())
    report = {"seeds": args.seeds, "rows": rows, "table": values, "reference": own,
              "auc_difference_vs_reference": {r: dict(zip(("difference", "low", "high"), d))
                                              for r, d in differences.items()},
              "teacher_accuracy_target": float(correct.float().mean())}
    if failed:
        report["failed"] = {f"{row}/seed{seed}": error for (row, seed), error in failed.items()}
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "trust_table.md", markdown + "\n")
    atomic_write_text(out / "trust_table.csv", table_csv)
    atomic_write_text(out / "trust_table.json", json.dumps(json_safe(report), indent=2))
    print(f"\n{markdown}\n\n(trust_table.md, .csv and .json in {out})")
    return report


def mean_cell(values: list[float]) -> str:
    """The CSV cell of a column: the mean over the seeds that finished, empty where none did."""
    v = np.asarray(values, dtype=float)
    return "" if np.isnan(v).all() else f"{np.nanmean(v):.6g}"


def render(values: dict, differences: dict, own: str, titles: dict, seeds: list[int]) -> tuple[str, str]:
    """Markdown and CSV: each column's mean ± std over seeds, and each row's AUC minus the reference row's."""
    delta = f"AUC − {titles[own]} [95 % CI]"
    lines = [f"| row | {' | '.join(COLUMNS)} | {delta} |", "|" + "---|" * (len(COLUMNS) + 2)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", *COLUMNS, "auc_difference", "low", "high"])
    for row, cols in values.items():
        d = differences.get(row)
        cell = "–" if d is None else f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
        lines.append(f"| {titles[row]} | " + " | ".join(fmt(cols[c], c) for c in COLUMNS) + f" | {cell} |")
        writer.writerow([row, *(mean_cell(cols[c]) for c in COLUMNS), *(d or ("", "", ""))])
    lines.append(f"\nTrust functions on the target pool, no students trained; seeds {', '.join(map(str, seeds))} "
                 "(mean ± sample std); the AUC difference is paired-bootstrapped over target examples (1,000 "
                 f"resamples) on seed {seeds[0]} (on a row's first finished seed where that one failed).")
    return "\n".join(lines), out.getvalue()
