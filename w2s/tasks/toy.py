"""The embedded toy world as a task: built on first use, then loaded from disk like any local dataset."""

from __future__ import annotations

import datasets

from w2s.tasks.base import LocalMultipleChoice


class ToyKnowledge(LocalMultipleChoice):
    """Multiple-choice questions about the toy world's knowledge base (see ``w2s.toy``).

    Args:
        seed: which toy world (knowledge base, splits and toy models all derive from it).
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(path="", answer_prefix_space=True)
        self.seed = seed

    def load_splits(self) -> datasets.DatasetDict:
        from w2s.toy import ensure_world

        self.path = str(ensure_world(self.seed) / "data")
        return super().load_splits()

    def fingerprint(self) -> dict:
        from w2s.toy import world_dir

        return {"class": "ToyKnowledge", "world": world_dir(self.seed).name}
