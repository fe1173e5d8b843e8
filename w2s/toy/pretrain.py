"""Tokenizer and tiny Qwen3 models for the toy world (a causal LM teacher and student, a sequence-classifier
reward model), trained briefly on CPU and saved like hub models."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM, Qwen3ForSequenceClassification

from w2s.batching import pad_batch
from w2s.cache import atomic_dir, is_complete
from w2s.toy.world import CorpusSampler

log = logging.getLogger(__name__)

SPECIAL = {"pad_token": "<pad>", "unk_token": "<unk>", "eos_token": "<eos>"}


def build_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """Word-level tokenizer (split on whitespace and punctuation) wrapped as a ``PreTrainedTokenizerFast``."""
    vocab = {tok: i for i, tok in enumerate([*SPECIAL.values(), *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, padding_side="left", **SPECIAL)


def build_model(tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int, seed: int, reward: bool = False):
    """A tiny ``Qwen3ForCausalLM`` (or, with ``reward``, a one-logit ``Qwen3ForSequenceClassification``) from
    config, randomly initialised."""
    torch.manual_seed(seed)
    heads = max(2, hidden // 32)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=hidden // heads,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        num_labels=1,
    )
    return (Qwen3ForSequenceClassification if reward else Qwen3ForCausalLM)(config)


def pretrain(
    model: Qwen3ForCausalLM | Qwen3ForSequenceClassification,
    tokenizer: PreTrainedTokenizerFast,
    sampler: CorpusSampler,
    steps: int,
    lr: float = 1e-2,
    batch_size: int = 64,
    max_length: int = 32,
    desc: str = "pretrain",
) -> Qwen3ForCausalLM:
    """Next-token training on texts from ``sampler`` or, for a reward model, correctness training on its
    judged answers (AdamW, linear warmup, cosine decay)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    model.train()
    bar = tqdm(range(steps), desc=desc, leave=False)
    for _ in bar:
        if isinstance(model, Qwen3ForSequenceClassification):
            texts, correct = zip(*(sampler.judged() for _ in range(batch_size)))
            enc = tokenizer(list(texts), padding=True, padding_side="right", return_tensors="pt")
            logits = model(**enc).logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(correct).float())
            loss.backward()
        else:
            texts = [sampler.sample() + tokenizer.eos_token for _ in range(batch_size)]
            loss = lm_loss_backward(model, tokenizer(texts, truncation=True, max_length=max_length).input_ids,
                                    tokenizer.pad_token_id)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


def lm_loss_backward(model, rows: list[list[int]], pad_id: int) -> torch.Tensor:
    """Backpropagate the mean next-token loss over every token of ``rows``, and return it.

    The rows are sorted by length and cut into the two buckets that need the least padding (short fact
    sentences pad to a few tokens, not to the longest question), each run as its own forward pass; the token
    losses are summed over both and divided by the batch's token count: the same objective as one padded batch,
    at about 40 % of its cost on these tiny models."""
    rows = sorted(rows, key=len)
    lengths = [len(r) for r in rows]
    # padded tokens of a cut before row k: k * lengths[k-1] + (n - k) * lengths[-1]
    cut = min(range(1, len(rows) + 1), key=lambda k: k * lengths[k - 1] + (len(rows) - k) * lengths[-1])
    total = sum(n - 1 for n in lengths)  # predicted tokens: every token but each row's first
    loss = torch.zeros(())
    for bucket in (rows[:cut], rows[cut:]):
        if not bucket:
            continue
        ids, mask = pad_batch(bucket, pad_id, left=False)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # [B, T-1, V] predicts ids[:, 1:]
        labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        part = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="sum")
        (part / total).backward()
        loss = loss + part.detach() / total
    return loss


def build_role(root: Path, role: str, manifest: dict, tokenizer: PreTrainedTokenizerFast, cfg: dict, seed: int,
               sampler, max_length: int, desc: str, reward: bool = False) -> None:
    """Pretrain the tiny model of ``cfg`` (hidden, layers, steps, lr) on ``sampler`` and save it with its
    tokenizer (atomically) as ``root/role``; nothing when it is already there."""
    if is_complete(root / role):
        return
    log.info("building %s (cached under %s)", desc, root)
    with torch.random.fork_rng():  # building must not change the run's random stream (cold == warm)
        model = build_model(tokenizer, cfg["hidden"], cfg["layers"], seed=seed, reward=reward)
        pretrain(model, tokenizer, sampler, steps=cfg["steps"], lr=cfg["lr"], max_length=max_length, desc=desc)
    with atomic_dir(root / role, manifest) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
