"""Trust and student metrics: tensors in, float out (torchmetrics where it has them).

A leaf: it imports nothing of this library. torchmetrics is imported where a metric is computed, because importing
it imports transformers (its text metrics), which trust functions must not pull in.
"""

from __future__ import annotations

import torch


def _as_tensors(scores, correct) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(scores, dtype=torch.float32).flatten(), torch.as_tensor(correct).flatten().long()


def auc(scores, correct) -> float:
    """Area under the ROC curve of trust scores for separating correct from wrong weak labels."""
    from torchmetrics.functional.classification import binary_auroc

    s, c = _as_tensors(scores, correct)
    return float(binary_auroc(s, c))


def rank_auc(scores, correct) -> float:
    """The same AUC by the Mann–Whitney statistic (tied scores get their average rank): numpy and scipy only, ~50×
    faster than :func:`auc` on a thousand examples, for bootstrap loops. Both classes must be present."""
    import numpy as np
    from scipy.stats import rankdata

    s, c = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(correct, dtype=bool).ravel()
    positives = int(c.sum())
    return float((rankdata(s)[c].sum() - positives * (positives + 1) / 2) / (positives * (len(c) - positives)))


def ece(scores, correct, n_bins: int = 15) -> float:
    """Expected calibration error (L1, equal-width bins); scores must be probabilities in [0, 1]."""
    from torchmetrics.functional.classification import binary_calibration_error

    s, c = _as_tensors(scores, correct)
    return float(binary_calibration_error(s.clamp(0, 1), c, n_bins=n_bins, norm="l1"))


def brier(scores, correct) -> float:
    """Mean squared error between trust score and correctness (0/1)."""
    s, c = _as_tensors(scores, correct)
    diff = s - c.float()
    return float((diff * diff).sum() / diff.numel())


def ranking(scores) -> torch.Tensor:
    """Indices from the most to the least trusted; equal scores keep their original order (stable sort)."""
    return torch.sort(torch.as_tensor(scores, dtype=torch.float64).flatten(), descending=True, stable=True).indices


def purity_by_n(scores, correct) -> torch.Tensor:
    """``[N]``: the fraction of correct weak labels among the ``n`` most trusted, for n = 1..N (ties by index)."""
    s, c = _as_tensors(scores, correct)
    return c[ranking(s)].float().cumsum(0) / torch.arange(1, len(c) + 1)


def purity_at_n(scores, correct, n: int) -> float:
    """Fraction of correct weak labels among the ``n`` most trusted (ties broken by index)."""
    return float(purity_by_n(scores, correct)[n - 1])


def aurc(scores, correct) -> float:
    """Area under the risk–coverage curve: with q(k) the purity of the k most trusted (ties by index), the mean of
    1 − q(k) over k = 1..N. Lower is better."""
    return float(1 - purity_by_n(scores, correct).mean())


def prr(scores, correct) -> float:
    """Prediction–rejection ratio: (A − A_random) / (A_oracle − A_random), with A the mean of q(k) over k for the
    scores, A_oracle the same ranking by correctness itself (every right weak label first) and A_random the mean
    correctness. 1 is the oracle's ranking, 0 a random one; NaN when every weak label is right (or wrong)."""
    s, c = _as_tensors(scores, correct)
    achieved, oracle, random = float(purity_by_n(s, c).mean()), float(purity_by_n(c, c).mean()), float(c.float().mean())
    return float("nan") if oracle == random else (achieved - random) / (oracle - random)


def recovery(method: float, base: float, gt: float) -> float:
    """Share of the base → ground-truth gap that a method closes, in percent."""
    if gt == base:
        return float("nan")
    return (method - base) / (gt - base) * 100.0


def trust_metrics(scores, correct) -> dict[str, float]:
    """AUC, ECE, Brier, PRR and AURC of trust scores in one dict; AUC and PRR are NaN when every weak label is right
    (or wrong)."""
    s, c = _as_tensors(scores, correct)
    one_class = bool(c.all() or not c.any())
    return {"auc": float("nan") if one_class else auc(s, c), "ece": ece(s, c), "brier": brier(s, c),
            "prr": prr(s, c), "aurc": aurc(s, c)}
