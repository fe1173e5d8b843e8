"""Log-likelihood of continuations, the one computation behind the likelihood (cloze) interface (the teacher's
weak label and hidden state, the student's evaluation) and behind the student's supervised loss.

Hidden states come from the model's decoder; the output layer runs only at the positions that predict a scored
token (a 262k-word output layer over every position of every sequence would be most of the cost)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from w2s.batching import pad_batch


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that follow the attention mask, as generation gives left-padded rows (padding at 0)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


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


# generation-config fields that cannot change a greedy one-token generation (the rest may add logits processors)
_GREEDY_NEUTRAL = {"use_cache", "output_attentions", "output_hidden_states", "output_scores", "output_logits",
                   "return_dict_in_generate", "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id",
                   "do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "max_length",
                   "max_new_tokens", "cache_implementation", "_from_model_config", "transformers_version"}


def plain_greedy(model) -> bool:
    """Whether ``generate``'s greedy choice of one token is the argmax of the model's logits: its generation config
    sets nothing that would add a logits processor (repetition penalty, suppressed or forced tokens, ...)."""
    config = model.generation_config
    return config is not None and set(config.to_diff_dict()) <= _GREEDY_NEUTRAL


@dataclass
class OneToken:
    """What ``generate(..., max_new_tokens=1, return_dict_in_generate=True, output_hidden_states=True,
    output_logits=True)`` returns, from one forward pass (:func:`greedy_one_token`)."""

    sequences: torch.Tensor  # [B, T + 1] the prompt and the chosen token
    hidden_states: tuple[tuple[torch.Tensor, ...]]  # one step: every layer's [B, T, d]
    logits: tuple[torch.Tensor]  # one step: [B, V] float32, before any processing


def greedy_one_token(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> OneToken:
    """Greedy generation of one token after left-padded prompts as one forward pass (no key/value cache, the
    output layer at the last position only): ``generate``'s result where :func:`plain_greedy` holds, without its
    per-call setup, which is most of the time of a small model's pass."""
    out = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=position_ids(attention_mask), use_cache=False, output_hidden_states=True)
    logits = output_logits(model, out.last_hidden_state[:, -1]).float()  # [B, V]
    return OneToken(torch.cat([input_ids, logits.argmax(-1, keepdim=True)], 1), (out.hidden_states,), (logits,))


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


