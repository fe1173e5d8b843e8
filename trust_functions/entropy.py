"""``Entropy``: the teacher's uncertainty over its answer distribution (output-layer baseline)."""

from __future__ import annotations

import numpy as np
import torch

from trust_functions.base import TrustFunction
from trust_functions.confidence import option_probabilities
from w2s.outputs import TeacherOutputs


class Entropy(TrustFunction):
    """Negative entropy of the teacher's answer distribution, scaled to [0, 1] (1 = certain).

    Multiple choice: entropy over the options the example offers, divided by log K. Free-form answers: the mean entropy
    of the next-token distribution over the generated tokens, mapped through ``exp(-H)``.
    """

    row, title = "entropy", "Entropy"

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        probs = option_probabilities(target)
        if probs is None:
            return torch.exp(-torch.as_tensor(np.asarray(target.token_entropy), dtype=torch.float32))
        entropy = -(probs * probs.clamp(min=1e-12).log()).sum(-1)
        offered = torch.isfinite(torch.as_tensor(np.asarray(target.option_logprobs))).sum(-1).clamp(min=2)
        return (1 - entropy / offered.double().log().float()).clamp(0, 1)
