"""Turning trust scores into the trusted subset: top-n, fraction or threshold, with deterministic ties, or a size
chosen with a guarantee on held-out source examples (certified purity, or a false-discovery-rate bound)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from w2s.errors import W2SError, check_ranges
from w2s.metrics import ranking


def top_n(scores: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the ``n`` highest scores; equal scores keep their original order (stable sort)."""
    return ranking(scores)[:n]


class Selection:
    """Which weak labels go to the student.

    Args:
        mode: ``top_n`` (the ``n`` most trusted), ``fraction`` (that share of the target set, most trusted
            first), ``threshold`` (every weak label whose trust score is ≥ ``threshold``), ``certified`` (every
            weak label scored at or above the lowest threshold certified to give purity ≥ ``purity`` with
            probability ≥ 1 − ``delta``: :func:`certified_threshold`) or ``fdr`` (conformal p-values and
            Benjamini–Hochberg: expected purity ≥ ``purity``). The last two hold out ``calibration_fraction`` of the
            source set (never target gold): the trust function is fitted on the rest and scores the held-out part.
            The guarantee assumes calibration and target examples are exchangeable (the ID setting); across a
            distribution shift it is a heuristic, and the realised target purity is reported beside it.
        n: size of the trusted subset for ``top_n``.
        fraction: share of the target set for ``fraction``, in (0, 1].
        threshold: minimum trust score for ``threshold``, in [0, 1].
        purity, delta: the target purity and the allowed failure probability of ``certified`` / ``fdr``.
        calibration_fraction: share of the source set held out to calibrate ``certified`` / ``fdr``.
    """

    def __init__(
        self,
        mode: Literal["top_n", "fraction", "threshold", "certified", "fdr"] = "fraction",
        n: int | None = None,
        fraction: float = 0.5,
        threshold: float = 0.5,
        purity: float = 0.9,
        delta: float = 0.1,
        calibration_fraction: float = 0.3,
    ) -> None:
        if mode == "top_n" and n is None:
            raise W2SError("selection.n must be a positive integer for mode top_n (got None)")
        check_ranges("selection", n=(n, "int >= 1"), fraction=(fraction, "(0, 1]"), threshold=(threshold, "[0, 1]"),
                     purity=(purity, "(0, 1)"), delta=(delta, "(0, 1)"),
                     calibration_fraction=(calibration_fraction, "(0, 1)"))
        self.mode, self.n, self.fraction, self.threshold = mode, n, fraction, threshold
        self.purity, self.delta, self.calibration_fraction = purity, delta, calibration_fraction

    @property
    def calibrated(self) -> bool:
        """Whether this selection needs held-out source examples (``certified`` and ``fdr``)."""
        return self.mode in ("certified", "fdr")

    def with_guarantee(self, scores: torch.Tensor, cal_scores, cal_correct) -> tuple[torch.Tensor, dict]:
        """The trusted subset of a ``certified`` / ``fdr`` selection (indices, most trusted first) and what
        results.json records of it."""
        scores = torch.as_tensor(scores)
        info = {"purity_target": self.purity, "n_calibration": len(cal_scores)}
        if self.mode == "certified":
            threshold = certified_threshold(cal_scores, cal_correct, self.purity, self.delta)
            keep = top_n(scores, len(scores))
            keep = keep[scores[keep] >= threshold]
            if len(keep) == 0:
                raise W2SError(f"the certified threshold {threshold:.4f} lies above every target trust score (the "
                               f"highest is {float(scores.max()):.4f}): the trust function scores the target lower "
                               "than its calibration examples (a shift between source and target?), so no weak label "
                               "is certified; lower selection.purity, or use mode fraction")
            # threshold null: the whole calibration set is certified, every target example is kept
            return keep, {**info, "threshold": threshold if np.isfinite(threshold) else None, "delta": self.delta}
        chosen = torch.as_tensor(fdr_selection(cal_scores, cal_correct, scores.numpy(), self.purity), dtype=torch.long)
        return chosen[ranking(scores[chosen])], info

    def size(self, n_target: int) -> int:
        """How many weak labels a score-independent selection keeps (``top_n`` and ``fraction``)."""
        if self.mode == "top_n":
            if self.n > n_target:
                raise W2SError(f"selection.n = {self.n} is larger than the target set ({n_target} examples); "
                               f"use n ≤ {n_target} or selection.mode: fraction")
            return self.n
        return max(1, round(self.fraction * n_target))

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        """Indices (into the target set) of the trusted subset, most trusted first."""
        scores = torch.as_tensor(scores)
        if self.calibrated:
            raise W2SError(f"selection mode {self.mode} needs calibration scores: use with_guarantee (run_protocol "
                           "does)")
        if self.mode == "threshold":
            keep = top_n(scores, len(scores))
            return keep[scores[keep] >= self.threshold]
        return top_n(scores, self.size(len(scores)))


# ---- selections with a guarantee (selective prediction: Learn then Test; conformal selection) ------------------
MIN_CALIBRATION = 20
COVERAGES = np.arange(1, 21) / 20  # the selection sizes a certified threshold is tested at (share of calibration)