@dataclass
class OptionScores:
    """Every option of every question scored as the continuation of its question's prompt (:func:`score_options`).

    Sequence ``s`` is option ``options[s]`` after prompt ``question[s]``; positions count from the prompt's first
    token, so position ``p`` of sequence ``s`` is a prompt token when ``p < prompt_lengths[question[s]]``.

    Attributes:
        total: ``[S]`` the summed log-probability of each option's tokens.
        entropy: ``[S]`` the summed entropy of the distributions that predicted them.
        tokens: ``[S]`` each option's number of tokens.
    """

    total: torch.Tensor
    entropy: torch.Tensor
    tokens: torch.Tensor
    question: torch.Tensor
    prompt_lengths: torch.Tensor
    prompt_states: tuple[torch.Tensor, ...] | None  # shared: [B, Lp, d] per layer, prompts left-padded
    option_states: tuple[torch.Tensor, ...] | None  # shared: [S, M, d] per layer, options right-padded
    full_states: tuple[torch.Tensor, ...] | None = None  # full sequences: [S, T, d] per layer, right-padded

    def state(self, layer: int, seqs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``[n, d]`` the layer's state of sequence ``seqs[i]`` at position ``positions[i]``."""
        if self.full_states is not None:
            return self.full_states[layer][seqs, positions]
        prompt, option = self.prompt_states[layer], self.option_states[layer]
        q = self.question[seqs]
        length = self.prompt_lengths[q]
        in_prompt = positions < length
        from_prompt = prompt[q, (prompt.shape[1] - length + positions).clamp(max=prompt.shape[1] - 1)]
        from_option = option[seqs, (positions - length).clamp(min=0)]
        return torch.where(in_prompt.unsqueeze(-1), from_prompt, from_option)

    def prompt_last(self, layer: int, seqs: torch.Tensor) -> torch.Tensor:
        """``[n, d]`` the state at the prompt's final token."""
        return self.state(layer, seqs, self.prompt_lengths[self.question[seqs]] - 1)

    def prompt_mean(self, layer: int, seqs: torch.Tensor) -> torch.Tensor:
        """``[n, d]`` the mean state over the prompt's tokens."""
        q = self.question[seqs]
        length = self.prompt_lengths[q]
        states = self.full_states[layer][seqs] if self.full_states is not None else self.prompt_states[layer][q]
        width = states.shape[1]
        columns = torch.arange(width, device=states.device)[None]  # [1, W]
        # full sequences are right-padded (prompt first), shared prompts left-padded (prompt last)
        inside = (columns < length[:, None]) if self.full_states is not None else (columns >= width - length[:, None])
        return (states * inside.unsqueeze(-1)).sum(1) / length[:, None]


def score_options(model, prompts: list[list[int]], options: list[list[int]], question: list[int], pad: int,
                  hidden_states: bool = False, shared: bool = True) -> OptionScores:
    """Score option ``options[s]`` as the continuation of prompt ``prompts[question[s]]``, for every ``s``.

    ``shared``: each prompt goes through the model once and its options continue from its key/value cache (prompts
    left-padded, explicit position ids); otherwise every prompt + option is one full sequence. Both give the same
    log-probabilities and states up to float rounding; sharing saves the prompt's compute K − 1 times for K
    options."""
    device = model.device
    question_t = torch.as_tensor(question, device=device)
    if not shared:
        sequences = [prompts[q] + o for q, o in zip(question, options)]
        ids, mask = pad_batch(sequences, pad, left=False)
        marks, _ = pad_batch([[0] * len(prompts[q]) + [1] * len(o) for q, o in zip(question, options)], 0, left=False)
        out = score_continuations(model, ids.to(device), mask.to(device), marks.to(device), hidden_states)
        return OptionScores(out.logprobs.sum(1), out.entropy.sum(1), marks.sum(1).to(device), question_t,
                            torch.tensor([len(p) for p in prompts], device=device), None, None, out.hidden_states)
    decoder = model.get_decoder()
    prompt_ids, prompt_mask = (t.to(device) for t in pad_batch(prompts, pad, left=True))  # [B, Lp]
    first = decoder(input_ids=prompt_ids, attention_mask=prompt_mask,
                    position_ids=position_ids(prompt_mask), use_cache=True,
                    output_hidden_states=hidden_states)
    first_logprobs = output_logits(model, first.last_hidden_state[:, -1]).float().log_softmax(-1)  # [B, V]
    first_entropy = -(first_logprobs.exp() * first_logprobs).sum(-1)  # [B]
    cache = first.cache
    cache.batch_select_indices(question_t)  # every option continues its own prompt's keys and values
    option_ids, option_mask = (t.to(device) for t in pad_batch(options, pad, left=False))  # [S, M]
    lengths = prompt_mask.sum(1)  # [B]
    positions = lengths[question_t, None] + torch.arange(option_ids.shape[1], device=device)  # [S, M]
    out = decoder(input_ids=option_ids, attention_mask=torch.cat([prompt_mask[question_t], option_mask], 1),
                  position_ids=positions, cache=cache, use_cache=True, output_hidden_states=hidden_states)
    rows, cols = option_mask[:, 1:].bool().nonzero(as_tuple=True)  # option token t + 1 is predicted at t
    logprobs = output_logits(model, out.last_hidden_state[rows, cols]).float().log_softmax(-1)  # [N, V]
    chosen = logprobs.gather(-1, option_ids[rows, cols + 1].unsqueeze(-1)).squeeze(-1)  # [N]
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    total = first_logprobs[question_t].gather(-1, option_ids[:, :1]).squeeze(-1).index_add(0, rows, chosen)
    entropy_sum = first_entropy[question_t].index_add(0, rows, entropy)
    return OptionScores(total, entropy_sum, option_mask.sum(1), question_t, lengths,
                        first.hidden_states if hidden_states else None, out.hidden_states if hidden_states else None)
