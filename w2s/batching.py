"""Batches of token ids: one padding helper, and one batch format per use (student training, evaluation).

A row is a dict built by ``W2SDataModule`` (prompt and answer token ids, the label, the example); each student
declares which training batch it reads (``LoRAStudent.train_batch``).
"""

from __future__ import annotations

import numpy as np
import torch


def pad_batch(rows: list[list[int]], value: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids padded with ``value`` to one width (on the left for generation), and their mask."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), value, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):  # filled in numpy: a tensor per row costs more than the copy itself
        columns = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, columns], mask[i, columns] = r, 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def sft_batch(rows: list[dict], pad: int) -> dict:
    """Supervised fine-tuning: prompt + answer, right-padded, with the loss on the answer tokens only."""
    input_ids, attention_mask = pad_batch([r["prompt_ids"] + r["answer_ids"] for r in rows], pad, left=False)
    labels, _ = pad_batch([[-100] * len(r["prompt_ids"]) + r["answer_ids"] for r in rows], -100, left=False)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def prompt_batch(rows: list[dict], pad: int) -> dict:
    """Reinforcement learning: left-padded prompts to sample from, and each prompt's label and example (the
    reward parses a completion in its example's context)."""
    prompt_ids, prompt_mask = pad_batch([r["prompt_ids"] for r in rows], pad, left=True)
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "labels": [r["label"] for r in rows],
            "examples": [r["example"] for r in rows]}


def option_batch(rows: list[dict], pad: int) -> dict:
    """Multiple-choice evaluation: right-padded prompts, the option token ids (-1 where an example offers fewer
    options), the gold option's index and the position of each prompt's last token."""
    input_ids, attention_mask = pad_batch([r["prompt_ids"] for r in rows], pad, left=False)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "last": attention_mask.sum(1) - 1,
            "option_ids": pad_batch([r["option_ids"] for r in rows], -1, left=False)[0],
            "gold": torch.tensor([r["gold"] for r in rows]), "group": torch.tensor([r["group"] for r in rows])}


def choice_batch(rows: list[dict], pad: int, answer: str = "gold") -> dict:
    """Every option of every question, scored as the continuation of its question's prompt
    (``w2s.scoring.score_options``): ``prompts`` one token list per question, ``options`` one per (question, option)
    sequence, ``question`` / ``option`` whose each sequence is, ``chars`` its option's length in characters;
    ``answer`` (``gold`` to evaluate by likelihood, ``weak`` to train on every option, as the auxiliary confidence
    loss does) the option index per question. ``pad`` is unused: ``score_options`` pads (it is the signature every
    batch function shares)."""
    pairs = [(q, k) for q, r in enumerate(rows) for k in range(len(r["continuations"]))]
    return {"prompts": [r["prompt_ids"] for r in rows], "options": [rows[q]["continuations"][k] for q, k in pairs],
            "question": torch.tensor([q for q, _ in pairs]), "option": torch.tensor([k for _, k in pairs]),
            "chars": torch.tensor([rows[q]["chars"][k] for q, k in pairs], dtype=torch.float32),
            answer: torch.tensor([r[answer] for r in rows]), "group": torch.tensor([r["group"] for r in rows])}


def generation_batch(rows: list[dict], pad: int) -> dict:
    """Free-form evaluation: left-padded prompts to generate from, the gold answers and the examples."""
    prompt_ids, prompt_mask = pad_batch([r["prompt_ids"] for r in rows], pad, left=True)
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "gold": [r["gold"] for r in rows],
            "examples": [r["example"] for r in rows], "group": torch.tensor([r["group"] for r in rows])}