def _calibration(cal_scores, cal_correct, purity: float, delta: float | None = None):
    """Checked calibration arrays (scores, correctness), and the range checks every guarantee shares."""
    check_ranges("selection", purity=(purity, "(0, 1)"), delta=(delta, "(0, 1)"))
    scores = np.asarray(cal_scores, dtype=np.float64).ravel()
    correct = np.asarray(cal_correct, dtype=bool).ravel()
    if len(scores) != len(correct):
        raise W2SError(f"calibration scores ({len(scores)}) and correctness ({len(correct)}) differ in length")
    if len(scores) < MIN_CALIBRATION:
        raise W2SError(f"a certified selection needs at least {MIN_CALIBRATION} calibration examples (got "
                       f"{len(scores)}); hold out more of the source set (selection.calibration_fraction)")
    if correct.all() or not correct.any():
        raise W2SError(f"the {len(scores)} calibration examples are all {'right' if correct.all() else 'wrong'}; "
                       "a certified selection needs right and wrong weak labels among them")
    return scores, correct


def binomial_upper_bound(errors, n, delta: float) -> np.ndarray:
    """Exact one-sided (Clopper–Pearson) upper bound on an error rate: ≥ the true rate with probability
    ≥ 1 − δ, from ``errors`` wrong out of ``n`` (element-wise)."""
    from scipy.stats import beta

    errors, n = np.asarray(errors, dtype=np.float64), np.asarray(n, dtype=np.float64)
    bound = beta.ppf(1 - delta, errors + 1, np.maximum(n - errors, 1))
    return np.where(errors >= n, 1.0, bound)


def certified_threshold(cal_scores, cal_correct, purity: float, delta: float) -> float:
    """The lowest trust score whose selection (every example scored at or above it) has purity ≥ ``purity`` with
    probability ≥ 1 − ``delta``, on calibration examples exchangeable with the pool.

    The candidates are the thresholds that keep 5 %, 10 %, ..., 100 % of the calibration set (whole runs of equal
    scores); each one's error rate among the kept calibration examples gets a Clopper–Pearson upper bound at level
    δ / 20, so that all twenty hold together (a union bound, as in selection with guaranteed risk, Geifman &
    El-Yaniv 2017); the answer is the lowest candidate whose bound is ≤ 1 − purity. Testing from the highest score
    down and stopping at the first failure (fixed-sequence testing) would stop at once in practice: a handful of
    top-scored examples cannot certify a high purity. When the whole calibration set is certified the answer is
    −inf: no filtering is needed, and a pool example scored below every calibration score is kept too."""
    scores, correct = _calibration(cal_scores, cal_correct, purity, delta)
    order = np.argsort(-scores, kind="stable")
    s, c = scores[order], correct[order]  # most trusted first
    sizes = np.unique(np.ceil(COVERAGES * len(s)).astype(int))
    thresholds = s[sizes - 1]
    kept = np.searchsorted(-s, -thresholds, side="right")  # every score ≥ the threshold, ties included
    level = delta / len(sizes)
    bounds = binomial_upper_bound(np.cumsum(~c)[kept - 1], kept, level)
    passes = bounds <= 1 - purity
    if not passes.any():
        needed = int(np.ceil(np.log(level) / np.log(purity)))
        raise W2SError(f"no threshold is certified at purity {purity} (delta {delta}) on {len(s)} calibration "
                       f"examples: the most any candidate certifies is {1 - bounds.min():.3f}; purity {purity} "
                       f"needs at least {needed} calibration examples above the threshold even with none wrong")
    return -np.inf if passes[-1] else float(thresholds[passes][-1])


def conformal_p_values(cal_scores, cal_correct, scores) -> np.ndarray:
    """Conformal p-values of the null "this weak label is wrong" for each pool score (Jin & Candès 2023):
    ``(1 + #{calibration examples that are wrong and score ≥ s}) / (n_calibration + 1)``."""
    cal = np.asarray(cal_scores, dtype=np.float64)[~np.asarray(cal_correct, dtype=bool)]
    wrong_at_or_above = len(cal) - np.searchsorted(np.sort(cal), np.asarray(scores, dtype=np.float64), side="left")
    return (1 + wrong_at_or_above) / (len(np.asarray(cal_scores)) + 1)


def fdr_selection(cal_scores, cal_correct, scores, purity: float) -> np.ndarray:
    """Indices of the pool examples selected by Benjamini–Hochberg on conformal p-values at level 1 − ``purity``:
    the expected share of wrong weak labels among them is ≤ 1 − purity (expected purity ≥ ``purity``)."""
    _calibration(cal_scores, cal_correct, purity)
    p = conformal_p_values(cal_scores, cal_correct, scores)
    m, order = len(p), np.argsort(p, kind="stable")
    below = p[order] <= (1 - purity) * np.arange(1, m + 1) / m
    k = int(np.flatnonzero(below)[-1]) + 1 if below.any() else 0
    return np.sort(order[:k])
