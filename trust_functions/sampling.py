"""``SamplingAgreement``: how often the teacher, sampled again, gives an answer equivalent to its weak label."""

from __future__ import annotations

import torch

from trust_functions.base import TrustFunction
from w2s.errors import W2SError, check_ranges
from w2s.outputs import TeacherOutputs
from w2s.tasks.base import Task


class SamplingAgreement(TrustFunction):
    """Self-consistency as trust: ``k`` generations sampled at ``temperature`` for every source and target
    example (cached), each parsed by the task; the score is the share whose answer the task judges equivalent to
    the weak label (``task.is_correct(sample, weak label)``: math-verify equivalence for math, the same move for
    chess, the same letter for multiple choice). An unparsed weak label scores 0. Nothing is fitted.

    Args:
        k: samples per example.
        temperature: sampling temperature (> 0).
        seed: seed of the sampling.
    """

    row, title = "sampling", "Sampling agreement"

    def __init__(self, k: int = 8, temperature: float = 1.0, seed: int = 0) -> None:
        check_ranges("SamplingAgreement", k=(k, "int >= 1"), temperature=(temperature, "> 0"))
        self.k, self.temperature, self.seed = k, temperature, seed
        self.agreement: dict[str, float] = {}

    @classmethod
    def unsupported(cls, task: Task) -> str | None:
        return None if task.generates else "the teacher scores options by likelihood: there are no generations to sample"

    def prepare(self, teacher, task: Task, splits) -> None:
        parts = {name: splits[name] for name in ("source", "target")}
        passes = teacher.label(task, parts)  # the protocol's own pass: read from the cache
        for name, outputs in passes.items():
            samples = teacher.sample(task, parts[name], self.k, self.temperature, self.seed)
            for example, weak, drawn in zip(parts[name], outputs.weak_labels, samples, strict=True):
                agree = [weak is not None and task.is_correct(task.parse(s, example), weak) for s in drawn]
                self.agreement[str(example["id"])] = sum(agree) / len(agree)

    def score(self, outputs: TeacherOutputs) -> torch.Tensor:
        missing = [i for i in outputs.ids if i not in self.agreement]
        if missing:
            raise W2SError(f"SamplingAgreement has no samples for {len(missing)} of these examples (first: "
                           f"{missing[0]}); the protocol draws them (prepare) on the source and target splits")
        return torch.tensor([self.agreement[i] for i in outputs.ids], dtype=torch.float32)
