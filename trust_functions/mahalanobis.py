"""``Mahalanobis`` and ``RelativeMahalanobis``: how typical the teacher's state is of the source examples it got
right (density on hidden states; Lee et al. 2018, and relative to the wrong ones after Ren et al. 2021)."""

from __future__ import annotations

import numpy as np
import torch

from trust_functions.base import TrustFunction, feature_matrix, split_source
from w2s import metrics
from w2s.errors import check_ranges
from w2s.outputs import TeacherOutputs


class Mahalanobis(TrustFunction):
    """Minus the Mahalanobis distance of g(x, ŷ) to the mean state of the source examples the teacher got right.

    The covariance is shared: pooled over both classes around their own means, shrunk towards a multiple of the
    identity, ``(1 − shrinkage) Σ + shrinkage · tr(Σ)/d · I``, so that it is invertible when d approaches the
    number of source examples. The score maps the negative distance monotonically to [0, 1]: a softsign
    ``0.5 + 0.5 z / (1 + |z|)`` of the distance centred on its median over the fitted source examples and scaled by
    their standard deviation. Unlike a logistic it does not saturate, so target states far from every source state
    (a shifted target) still get distinct scores; it ranks, it is not calibrated.

    Args:
        shrinkage: weight of the identity in the shrunk covariance, in [0, 1].
        val_fraction: share of the source set held out (stratified) for the source metrics.
        features: cached teacher states to read, as for ``NeuralTrustFunction``.
    """

    row, title = "mahalanobis", "Mahalanobis"
    relative = False

    def __init__(self, shrinkage: float = 0.1, val_fraction: float = 0.2, features: list[str] | None = None) -> None:
        check_ranges(type(self).__name__, shrinkage=(shrinkage, "[0, 1]"), val_fraction=(val_fraction, "(0, 1)"))
        self.shrinkage, self.val_fraction, self.features = shrinkage, val_fraction, features
        self.means: torch.Tensor | None = None  # [2, d]: wrong, right
        self.precision: torch.Tensor | None = None  # [d, d]
        self.center, self.scale = 0.0, 1.0
        self.source_val: dict[str, float] = {}

    def teacher_features(self) -> list[str]:
        return list(self.features or [])

    def fit(self, source: TeacherOutputs) -> None:
        view, y, train, val, _ = split_source(source, self.features, self.val_fraction)
        x = view.rows(np.arange(len(view))).double()  # [N, d]
        right = y.bool()
        fitted = torch.zeros(len(y), dtype=torch.bool)
        fitted[train] = True
        self.means = torch.stack([x[fitted & ~right].mean(0), x[fitted & right].mean(0)])  # [2, d]
        residuals = x[fitted] - self.means[right[fitted].long()]  # each example around its own class mean
        covariance = residuals.T @ residuals / max(1, len(residuals) - 1)
        d = covariance.shape[0]
        covariance = (1 - self.shrinkage) * covariance + self.shrinkage * covariance.trace() / d * torch.eye(d)
        self.precision = torch.linalg.pinv(covariance, hermitian=True)
        raw = self._raw(x[train])
        self.center, self.scale = float(raw.median()), float(raw.std().clamp(min=1e-12))
        self.source_val = metrics.trust_metrics(self._squash(self._raw(x[val])), y[val])

    def _distances(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 2]`` squared Mahalanobis distances to the wrong and the right class means."""
        diff = x.unsqueeze(1) - self.means  # [N, 2, d]
        return torch.einsum("nkd,de,nke->nk", diff, self.precision, diff)

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        distances = self._distances(x)
        return distances[:, 0] - distances[:, 1] if self.relative else -distances[:, 1]

    def _squash(self, raw: torch.Tensor) -> torch.Tensor:
        z = (raw - self.center) / self.scale
        return (0.5 + 0.5 * z / (1 + z.abs())).float()

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        if self.precision is None:
            raise RuntimeError(f"{self.name}.score called before fit")
        return self._squash(self._raw(feature_matrix(target, self.features).double()))


class RelativeMahalanobis(Mahalanobis):
    """The distance to the wrong examples' mean minus the distance to the right examples' mean (shared covariance):
    high where the state is closer to the teacher's successes than to its failures. Arguments as ``Mahalanobis``."""

    row, title = "rel_mahalanobis", "Relative Mahalanobis"
    relative = True
