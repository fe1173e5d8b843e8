"""The toy math world as a task: built on first use, then read from disk like any local dataset."""

from __future__ import annotations

import datasets

from w2s.tasks.math_reasoning import FEATURES, MathReasoning


class ToyMath(MathReasoning):
    """Chains of clock arithmetic with worked solutions ending in ``\\boxed{}`` (see ``w2s.toy.arithmetic``):
    source problems have 1-2 operations, target and test problems 3-5. Models are ``toy:math-<seed>/teacher``
    and ``toy:math-<seed>/student``.

    Args:
        seed: which toy math world (problems and toy models derive from it).
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed, self.instruction, self.answer_pattern, self.chat_template = seed, "", None, False

    def hub_datasets(self) -> list[str]:
        return []

    def load_splits(self) -> datasets.DatasetDict:
        from w2s.toy.arithmetic import ensure_world

        splits = datasets.load_from_disk(str(ensure_world(self.seed) / "data"))
        return datasets.DatasetDict({name: split.select_columns(list(FEATURES)) for name, split in splits.items()})

    def fingerprint(self) -> dict:
        from w2s.toy.arithmetic import world_dir

        return {"class": "ToyMath", "world": world_dir(self.seed).name}
