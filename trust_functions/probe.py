"""``LinearProbe``: logistic regression on the teacher's hidden states (the classic probe baseline)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trust_functions.base import TrustFunction, feature_matrix, split_source
from w2s import metrics
from w2s.errors import check_ranges
from w2s.outputs import TeacherOutputs


class LinearProbe(TrustFunction):
    """Class-reweighted, L2-regularised logistic regression on g(x, ŷ), fitted by full-batch L-BFGS.

    The same features and source split as the NTF, without depth: what the NTF's network buys over a probe.

    Args:
        l2: weight of the L2 penalty on the weights (mean loss + ``l2`` * ||w||²).
        max_iter: L-BFGS iterations.
        val_fraction: share of the source set held out (stratified) for the source metrics.
        features: cached teacher states to read, as for ``NeuralTrustFunction``.
    """

    row, title = "probe", "Linear probe"

    def __init__(self, l2: float = 1e-3, max_iter: int = 200, val_fraction: float = 0.2,
                 features: list[str] | None = None) -> None:
        check_ranges("LinearProbe", l2=(l2, ">= 0"), max_iter=(max_iter, "int >= 1"),
                     val_fraction=(val_fraction, "(0, 1)"))
        self.l2, self.max_iter, self.val_fraction, self.features = l2, max_iter, val_fraction, features
        self.linear: torch.nn.Linear | None = None
        self.source_val: dict[str, float] = {}

    def teacher_features(self) -> list[str]:
        return list(self.features or [])

    def fit(self, source: TeacherOutputs) -> None:
        view, y, train, val, pos_weight = split_source(source, self.features, self.val_fraction)
        x = view.rows(np.arange(len(view)))  # a full-batch L-BFGS fit: the probe holds the source set in memory
        pos_weight = torch.tensor(pos_weight)
        linear = torch.nn.Linear(x.shape[1], 1)
        torch.nn.init.zeros_(linear.weight), torch.nn.init.zeros_(linear.bias)
        opt = torch.optim.LBFGS(linear.parameters(), max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logits = linear(x[train]).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, y[train], pos_weight=pos_weight)
            loss = loss + self.l2 * linear.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.linear = linear.eval()
        scores = self._predict(x[val])
        self.source_val = metrics.trust_metrics(scores, y[val])

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(x).squeeze(-1))

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        if self.linear is None:
            raise RuntimeError("LinearProbe.score called before fit")
        return self._predict(feature_matrix(target, self.features))
