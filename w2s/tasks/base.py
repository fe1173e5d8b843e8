"""Task adapters: how examples are prompted, which completion is a label, and when a weak label is correct."""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

import datasets

from w2s.errors import W2SError

LETTERS = "ABCDEFGHIJ"
SPLITS = ("source", "target", "test")
ANSWER_PATTERNS = (  # tried in order; the first match decides
    re.compile(r"(?i:answer)(?:\s+is)?\s*[:=]?\s*\(?([A-J])(?![A-Za-z])"),  # "The answer is B", "Answer: (C)"
    re.compile(r"^\(?([A-J])(?:[).:,]|\s*\n|\s*$)"),  # "B", "B)", "(B)", "B. Paris", "B\n\nQuestion: ..."
    re.compile(r"^\(?([a-j])\)?[.:]?$"),  # a lone lowercase letter: "b", "b)", "(b)"
    re.compile(r"(?i:answer)(?:\s+is)?\s*[:=]?\s*\(?([a-j])\)?(?:[.:]|$)"),  # "the answer is b."
    re.compile(r"\(([A-J])\)"),  # "(B)" anywhere
)


def parse_letter(generation: str, valid) -> str | None:
    """The answer letter of a multiple-choice generation (the first of ``ANSWER_PATTERNS`` that matches), or
    ``None`` when there is none or it is not in ``valid``."""
    text = generation.strip()
    for pattern in ANSWER_PATTERNS:
        match = pattern.search(text)
        if match:
            letter = match.group(1).upper()
            return letter if letter in valid else None
    return None


def format_mcqa_prompt(question: str, choices: list[str]) -> str:
    """Zero-shot lettered prompt: question, one ``A. option`` line per choice, then ``Answer:``."""
    options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    return f"{question}{options}\nAnswer:"


