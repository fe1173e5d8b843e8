"""Task adapters: how examples are prompted, which completion is a label, and when a weak label is correct."""

from __future__ import annotations

import re
from typing import Any

import datasets

from w2s.errors import W2SError

LETTERS = "ABCDEFGHIJ"
SPLITS = ("source", "target", "test")


def format_mcqa_prompt(question: str, choices: list[str]) -> str:
    """Zero-shot lettered prompt: question, one ``A. option`` line per choice, then ``Answer:``."""
    options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    return f"{question}{options}\nAnswer:"


class Task:
    """A task adapter: loads the source / target / test splits and defines prompts and correctness.

    Subclasses implement :meth:`load_splits`, :meth:`prompt`, :meth:`completion` and :meth:`parse`.
    """

    def load_splits(self) -> datasets.DatasetDict:
        raise NotImplementedError

    def prompt(self, example: dict) -> str:
        raise NotImplementedError

    def completion(self, label: str) -> str:
        """Text the student is trained to produce for ``label`` (appended right after the prompt)."""
        raise NotImplementedError

    def parse(self, generation: str) -> str | None:
        """The label in a teacher generation, or ``None`` when it cannot be parsed (counted as wrong)."""
        raise NotImplementedError

    def gold(self, example: dict) -> str:
        return example["answer"]

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes prompts or labels; part of every teacher-cache key."""
        return {"class": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def load(self) -> datasets.DatasetDict:
        """Load and validate the three splits."""
        splits = self.load_splits()
        for name in SPLITS:
            if name not in splits:
                raise W2SError(f"task {type(self).__name__} has no '{name}' split (found: {sorted(splits)})")
            if len(splits[name]) == 0:
                raise W2SError(f"the '{name}' split of task {type(self).__name__} is empty; point it at data")
        return splits


class MultipleChoiceTask(Task):
    """Multiple choice with lettered options; examples have ``id``, ``question``, ``choices``, ``answer``.

    Args:
        answer_prefix_space: the completion is ``" B"`` (a space, then the letter), as most tokenizers expect.
    """

    required_fields = ("id", "question", "choices", "answer")

    def __init__(self, answer_prefix_space: bool = True) -> None:
        self.answer_prefix_space = answer_prefix_space

    def prompt(self, example: dict) -> str:
        return format_mcqa_prompt(example["question"], example["choices"])

    def completion(self, label: str) -> str:
        return (" " if self.answer_prefix_space else "") + label

    def options(self, example: dict) -> list[str]:
        return list(LETTERS[: len(example["choices"])])

    def option_token_ids(self, tokenizer, example: dict) -> list[int]:
        """First token id of each option's completion (``" A"``, ``" B"``...): where answers are scored."""
        return [tokenizer(self.completion(o), add_special_tokens=False).input_ids[0] for o in self.options(example)]

    def parse(self, generation: str) -> str | None:
        match = re.search(r"\b([A-J])\b", generation.strip())
        return match.group(1) if match else None

    def check_fields(self, splits: datasets.DatasetDict) -> None:
        for name, split in splits.items():
            missing = [f for f in self.required_fields if f not in split.column_names]
            if missing:
                raise W2SError(
                    f"split '{name}' lacks field(s) {missing} (has {split.column_names}); "
                    "map your columns to id/question/choices/answer"
                )


class LocalMultipleChoice(MultipleChoiceTask):
    """Multiple-choice splits from a ``datasets.save_to_disk`` directory with source/target/test splits.

    Args:
        path: directory written by ``DatasetDict.save_to_disk``.
    """

    def __init__(self, path: str, answer_prefix_space: bool = True) -> None:
        super().__init__(answer_prefix_space)
        self.path = path

    def load_splits(self) -> datasets.DatasetDict:
        try:
            splits = datasets.load_from_disk(self.path)
        except FileNotFoundError:
            raise W2SError(f"dataset path '{self.path}' does not exist; set task.init_args.path") from None
        except (IndexError, ValueError, OSError):  # datasets cannot read back a split saved with no rows
            splits = datasets.DatasetDict({name: self._load_split(name) for name in SPLITS})
        self.check_fields(splits)
        return splits

    def _load_split(self, name: str) -> datasets.Dataset:
        try:
            return datasets.Dataset.load_from_disk(f"{self.path}/{name}")
        except FileNotFoundError:
            raise W2SError(f"dataset '{self.path}' has no '{name}' split; it needs source, target and test") from None
        except (IndexError, ValueError, OSError):
            raise W2SError(f"the '{name}' split of dataset '{self.path}' is empty or damaged; "
                           "point task.init_args.path at data with examples in every split") from None
