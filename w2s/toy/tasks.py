"""The toy worlds as tasks: each is built on first use (``w2s.toy``), then read from disk like any local dataset.

The toy package depends on ``w2s.tasks`` (its worlds are asked in the tasks' formats), never the other way round.
"""

from __future__ import annotations

import datasets

from w2s.tasks.base import LocalMultipleChoice
from w2s.tasks.chess import Chess
from w2s.tasks.math_reasoning import FEATURES, MathReasoning


class ToyKnowledge(LocalMultipleChoice):
    """Multiple-choice questions about the toy world's knowledge base (see ``w2s.toy``).

    Args:
        seed: which toy world (knowledge base, splits and toy models all derive from it).
        world: the named world (``w2s.toy.WORLDS``): ``confident`` (default; the teacher's errors are confident)
            or ``plain`` (output-layer confidence shows them). Model names must match: ``toy:plain-0/teacher``.
    """

    def __init__(self, seed: int = 0, world: str = "confident") -> None:
        from w2s.toy import WorldSpec

        super().__init__(path="", answer_prefix_space=True)
        WorldSpec.named(world, seed)  # an unknown world fails here, at config parse time
        self.seed, self.world = seed, world

    def load_splits(self) -> datasets.DatasetDict:
        from w2s.toy import ensure_world

        self.path = str(ensure_world(self.seed, world=self.world) / "data")
        return super().load_splits()

    def fingerprint(self) -> dict:
        from w2s.toy import world_dir

        return {"class": "ToyKnowledge", "world": world_dir(self.seed, world=self.world).name}


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


class ToyChess(Chess):
    """Positions from random games labelled by Stockfish (see ``w2s.toy.chess_world``): source positions early
    in a game, target and test positions late. Models are ``toy:chess-<seed>/teacher`` and
    ``toy:chess-<seed>/student``.

    Args:
        seed: which toy chess world (positions and toy models derive from it).
        mcqa_splits: splits asked as multiple choice instead of move generation (see ``Chess``).
    """

    def __init__(self, seed: int = 0, mcqa_splits: list[str] | None = None) -> None:
        super().__init__(path="toy", legal_moves=False, mcqa_splits=mcqa_splits)
        self.seed = seed

    def load_splits(self):
        from w2s.toy.chess_world import ensure_world

        self.path = str(ensure_world(self.seed) / "data")
        return super().load_splits()

    def fingerprint(self) -> dict:
        from w2s.toy.chess_world import world_dir

        return {**super().fingerprint(), "class": "ToyChess", "world": world_dir(self.seed).name}
