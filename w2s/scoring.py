"""Log-likelihood of continuations, the one computation behind the likelihood (cloze) interface (the teacher's
weak label and hidden state, the student's evaluation) and behind the student's supervised loss.

Hidden states come from the model's decoder; the output layer runs only at the positions that predict a scored
token (a 262k-word output layer over every position of every sequence would be most of the cost)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def output_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Next-token logits of hidden states: the model's output layer, then what its own forward does after it
    (Cohere's ``logit_scale``, Granite's ``logits_scaling``, Gemma's final soft-capping)."""
    logits = model.get_output_embeddings()(hidden)
    config = model.config.get_text_config()
    if (scale := getattr(config, "logit_scale", None)) is not None:
        logits = logits * scale
    if (scaling := getattr(config, "logits_scaling", None)) is not None:
        logits = logits / scaling
    cap = getattr(config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def logits_at(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``[B, V]`` next-token logits at one position of each sequence (the output layer runs there only)."""
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return output_logits(model, hidden[torch.arange(len(hidden), device=hidden.device), positions])


@dataclass
class Scored:
    """Per-token results of :func:`score_continuations` (``[S, T]``, zero where a token is not scored).

    Attributes:
        logprobs: log-probability of each scored token given everything before it.
        entropy: entropy of the next-token distribution that predicted it.
        hidden_states: every layer's states (``[S, T, d]`` each; the last after the final norm), when asked for.
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None


def score_continuations(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, scored: torch.Tensor,
                        hidden_states: bool = False) -> Scored:
    """Score the tokens marked in ``scored`` (``[S, T]``, 1 for the continuation's tokens) of right-padded
    sequences ``input_ids`` under ``model``."""
    out = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=hidden_states)
    rows, cols = scored[:, 1:].bool().nonzero(as_tuple=True)  # token t is predicted at position t - 1
    logprobs = output_logits(model, out.last_hidden_state[rows, cols]).float().log_softmax(-1)  # [M, V]
    chosen = logprobs.gather(-1, input_ids[rows, cols + 1].unsqueeze(-1)).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    per_token, per_entropy = (torch.zeros(input_ids.shape, device=input_ids.device) for _ in range(2))
    per_token[rows, cols + 1], per_entropy[rows, cols + 1] = chosen, entropy
    return Scored(per_token, per_entropy, out.hidden_states if hidden_states else None)
