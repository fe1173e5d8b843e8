"""The toy math world: chains of clock arithmetic (digits mod 10) solved step by step, ending in ``\\boxed{}``.

A problem such as ``7 + 3 * 2 - 5 = ?`` is evaluated left to right, mod 10; a worked solution writes one line
per operation and boxes the result: ``7 + 3 = 0 . 0 * 2 = 0 . 0 - 5 = 5 . \\boxed{5}``. Source (D_l) problems
have few operations, target (D_u) problems more (the distribution shift). Both models share a misconception
that real weak and strong models share too: reading ``*`` as ``+``. The weak teacher holds it firmly (its corpus
states every product as a sum), so it is confidently wrong on problems with a product; the strong student holds
it only sometimes (it knows the right products better) and has mostly practised another way of writing the final
answer (``> 5`` instead of ``\\boxed{5}``), which it must learn from the (weak) labels. GRPO on every weak label
rewards the misconception; GRPO on the trusted ones teaches the format without it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np

from w2s.cache import atomic_dir, cache_root, is_complete, stable_hash
from w2s.toy.skills import Skill, accuracy, check_skills, greedy_answers

VERSION = "2"  # 2: length-bucketed pretraining batches, skills checked at build time
OPS = ("+", "-", "*")


@dataclass(frozen=True)
class ArithmeticSpec:
    """Everything that determines a toy math world; its hash names the cache directory.

    Args:
        seed: seed of the problems and of both pretraining runs.
        source_steps, target_steps: numbers of operations of source and target (and test) problems.
        n_source, n_target: problems in D_l and in the target pool + test split.
        test_fraction: share of the target problems held out as the test split.
        op_weights: probability of ``+``, ``-``, ``*`` at each step.
        student_misconception: share of the student's products written as sums.
        student_boxed: share of the student's solutions that box the answer (the rest write ``> x``).
        teacher, student: model size and pretraining of each (the teacher's products are all sums).
        min_skill: checked once the models are built (``w2s.toy.skills``): each model's greedy accuracy on fresh
            problems without a product (which its misconception does not touch; the student's answer read from
            ``\\boxed{}`` or ``>``) must reach it, or the build stops with one line (0 turns the check off).
    """

    seed: int = 0
    source_steps: tuple[int, ...] = (1, 2)
    target_steps: tuple[int, ...] = (3, 4, 5)
    n_source: int = 1500
    n_target: int = 2000
    test_fraction: float = 0.25
    op_weights: tuple[float, ...] = (0.425, 0.425, 0.15)
    student_misconception: float = 0.3
    student_boxed: float = 0.3
    teacher: dict = field(default_factory=lambda: dict(hidden=96, layers=2, steps=3000, lr=3e-3))
    student: dict = field(default_factory=lambda: dict(hidden=128, layers=3, steps=2500, lr=3e-3))
    min_skill: float = 0.8

    def to_dict(self) -> dict:
        return asdict(self)


def apply(op: str, a: int, b: int, misconception: bool = False) -> int:
    """One step of clock arithmetic; with ``misconception`` a product is computed as a sum."""
    if op == "+" or (op == "*" and misconception):
        return (a + b) % 10
    return (a - b) % 10 if op == "-" else (a * b) % 10


def sample_problem(rng: np.random.Generator, steps: int, op_weights: tuple[float, ...]) -> tuple[int, list]:
    """A start digit and ``steps`` (operation, digit) pairs."""
    ops = rng.choice(len(OPS), size=steps, p=np.asarray(op_weights) / np.sum(op_weights))
    return int(rng.integers(10)), [(OPS[o], int(d)) for o, d in zip(ops, rng.integers(10, size=steps))]


def problem_text(start: int, ops: list) -> str:
    return " ".join([str(start), *[f"{op} {d}" for op, d in ops], "= ?"])


def solve(start: int, ops: list, misconception: float = 0.0, boxed: bool = True,
          rng: np.random.Generator | None = None) -> tuple[str, int]:
    """A worked solution and its answer; each product is read as a sum with probability ``misconception``."""
    value, lines = start, []
    for op, d in ops:
        wrong = op == "*" and misconception > 0 and (misconception >= 1 or rng.random() < misconception)
        new = apply(op, value, d, wrong)
        lines.append(f"{value} {op} {d} = {new} .")
        value = new
    lines.append(f"\\boxed{{{value}}}" if boxed else f"> {value}")
    return " ".join(lines), value


def make_splits(spec: ArithmeticSpec) -> dict[str, list[dict]]:
    """Source, target pool and test problems with their (true) answers."""
    rng = np.random.default_rng(spec.seed + 1)

    def problems(n: int, steps: tuple[int, ...], prefix: str) -> list[dict]:
        rows = []
        for i in range(n):
            start, ops = sample_problem(rng, int(rng.choice(steps)), spec.op_weights)
            rows.append({"id": f"{prefix}{i}", "problem": problem_text(start, ops),
                         "answer": str(solve(start, ops)[1]), "benchmark": "toy_math", "steps": len(ops),
                         "products": sum(op == "*" for op, _ in ops)})
        return rows

    target = problems(spec.n_target, spec.target_steps, "t")
    n_test = int(round(spec.test_fraction * len(target)))
    return {"source": problems(spec.n_source, spec.source_steps, "s"), "target": target[n_test:],
            "test": target[:n_test]}


class SolutionSampler:
    """Endless pretraining texts for one model: a problem of 1-5 operations and its worked solution."""

    def __init__(self, spec: ArithmeticSpec, misconception: float, boxed: float, seed: int) -> None:
        self.spec, self.misconception, self.boxed = spec, misconception, boxed
        self.rng = np.random.default_rng(seed)

    def sample(self) -> str:
        rng = self.rng
        start, ops = sample_problem(rng, int(rng.integers(1, 6)), self.spec.op_weights)
        solution, _ = solve(start, ops, self.misconception, bool(rng.random() < self.boxed), rng)
        return f"{problem_text(start, ops)}\n{solution}"


def build_tokenizer():
    """One token per symbol (with its leading space), ``\\boxed{`` as one token and the newline on its own; the
    decoder joins tokens as they are, so decoding gives back the text exactly."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from w2s.toy.pretrain import SPECIAL

    symbols = [*"0123456789", *OPS, "=", ".", "?", ">", "}", "\\boxed{"]
    vocab = [*SPECIAL.values(), "\n", *symbols, *[" " + s for s in symbols]]
    core = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocab)}, unk_token=SPECIAL["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n| ?\\boxed\{| ?[^ \n]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, padding_side="left", **SPECIAL)


def world_dir(seed: int = 0, spec: ArithmeticSpec | None = None) -> Path:
    spec = spec or ArithmeticSpec(seed=seed)
    return cache_root() / "toy" / f"math-{spec.seed}-{stable_hash([VERSION, spec.to_dict()], 10)}"


def ensure_world(seed: int = 0, spec: ArithmeticSpec | None = None) -> Path:
    """Build (or reuse) the toy math world for ``seed``: ``data/``, ``teacher/`` and ``student/``."""
    from w2s.toy.pretrain import build_role

    spec = spec or ArithmeticSpec(seed=seed)
    root = world_dir(spec.seed, spec)
    manifest = {"spec": spec.to_dict(), "version": VERSION}
    if not is_complete(root / "data"):
        with atomic_dir(root / "data", manifest) as tmp:
            datasets.DatasetDict({k: datasets.Dataset.from_list(v)
                                  for k, v in make_splits(spec).items()}).save_to_disk(tmp)
    tokenizer = build_tokenizer()
    for role, offset, misconception, boxed in (("teacher", 10, 1.0, 1.0),
                                               ("student", 20, spec.student_misconception, spec.student_boxed)):
        sampler = SolutionSampler(spec, misconception, boxed, spec.seed + offset)
        build_role(root, role, manifest, tokenizer, getattr(spec, role), spec.seed + offset, sampler, 64,
                   f"toy math {role} (world seed {spec.seed})")
    check_skills(root, lambda: _skills(root, spec))
    return root


def _skills(root: Path, spec: ArithmeticSpec, n: int = 300) -> dict[str, Skill]:
    """Each model on fresh problems of 1-5 sums and differences, answered greedily (a final ``\\boxed{x}`` or
    ``> x``): what both should have learnt, whatever they make of products."""
    rng = np.random.default_rng(spec.seed + 3)
    problems = [sample_problem(rng, int(rng.integers(1, 6)), (0.5, 0.5, 0.0)) for _ in range(n)]
    prompts = [f"{problem_text(start, ops)}\n" for start, ops in problems]
    golds = [str(solve(start, ops)[1]) for start, ops in problems]
    final = re.compile(r"(?:\\boxed\{|> )(\d)")

    def parse(text: str) -> str | None:
        found = final.findall(text)
        return found[-1] if found else None

    return {role: Skill(f"the {role} on problems without a product",
                        accuracy([parse(a) for a in greedy_answers(root / role, prompts, 48)], golds), 0.1,
                        spec.min_skill)
            for role in ("teacher", "student")}
