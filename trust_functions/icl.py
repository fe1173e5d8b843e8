"""``ICLConfidence`` (ICL + I-Conf): the teacher's confidence after a second pass with solved source examples."""

from __future__ import annotations

import hashlib

import datasets
import numpy as np
import torch

from trust_functions.base import TrustFunction
from trust_functions.confidence import InternalConfidence
from w2s.errors import W2SError, check_ranges
from w2s.outputs import TeacherOutputs
from w2s.tasks.base import Task


class FewShot(Task):
    """A task whose prompts start with solved examples; everything else is the wrapped task's."""

    derived = True

    def __init__(self, task: Task, prefix: str) -> None:
        self._task, self._prefix = task, prefix
        self.chat_template, self.normalize = task.chat_template, task.normalize

    def prompt(self, example: dict) -> str:
        return self._prefix + self._task.prompt(example)

    @property
    def generates(self) -> bool:
        return self._task.generates

    def completion(self, label: str, example: dict) -> str:
        return self._task.completion(label, example)

    def option_texts(self, example: dict) -> list[str] | None:
        return self._task.option_texts(example)

    def parse(self, generation: str, example: dict) -> str | None:
        return self._task.parse(generation, example)

    def options(self, example: dict) -> list[str]:
        return self._task.options(example)

    def option_token_ids(self, tokenizer, example: dict) -> list[int] | None:
        return self._task.option_token_ids(tokenizer, example)

    def gold(self, example: dict) -> str:
        return self._task.gold(example)

    def is_correct(self, label: str | None, gold: str) -> bool:
        return self._task.is_correct(label, gold)

    def load_splits(self) -> datasets.DatasetDict:
        return self._task.load_splits()

    def fingerprint(self) -> dict:
        return {**self._task.fingerprint(), "few_shot": hashlib.sha256(self._prefix.encode()).hexdigest()[:16]}


class ICLConfidence(TrustFunction):
    """I-Confidence from a teacher pass whose prompts carry ``k`` solved source examples (the same shots for
    every target example), cached like the main pass.

    Args:
        k: number of solved examples (shots), drawn from the source set with their gold answers.
        seed: which shots are drawn.
        separator: text between consecutive shots and before the question.
    """

    row, title = "icl", "ICL + I-Confidence"

    def __init__(self, k: int = 4, seed: int = 0, separator: str = "\n\n") -> None:
        check_ranges("ICLConfidence", k=(k, "int >= 1"))
        self.k, self.seed, self.separator = k, seed, separator
        self.outputs: TeacherOutputs | None = None

    def shots_prefix(self, task: Task, source: datasets.Dataset) -> str:
        if len(source) < self.k:
            raise W2SError(f"ICLConfidence.k = {self.k} shots, but the source set has only {len(source)} examples")
        chosen = np.random.default_rng(self.seed).choice(len(source), size=self.k, replace=False)
        shots = [source[int(i)] for i in chosen]
        return "".join(task.prompt(s) + task.completion(task.gold(s), s) + self.separator for s in shots)

    def prepare(self, teacher, task: Task, splits: datasets.DatasetDict) -> None:
        few_shot = FewShot(task, self.shots_prefix(task, splits["source"]))
        self.outputs = teacher.label(few_shot, {"target": splits["target"]})["target"]

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        if self.outputs is None:
            raise RuntimeError("ICLConfidence.score called before prepare (the protocol calls it)")
        if list(self.outputs.ids) != list(target.ids):
            raise W2SError("ICLConfidence: the few-shot pass and the target set list different examples; "
                           "delete the teacher cache and rerun")
        return InternalConfidence().score(self.outputs.without_labels())