class Task:
    """A task adapter: loads the source / target / test splits and defines prompts and correctness.

    Subclasses implement :meth:`load_splits`, :meth:`prompt`, :meth:`completion` and :meth:`parse`.
    ``chat_template`` wraps each prompt in the tokenizer's chat template (a user turn, then the generation
    prompt) for instruct models; each model's own template is used, so teacher and student may differ.
    """

    chat_template: bool = False
    normalize: Literal["sum", "chars"] = "sum"  # how option likelihoods compare (see ``option_texts``)
    # a task built from another's prompts for an extra teacher pass (few-shot, P(True)): outside teacher outputs
    # (``Teacher.outputs_dir``) serve only the task's own prompts, never a derived task
    derived: bool = False

    def load_splits(self) -> datasets.DatasetDict:
        raise NotImplementedError

    def prompt(self, example: dict) -> str:
        raise NotImplementedError

    def render(self, tokenizer, example: dict) -> str:
        """The text a model is fed for ``example``: the prompt, or its chat-template rendering."""
        text = self.prompt(example)
        if not self.chat_template:
            return text
        if not getattr(tokenizer, "chat_template", None):
            raise W2SError(f"task.chat_template is on, but the tokenizer of {tokenizer.name_or_path} has no chat "
                           "template; turn it off for base models")
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True, enable_thinking=False)

    @property
    def add_special_tokens(self) -> bool:
        """Whether tokenizing a rendered prompt adds BOS and the like (a chat template already has them)."""
        return not self.chat_template

    @property
    def generates(self) -> bool:
        """Whether the teacher answers by generating text (``False``: it scores given options by likelihood)."""
        return True

    def completion(self, label: str, example: dict) -> str:
        """Text the student is trained to produce for ``label`` (appended right after ``example``'s prompt)."""
        raise NotImplementedError

    def parse(self, generation: str, example: dict) -> str | None:
        """The label in a generation (the teacher's or a student's) for ``example``, or ``None`` when it cannot be
        parsed (counted as wrong and reported)."""
        raise NotImplementedError

    def for_student(self) -> "Task":
        """The task as the student is asked it (its prompts, completions and scoring); the same task unless a
        task lets the student answer through another interface than the teacher."""
        return self

    def options(self, example: dict) -> list[str]:
        """The labels a multiple-choice example offers (``["A", "B", ...]``); free-form tasks offer none."""
        return []

    def option_texts(self, example: dict) -> list[str] | None:
        """The completion of each option, where the options themselves are scored by their log-likelihood (the
        likelihood interface: the weak label is the most likely option); ``None`` otherwise."""
        return None

    def option_token_ids(self, tokenizer, example: dict) -> list[int] | None:
        """The token id that starts each option's completion, where answers are scored by likelihood; ``None``
        for free-form tasks, whose answers are generated and parsed."""
        return None

    def hub_datasets(self) -> list[str]:
        """Hub dataset ids the task reads (checked before a run starts); none by default."""
        return []

    def gold(self, example: dict) -> str:
        return example["answer"]

    def is_correct(self, label: str | None, gold: str) -> bool:
        """Whether a weak label is right (exact match here; math tasks test equivalence)."""
        return label is not None and label == gold

    def judge(self, generation: str, example: dict, label: str) -> bool:
        """Whether a generation answers ``example`` with ``label`` (its gold answer, or a trusted weak label):
        the one check behind the teacher's correctness, the student's accuracy and the GRPO reward."""
        return self.is_correct(self.parse(generation, example), label)

    def reward(self, completion: str, label: str, example: dict) -> float:
        """An RL student's reward: 1 when the completion's answer is right for the (trusted weak) label."""
        return float(self.judge(completion, example, label))

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
    """Multiple choice; examples have ``id``, ``question``, ``choices``, ``answer`` (a letter), and a label is the
    letter of an option.

    Two answer interfaces: ``letters`` lists the options as ``A. ...`` lines and the model answers with a letter
    (generated; its option distribution is read from the letter tokens); ``likelihood`` (cloze) asks
    ``Question: ... Answer:`` and scores every option's text as the continuation: the answer is the most likely
    option, and a student learns to write the option's text.

    Args:
        answer_prefix_space: the completion is ``" B"`` (a space, then the letter), as most tokenizers expect.
        chat_template: wrap prompts in each model's chat template (see :class:`Task`).
        interface: ``letters`` or ``likelihood``.
        normalize: how the likelihood interface compares options: ``sum`` of the token log-probs, or ``chars``:
            that sum per character of the option's text (longer options are not penalised).
        student_interface: the interface the student is trained and evaluated through (default: ``interface``);
            labels are option letters either way, so a teacher may answer by likelihood and a student by letter.
    """

    required_fields = ("id", "question", "choices", "answer")

    def __init__(self, answer_prefix_space: bool = True, chat_template: bool = False,
                 interface: Literal["letters", "likelihood"] = "letters",
                 normalize: Literal["sum", "chars"] = "sum",
                 student_interface: Literal["letters", "likelihood"] | None = None) -> None:
        self.answer_prefix_space, self.chat_template = answer_prefix_space, chat_template
        self.interface, self.normalize, self.student_interface = interface, normalize, student_interface

    def fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in super().fingerprint().items() if k != "student_interface"}  # not the teacher's

    @property
    def generates(self) -> bool:
        return self.interface != "likelihood"

    def for_student(self) -> "MultipleChoiceTask":
        if self.student_interface in (None, self.interface):
            return self
        student = copy.copy(self)
        student.interface = self.student_interface
        return student

    def prompt(self, example: dict) -> str:
        if self.interface == "likelihood":
            return f"Question: {example['question']}\nAnswer:"
        return format_mcqa_prompt(example["question"], example["choices"])

    def completion(self, label: str, example: dict) -> str:
        if self.interface == "likelihood":
            return " " + example["choices"][LETTERS.index(label)]
        return (" " if self.answer_prefix_space else "") + label

    def options(self, example: dict) -> list[str]:
        return list(LETTERS[: len(example["choices"])])

    def option_texts(self, example: dict) -> list[str] | None:
        if self.interface != "likelihood":
            return None
        return [self.completion(letter, example) for letter in self.options(example)]

    def option_token_ids(self, tokenizer, example: dict) -> list[int] | None:
        """First token id of each option's completion (``" A"``, ``" B"``...): where lettered answers are scored."""
        if self.interface == "likelihood":
            return None
        return [tokenizer(self.completion(o, example), add_special_tokens=False).input_ids[0]
                for o in self.options(example)]

    def parse(self, generation: str, example: dict) -> str | None:
        """The answer letter in ``" B"``, ``"B)"``, ``"(B)"``, ``"B. Paris"``, ``"The answer is B"``, ``"b"``...;
        ``None`` when there is none or it is not one of the example's options. With the likelihood interface a
        generation is an option's text: its letter."""
        if self.interface == "likelihood":
            texts = [t.strip() for t in example["choices"]]
            return LETTERS[texts.index(generation.strip())] if generation.strip() in texts else None
        return parse_letter(generation, self.options(example))

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
        answer_prefix_space, chat_template, interface, normalize, student_interface: see
            :class:`MultipleChoiceTask`.
    """

    def __init__(self, path: str, answer_prefix_space: bool = True, chat_template: bool = False,
                 interface: Literal["letters", "likelihood"] = "letters",
                 normalize: Literal["sum", "chars"] = "sum",
                 student_interface: Literal["letters", "likelihood"] | None = None) -> None:
        super().__init__(answer_prefix_space, chat_template, interface, normalize, student_interface)
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
