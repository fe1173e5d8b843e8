"""Intervals and paired comparisons for the tables: a bootstrap over examples (the same resampled examples for
every row compared), and Student-t intervals over seeds."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from w2s.errors import W2SError


def bootstrap_interval(statistic: Callable[[np.ndarray], float | None], n: int, resamples: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """The 95 % percentile interval of ``statistic(index)`` over ``resamples`` bootstrap resamples of ``n``
    examples; a resample where the statistic is undefined (``None``) is skipped."""
    rng = np.random.default_rng(seed)
    values = [v for _ in range(resamples) if (v := statistic(rng.integers(0, n, n))) is not None]
    if not values:
        raise W2SError(f"the statistic is undefined on every bootstrap resample of the {n} examples")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def paired_accuracy_difference(row: np.ndarray, reference: np.ndarray, resamples: int = 1000,
                               seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of ``row`` minus ``reference`` (``[seeds, examples]`` 0/1 each, the same examples in the same
    order), averaged over seeds, and its 95 % interval by resampling examples (the same resample for both)."""
    difference = np.asarray(row, dtype=float) - np.asarray(reference, dtype=float)  # [S, N]
    low, high = bootstrap_interval(lambda index: float(difference[:, index].mean()), difference.shape[1],
                                   resamples, seed)
    return float(difference.mean()), low, high


def t_interval(values) -> tuple[float, float]:
    """The 95 % Student-t interval of the mean of ``values`` (e.g. one accuracy per seed; needs ≥ 2)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    half = t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def read_test_correct(run_dir: Path) -> dict[str, int] | None:
    """A run's ``student_test.csv`` (test example id → 1 if the student got it right), or ``None`` without one."""
    path = run_dir / "student_test.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return {row["id"]: int(row["correct"]) for row in csv.DictReader(f)}


def correctness_matrix(run_dirs: list[Path]) -> tuple[list[str], np.ndarray] | None:
    """The test ids and ``[runs, examples]`` 0/1 correctness of runs on the same test split (``student_test.csv``
    of each, e.g. one run per seed), or ``None`` when a run has no file or the runs disagree on the examples."""
    correct = [read_test_correct(d) for d in run_dirs]
    if not correct or any(c is None for c in correct) or any(set(c) != set(correct[0]) for c in correct):
        return None
    ids = sorted(correct[0])
    return ids, np.array([[c[i] for i in ids] for c in correct])


def accuracy_statistics(matrices: dict[str, np.ndarray], references: list[str]) -> tuple[dict, dict]:
    """Per row (``[seeds, examples]`` correctness on the same examples in the same order): 95 % intervals of its
    accuracy — over test examples by bootstrap (the same resamples for every row) and, with ≥ 3 seeds, over seeds
    (Student-t) — and, against each reference row present, the paired difference of accuracy (averaged over seeds)
    with its 95 % bootstrap interval."""
    intervals = {row: {"examples": bootstrap_interval(lambda index, m=m: float(m[:, index].mean()), m.shape[1]),
                       "seeds": t_interval(m.mean(1)) if len(m) >= 3 else None} for row, m in matrices.items()}
    deltas: dict[str, dict[str, tuple]] = {}
    for reference in (r for r in references if r in matrices):
        for row, m in matrices.items():
            if row != reference and m.shape == matrices[reference].shape:
                deltas.setdefault(row, {})[reference] = paired_accuracy_difference(m, matrices[reference])
    return intervals, deltas


def auc_interval(scores: np.ndarray, correct: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval over examples of the trust AUC averaged over runs (``scores``: ``[runs, examples]``,
    ``correct``: ``[examples]``, the same resample for every run); resamples of one class are skipped."""
    from w2s.metrics import rank_auc

    correct = np.asarray(correct, dtype=bool)

    def mean_auc(index: np.ndarray) -> float | None:
        c = correct[index]
        return None if c.all() or not c.any() else float(np.mean([rank_auc(s[index], c) for s in scores]))

    return bootstrap_interval(mean_auc, len(correct), resamples, seed)


def verdict(low: float, high: float) -> str:
    """How an interval of a difference to ground truth reads: ``≈`` contains 0 (statistically indistinguishable),
    ``↑`` lies above it (super-recovery), ``↓`` below."""
    return "≈" if low <= 0 <= high else ("↑" if low > 0 else "↓")
