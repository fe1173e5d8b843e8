"""The toy chess world as a task: built on first use, then read from disk like any labelled chess dataset."""

from __future__ import annotations

from w2s.tasks.chess import Chess


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
