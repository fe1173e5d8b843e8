"""The embedded toy world as a task: built on first use, then loaded from disk like any local dataset."""

from __future__ import annotations

import datasets

from w2s.tasks.base import LocalMultipleChoice


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
