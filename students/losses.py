"""Student losses on multiple-choice weak labels: plain cross-entropy and Burns et al.'s auxiliary confidence loss.

Both read the student's summed log-probability of every option's completion (``[B, K]``), so the same code serves
the lettered interface (completions " A", " B"...) and the likelihood interface (the option texts).
"""

from __future__ import annotations

import torch


def aux_weight(step: int, total_steps: int, aux_coef: float, aux_warmup: float) -> float:
    """The auxiliary loss's weight at optimizer step ``step`` of ``total_steps``: ramped linearly from 0 to
    ``aux_coef`` over the first ``aux_warmup`` share of the steps (as EleutherAI/w2s's ``log_confidence_loss``
    does), ``aux_coef`` from the first step when ``aux_warmup`` is 0."""
    if aux_warmup == 0:
        return aux_coef
    return aux_coef * min(1.0, step / (aux_warmup * max(1, total_steps)))


def logconf_loss(logprobs: torch.Tensor, tokens: torch.Tensor, weak: torch.Tensor, weight: float,
                 decision: torch.Tensor | None = None) -> torch.Tensor:
    """The auxiliary confidence ("logconf") loss of Burns et al. 2023 (openai/weak-to-strong ``loss.py``),
    generalised from binary classes to the K options of a multiple-choice question and to LM completions.

    Burns et al. train on the soft target t = (1 − w)·onehot(weak label) + w·onehot(the student's own hardened
    prediction ŝ, detached). With a causal LM the "class" k is the option's completion, and cross-entropy against t
    is (1 − w)·NLL(weak completion) + w·NLL(ŝ's completion). Each term is normalised per answer token over the
    batch, exactly as the plain cross-entropy of ``LoRASFTStudent`` is, so ``weight = 0`` gives that loss:

        loss = (1 − w) · Σ_b −logprobs[b, weak_b] / Σ_b tokens[b, weak_b]
               + w · Σ_b −logprobs[b, ŝ_b] / Σ_b tokens[b, ŝ_b],     ŝ_b = argmax_k decision[b, k]

    Hardening is the argmax. Burns et al.'s binary hardening thresholds the positive class's probability at the
    batch's weak-label prior; options have no class identity across questions (option "A" of one question is
    unrelated to option "A" of another), so there is no prior to match, and the argmax is its K-option form.

    Args:
        logprobs: ``[B, K]`` the student's summed log-probability of each option's completion; ``-inf`` where a
            question offers fewer than K options.
        tokens: ``[B, K]`` the number of tokens of each option's completion.
        weak: ``[B]`` the weak label's option index.
        weight: w, the auxiliary weight (``aux_weight``).
        decision: ``[B, K]`` the scores the student answers by (e.g. log-probabilities per character for a
            likelihood task that normalises by length); ``logprobs`` by default.
    """
    rows = torch.arange(len(weak), device=logprobs.device)  # [B]
    predicted = (logprobs if decision is None else decision).detach().argmax(-1)  # [B]
    weak_loss = -logprobs[rows, weak].sum() / tokens[rows, weak].sum().clamp(min=1)
    if weight == 0:
        return weak_loss
    own_loss = -logprobs[rows, predicted].sum() / tokens[rows, predicted].sum().clamp(min=1)
    return (1 - weight) * weak_loss + weight * own_loss
