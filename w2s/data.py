"""``W2SDataModule``: the student's batches — the trusted subset to train on, the target test split to evaluate on."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

import lightning as L
import torch
from torch.utils.data import DataLoader

from trust_functions.base import TrustFunction
from w2s.batching import choice_batch, generation_batch, option_batch
from w2s.errors import W2SError, check_ranges
from w2s.selection import Selection
from w2s.tasks.base import Task
from w2s.teacher import Teacher

if TYPE_CHECKING:
    from students.lora import LoRAStudent
    from w2s.protocol import TrustedSubset


class W2SDataModule(L.LightningDataModule):
    """Serves the student's batches. The ``data:`` block of a config also carries the parts of the protocol — the
    task, the teacher and the selection (the trust function is linked from the top-level ``trust:`` block) — which
    ``w2s.protocol.run_protocol`` runs; :meth:`connect` then hands this module the student (its tokenizer and
    training batch format) and the trusted subset it trains on. Validation and test batches are the target test
    split with gold answers.

    Args:
        task: the task adapter (splits, prompts, correctness).
        teacher: the weak teacher and its pass settings.
        trust: the trust function (set by the top-level ``trust:`` block).
        selection: how trust scores become the trusted subset.
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
        batch_size: int = 16,
        eval_batch_size: int = 128,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        check_ranges("data", batch_size=(batch_size, ">= 1"), eval_batch_size=(eval_batch_size, ">= 1"),
                     max_length=(max_length, ">= 2"))
        self.task, self.teacher, self.trust = task, teacher, trust
        self.student_task = task.for_student()  # the task as the student is asked it
        self.selection = selection or Selection()
        self.batch_size, self.eval_batch_size, self.max_length = batch_size, eval_batch_size, max_length
        self.subset: TrustedSubset | None = None
        self.eval_groups: list[str] = []
        self._student: LoRAStudent | None = None
        self._train: list[dict] | None = None
        self._eval: list[dict] | None = None

    def connect(self, student: LoRAStudent, subset: TrustedSubset | None = None) -> W2SDataModule:
        """Give the module what it needs late: the student (tokenizer, training batch format) and, to train, the
        trusted subset that ``run_protocol`` returned."""
        self._student, self.subset, self._train = student, subset, None
        return self

    def setup(self, stage: str | None = None) -> None:
        if self._student is None:
            raise W2SError("W2SDataModule.connect(student, subset) must run before the trainer uses the data module")
        if self._eval is None:  # setup runs for validate, fit and test: build the evaluation rows once
            test = self.student_task.load()["test"]
            # per-benchmark accuracy when the test split mixes benchmarks (the paper's five-benchmark average)
            self.eval_groups = sorted(set(test["benchmark"])) if "benchmark" in test.column_names else []
            options = [self.student_task.option_token_ids(self.tokenizer, ex) for ex in test]
            self._eval_batch = (choice_batch if self.student_task.option_texts(test[0]) is not None
                                else generation_batch if options[0] is None else option_batch)
            rows = [self._eval_row(ex, ids) for ex, ids in zip(test, options)]
            # evaluation batches of similar length pad less (accuracy does not depend on the order)
            self._eval = sorted(rows, key=lambda r: len(r["prompt_ids"]))
        if stage == "fit" and self._train is None:
            if self.subset is None:
                raise W2SError("training needs the trusted subset: connect(student, run_protocol(...)) first")
            if self._student.trains_on_options and self.subset.examples and \
                    not self.student_task.options(self.subset.examples[0]):
                raise W2SError(f"{type(self._student).__name__} trains on every option of a question (e.g. loss: "
                               f"logconf), but {type(self.student_task).__name__} is free-form; use loss: xent")
            self._shuffle_seed = torch.initial_seed()  # seed_everything's seed, whatever the trust fit drew since
            self._train = [self._train_row(ex, y) for ex, y in zip(self.subset.examples, self.subset.labels)]

    def evaluation_rows(self) -> list[dict]:
        """The test split as the student is evaluated on it (token ids and gold), in evaluation order."""
        self.setup("validate")
        return self._eval

    # ---- rows ------------------------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        return self._student.tokenizer

    def _prompt_ids(self, example: dict) -> list[int]:
        text = self.student_task.render(self.tokenizer, example)
        return self.tokenizer(text, add_special_tokens=self.student_task.add_special_tokens).input_ids

    def _train_row(self, example: dict, label: str) -> dict:
        task, prompt = self.student_task, self._prompt_ids(example)
        answer = self.tokenizer(task.completion(label, example), add_special_tokens=False).input_ids
        row = {"prompt_ids": prompt[max(0, len(prompt) + len(answer) - self.max_length):], "answer_ids": answer,
               "label": label, "example": example}
        if self._student.trains_on_options:  # every option's completion; the weak label's index among them
            texts = [task.completion(option, example) for option in task.options(example)]
            continuations = self.tokenizer(texts, add_special_tokens=False).input_ids
            row |= {"prompt_ids": prompt[max(0, len(prompt) + max(map(len, continuations)) - self.max_length):],
                    "continuations": continuations, "chars": [len(t) for t in texts],
                    "weak": task.options(example).index(label), "group": 0}
        return row

    def _eval_row(self, example: dict, options: list[int] | None) -> dict:
        task, group = self.student_task, self.eval_groups.index(example["benchmark"]) if self.eval_groups else 0
        key = str(example["id"])
        prompt = self._prompt_ids(example)[-self.max_length:]
        gold = task.options(example).index(task.gold(example)) if task.options(example) else None
        if (texts := task.option_texts(example)) is not None:  # likelihood: every option is scored
            continuations = self.tokenizer(texts, add_special_tokens=False).input_ids
            prompt = prompt[max(0, len(prompt) + max(map(len, continuations)) - self.max_length):]
            return {"prompt_ids": prompt, "continuations": continuations, "chars": [len(t) for t in texts],
                    "gold": gold, "group": group, "id": key}
        if options is None:  # free form (math, chess moves): the student generates its answer
            return {"prompt_ids": prompt, "gold": task.gold(example), "example": example, "group": group, "id": key}
        return {"prompt_ids": prompt, "option_ids": options, "group": group, "gold": gold, "id": key}

    # ---- loaders ---------------------------------------------------------------------------------------------
    def _collate(self, batch: Callable[[list[dict], int], dict]) -> Callable[[list[dict]], dict]:
        return partial(batch, pad=self.tokenizer.pad_token_id)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._train, batch_size=self.batch_size, collate_fn=self._collate(self._student.train_batch),
                          sampler=EpochShuffle(len(self._train), self._shuffle_seed))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._eval, batch_size=self.eval_batch_size, collate_fn=self._collate(self._eval_batch))

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
