"""``KNN``: the share of correct weak labels among the source examples whose teacher states are nearest."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trust_functions.base import FeatureView, TrustFunction, split_source
from w2s import metrics
from w2s.errors import W2SError, check_ranges
from w2s.outputs import TeacherOutputs


class KNN(TrustFunction):
    """kNN agreement: the fraction of right weak labels among the ``k`` source examples nearest to g(x, ŷ) by cosine
    similarity (ties in similarity: the lower source index first).

    Args:
        k: neighbours, at most the number of source examples it is fitted on.
        val_fraction: share of the source set held out (stratified) for the source metrics; the target is then
            scored against the whole source set.
        features: cached teacher states to read, as for ``NeuralTrustFunction``.
    """

    row, title = "knn", "kNN agreement"

    def __init__(self, k: int = 20, val_fraction: float = 0.2, features: list[str] | None = None) -> None:
        check_ranges("KNN", k=(k, "int >= 1"), val_fraction=(val_fraction, "(0, 1)"))
        self.k, self.val_fraction, self.features = k, val_fraction, features
        self.memory: torch.Tensor | None = None  # [M, d] unit vectors
        self.correct: torch.Tensor | None = None  # [M]
        self.source_val: dict[str, float] = {}

    def teacher_features(self) -> list[str]:
        return list(self.features or [])

    def fit(self, source: TeacherOutputs) -> None:
        view, y, train, val, _ = split_source(source, self.features, self.val_fraction)
        if self.k > len(train):
            raise W2SError(f"KNN.k = {self.k} neighbours, but the source set leaves only {len(train)} examples to "
                           f"search after holding out val_fraction {self.val_fraction}; use k ≤ {len(train)}")
        x = F.normalize(view.rows(np.arange(len(view))), dim=-1)
        self.memory, self.correct = x[train], y[train]
        self.source_val = metrics.trust_metrics(self._agreement(x[val]), y[val])
        self.memory, self.correct = x, y  # the target is scored against every source example

    @torch.no_grad()
    def _agreement(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for block in x.split(4096):
            similarity = block @ self.memory.T  # [B, M]
            # stable top-k: sort descending with the source index as the tie-breaker
            nearest = torch.sort(similarity, dim=-1, descending=True, stable=True).indices[:, : self.k]
            scores.append(self.correct[nearest].mean(-1))
        return torch.cat(scores)

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        if self.memory is None:
            raise RuntimeError("KNN.score called before fit")
        view = FeatureView(target, self.features)
        return torch.cat([self._agreement(F.normalize(rows, dim=-1)) for _, rows in view.blocks(np.arange(len(view)))])
