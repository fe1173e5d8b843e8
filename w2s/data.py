"""``W2SDataModule``: the teacher pass, trust fit, selection, and the student's data (DESIGN.md steps 1-4)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from trust_functions.base import TrustFunction
from w2s import metrics
from w2s.errors import W2SError
from w2s.models import load_tokenizer
from w2s.selection import Selection
from w2s.tasks.base import Task
from w2s.teacher import Teacher, TeacherOutputs, pad_batch

log = logging.getLogger(__name__)


class W2SDataModule(L.LightningDataModule):
    """Runs the learning-to-trust protocol up to the trusted subset, then serves the student's batches.

    ``prepare_data`` runs (or reuses) the cached teacher pass; ``setup`` fits the trust function on the source
    outputs, scores the target outputs without their correctness, selects the trusted subset and tokenizes
    it. Validation and test batches are the target test split with gold answers.

    Args:
        task: the task adapter (splits, prompts, correctness).
        teacher: the weak teacher and its pass settings.
        trust: the trust function (set by the top-level ``trust:`` block).
        selection: how trust scores become the trusted subset.
        student: the student model name, for its tokenizer (linked from ``model.model``).
        batch_size: student training batch size.
        eval_batch_size: batch size of validation and test.
        max_length: longest student sequence (prompt + answer), in tokens.
    """

    def __init__(
        self,
        task: Task,
        teacher: Teacher,
        trust: TrustFunction | None = None,
        selection: Selection | None = None,
        student: str = "",
        batch_size: int = 16,
        eval_batch_size: int = 128,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        self.task, self.teacher, self.student = task, teacher, student
        self.trust = trust
        self.selection = selection or Selection()
        self.batch_size, self.eval_batch_size, self.max_length = batch_size, eval_batch_size, max_length
        self.report: dict[str, Any] = {}
        self.target_scores: torch.Tensor | None = None
        self.target_correct: torch.Tensor | None = None
        self._splits = None
        self._outputs: dict[str, TeacherOutputs] | None = None
        self._train: list[dict] | None = None
        self.eval_groups: list[str] = []

    @property
    def splits(self):
        if self._splits is None:
            self._splits = self.task.load()
        return self._splits

    def teacher_outputs(self) -> dict[str, TeacherOutputs]:
        """Teacher outputs on the source and target splits (cached on disk, and here after the first call)."""
        if self._outputs is None:
            self._outputs = self.teacher.label(self.task, {"source": self.splits["source"],
                                                           "target": self.splits["target"]})
        return self._outputs

    def prepare_data(self) -> None:
        self.teacher_outputs()

    def setup(self, stage: str | None = None) -> None:
        if self.trust is None:
            raise W2SError("no trust function configured; add a top-level 'trust:' block or --trust NAME")
        if self._train is None:  # setup runs for validate, fit and test: build everything once
            self._shuffle_seed = torch.initial_seed()  # seed_everything's seed, whatever the trust fit drew since
            self.tokenizer = load_tokenizer(self.student)
            test = self.splits["test"]
            # per-benchmark accuracy when the test split mixes benchmarks (the paper's five-benchmark average)
            self.eval_groups = sorted(set(test["benchmark"])) if "benchmark" in test.column_names else []
            self._eval = [self._eval_example(ex) for ex in test]
            self._train = self._trusted_subset(self.teacher_outputs())

    # ---- steps 3-4: trust and selection --------------------------------------------------------------------
    def _trusted_subset(self, outputs: dict[str, TeacherOutputs]) -> list[dict]:
        source, target = outputs["source"], outputs["target"]
        self.trust.prepare(self.teacher, self.task, self.splits)
        self.trust.fit(source)
        scores = torch.as_tensor(self.trust.score(target.without_labels()), dtype=torch.float32).flatten()
        if scores.shape != (len(target),) or not torch.isfinite(scores).all():
            raise W2SError(f"{self.trust.name}.score returned {tuple(scores.shape)} scores (non-finite or wrong "
                           f"shape) for {len(target)} target examples")
        chosen = torch.arange(len(target)) if self.trust.keep_all else self.selection(scores)
        if len(chosen) == 0:
            raise W2SError(f"the selection kept no target example (mode {self.selection.mode}); "
                           "lower selection.threshold or use mode fraction")
        correct = torch.as_tensor(np.asarray(target.correct))
        self.target_scores, self.target_correct = scores, correct  # evaluation only (figures), never selection
        self.report = {
            "teacher": {"accuracy": {"source": source.accuracy, "target": target.accuracy},
                        "unparsed": {"source": source.n_unparsed, "target": target.n_unparsed}},
            "trust": {"name": self.trust.name, **metrics.trust_metrics(scores, correct),
                      "purity": float(correct[chosen].float().mean()),
                      "source_val": getattr(self.trust, "source_val", {})},
            "selection": {"n": len(chosen), "mode": "all" if self.trust.keep_all else self.selection.mode,
                          "labels": "gold" if self.trust.uses_gold_labels else "weak"},
        }
        target_examples = self.splits["target"]
        labels = ([self.task.gold(target_examples[int(i)]) for i in chosen] if self.trust.uses_gold_labels
                  else [target.weak_labels[int(i)] for i in chosen])
        keep = [(int(i), y) for i, y in zip(chosen, labels) if y is not None]
        self.report["selection"]["skipped_unparsed"] = len(chosen) - len(keep)
        if not keep:
            raise W2SError(f"none of the {len(chosen)} selected weak labels could be parsed from the teacher's "
                           "generations, so the student would train on nothing; raise data.teacher.max_new_tokens "
                           "or fix the task's answer format (answer_pattern)")
        return [self._train_example(target_examples[i], y) for i, y in keep]

    # ---- student batches -----------------------------------------------------------------------------------
    def _prompt_ids(self, example: dict) -> list[int]:
        text = self.task.render(self.tokenizer, example)
        return self.tokenizer(text, add_special_tokens=self.task.add_special_tokens).input_ids

    def _train_example(self, example: dict, label: str) -> dict:
        prompt = self._prompt_ids(example)
        answer = self.tokenizer(self.task.completion(label), add_special_tokens=False).input_ids
        return {"prompt_ids": prompt[max(0, len(prompt) + len(answer) - self.max_length):], "answer_ids": answer,
                "label": label}

    def _eval_example(self, example: dict) -> dict:
        group = self.eval_groups.index(example["benchmark"]) if self.eval_groups else 0
        prompt = self._prompt_ids(example)[-self.max_length:]
        if not hasattr(self.task, "option_token_ids"):  # free form (math): the student generates its answer
            return {"prompt_ids": prompt, "gold": self.task.gold(example), "group": group}
        return {"prompt_ids": prompt, "option_ids": self.task.option_token_ids(self.tokenizer, example),
                "gold": self.task.options(example).index(self.task.gold(example)), "group": group}

    def _collate(self, rows: list[dict]) -> dict:
        """Training batches serve both kinds of student: ``input_ids`` / ``labels`` (prompt + answer, right
        padding) for SFT and ``prompt_ids`` / ``prompt_mask`` (left padding) + ``weak_labels`` for GRPO.
        Evaluation batches hold the options (multiple choice) or the prompts and gold answers (free form)."""
        pad = self.tokenizer.pad_token_id
        if "label" in rows[0]:
            sequences = [r["prompt_ids"] + r["answer_ids"] for r in rows]
            labels = [[-100] * len(r["prompt_ids"]) + r["answer_ids"] for r in rows]
            input_ids, attention_mask = pad_batch(sequences, pad, left=False)
            prompt_ids, prompt_mask = pad_batch([r["prompt_ids"] for r in rows], pad, left=True)
            return {"input_ids": input_ids, "attention_mask": attention_mask,
                    "labels": pad_batch(labels, -100, left=False)[0], "prompt_ids": prompt_ids,
                    "prompt_mask": prompt_mask, "weak_labels": [r["label"] for r in rows]}
        batch = {"group": torch.tensor([r["group"] for r in rows])}
        if "option_ids" not in rows[0]:
            batch["prompt_ids"], batch["prompt_mask"] = pad_batch([r["prompt_ids"] for r in rows], pad, left=True)
            return batch | {"gold": [r["gold"] for r in rows]}
        batch["input_ids"], batch["attention_mask"] = pad_batch([r["prompt_ids"] for r in rows], pad, left=False)
        batch["option_ids"] = pad_batch([r["option_ids"] for r in rows], -1, left=False)[0]
        batch["gold"] = torch.tensor([r["gold"] for r in rows])
        batch["last"] = batch["attention_mask"].sum(1) - 1
        return batch

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._train, batch_size=self.batch_size, collate_fn=self._collate,
                          sampler=EpochShuffle(len(self._train), self._shuffle_seed))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._eval, batch_size=self.eval_batch_size, collate_fn=self._collate)

    test_dataloader = val_dataloader


class EpochShuffle(torch.utils.data.Sampler):
    """A fresh permutation every epoch drawn from (seed, epoch) alone, so a run resumed from an end-of-epoch
    checkpoint sees the same batches as a run that was never interrupted (Lightning calls ``set_epoch``)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed((self.seed + 1_000_003 * self.epoch) % 2**63)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n

