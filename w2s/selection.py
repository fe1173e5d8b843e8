"""Turning trust scores into the trusted subset: top-n, fraction or threshold, with deterministic ties."""

from __future__ import annotations

from typing import Literal

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
            first) or ``threshold`` (every weak label whose trust score is ≥ ``threshold``).
        n: size of the trusted subset for ``top_n``.
        fraction: share of the target set for ``fraction``, in (0, 1].
        threshold: minimum trust score for ``threshold``, in [0, 1].
    """

    def __init__(
        self,
        mode: Literal["top_n", "fraction", "threshold"] = "fraction",
        n: int | None = None,
        fraction: float = 0.5,
        threshold: float = 0.5,
    ) -> None:
        if mode == "top_n" and n is None:
            raise W2SError("selection.n must be a positive integer for mode top_n (got None)")
        check_ranges("selection", n=(n, "int >= 1"), fraction=(fraction, "(0, 1]"), threshold=(threshold, "[0, 1]"))
        self.mode, self.n, self.fraction, self.threshold = mode, n, fraction, threshold

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
        if self.mode == "threshold":
            keep = top_n(scores, len(scores))
            return keep[scores[keep] >= self.threshold]
        return top_n(scores, self.size(len(scores)))
