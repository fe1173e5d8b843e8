"""``InternalConfidence``: the teacher's own probability of the weak label it gave (output-layer baseline)."""

from __future__ import annotations

import numpy as np
import torch

from trust_functions.base import TrustFunction
from w2s.outputs import TeacherOutputs
from w2s.tasks.base import LETTERS


def option_probabilities(target: TeacherOutputs) -> torch.Tensor | None:
    """``[N, K]`` teacher distribution over the answer options (renormalised), or ``None`` for free-form tasks."""
    if target.option_logprobs is None:
        return None
    return torch.softmax(torch.as_tensor(np.asarray(target.option_logprobs), dtype=torch.float32), dim=-1)


class InternalConfidence(TrustFunction):
    """I-Confidence: the teacher's own probability of the answer it gave.

    Multiple choice: the (renormalised) probability of the chosen option; an unparsed answer gets 0.
    Free-form answers: the geometric mean probability of the generated tokens.
    """

    row, title = "iconf", "I-Confidence"

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        probs = option_probabilities(target)
        if probs is None:
            return torch.exp(torch.as_tensor(np.asarray(target.token_logprobs), dtype=torch.float32))
        chosen = torch.tensor([LETTERS.index(y) if y and y in LETTERS[: probs.shape[-1]] else -1
                               for y in target.weak_labels])
        scores = probs.gather(-1, chosen.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return scores.masked_fill(chosen < 0, 0.0)


def output_signals(outputs: TeacherOutputs) -> np.ndarray:
    """``[N, 4]`` float32: what the output layer says about each weak label — the Entropy and I-Confidence scores,
    the mean log-prob and the mean entropy of the generated tokens — as a feature block (``"output"``) that a
    hidden-state trust function can read beside the states (e.g. ``StackedNTF``)."""
    from trust_functions.entropy import Entropy  # (it imports this module)

    return np.stack([Entropy().score(outputs).numpy(), InternalConfidence().score(outputs).numpy(),
                     np.asarray(outputs.token_logprobs, dtype=np.float32),
                     np.asarray(outputs.token_entropy, dtype=np.float32)], axis=1).astype(np.float32)
