"""Reference rows of the protocol: trust everything, trust at random, and the ground-truth ceiling."""

from __future__ import annotations

import torch

from trust_functions.base import TrustFunction
from w2s.outputs import TeacherOutputs


class Naive(TrustFunction):
    """Trust every weak label: the student trains on the whole target set (the paper's Naive row)."""

    row, title = "naive", "Naive (all weak labels)"
    keep_all = True

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        return torch.ones(len(target))


class Random(TrustFunction):
    """Uniform random trust: a same-size random subset, the control for any selection.

    Args:
        seed: seed of the scores; ``None`` derives it from the run seed.
    """

    row, title = "random", "Random n"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        seed = torch.initial_seed() if self.seed is None else self.seed
        return torch.rand(len(target), generator=torch.Generator().manual_seed(seed % 2**63))


class GroundTruth(TrustFunction):
    """The ceiling: the student trains on the gold labels of the whole target set (evaluation only)."""

    row, title = "gt", "Ground truth (ceiling)"
    keep_all = True
    uses_gold_labels = True

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        return torch.ones(len(target))
