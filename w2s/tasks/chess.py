"""``Chess``: the teacher proposes a move for a position; a weak label is right when it is Stockfish's best move
(or, with ``max_cp_loss``, a move that loses at most that many centipawns against it)."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import numpy as np

from w2s.cache import stable_hash
from w2s.errors import W2SError, check_ranges
from w2s.tasks.base import LETTERS, SPLITS, Task, format_mcqa_prompt, parse_letter
from w2s.tasks.stockfish import EngineSettings, board, label_positions

UCI = re.compile(r"(?<![A-Za-z0-9])([a-h][1-8][a-h][1-8][qrbn]?)(?![A-Za-z0-9])")
SAN_TOKEN = re.compile(r"[^\s,;()]+")
FEATURES = datasets.Features({"id": datasets.Value("string"), "fen": datasets.Value("string"),
                              "answer": datasets.Value("string"), "accepted": datasets.Value("string"),
                              "benchmark": datasets.Value("string"), "options": [datasets.Value("string")]})


def move_options(fen: str, best: str, rng: np.random.Generator, k: int = 4) -> list[str]:
    """``k`` candidate moves for a multiple-choice question: the best and ``k - 1`` other legal moves, shuffled."""
    others = sorted(m.uci() for m in board(fen).legal_moves if m.uci() != best)
    chosen = [best, *(others[i] for i in rng.choice(len(others), size=min(k - 1, len(others)), replace=False))]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def read_positions(path: str, fen_field: str = "fen", min_ply: int = 0) -> list[str]:
    """FENs from a local file: one FEN (or EPD line) per line (``.fen``, ``.epd``, ``.txt``), every position
    from ply ``min_ply`` on of every game of a ``.pgn``, or the ``fen_field`` column of a ``.jsonl`` /
    ``.json`` / ``.csv`` / ``.parquet`` file."""
    file = Path(path)
    if not file.is_file():
        raise W2SError(f"chess positions file {path} does not exist")
    suffix = file.suffix.lower()
    if suffix in (".fen", ".epd", ".txt"):
        return [line.strip() for line in file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if suffix == ".pgn":
        import chess.pgn

        fens = []
        with file.open() as handle:
            while (game := chess.pgn.read_game(handle)) is not None:
                position = game.board()
                for ply, move in enumerate(game.mainline_moves(), 1):
                    position.push(move)
                    if ply >= min_ply and not position.is_game_over():
                        fens.append(position.fen())
        return fens
    builders = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
    if suffix not in builders:
        raise W2SError(f"chess positions file {path}: use .fen/.epd/.txt (a FEN per line), .pgn, or "
                       ".jsonl/.json/.csv/.parquet with a {fen_field!r} column")
    table = datasets.load_dataset(builders[suffix], data_files=str(file), split="train")
    if fen_field not in table.column_names:
        raise W2SError(f"{path} has no {fen_field!r} column (columns: {table.column_names}); set "
                       "task.init_args.fen_field")
    return [str(f) for f in table[fen_field]]


class Chess(Task):
    """Best-move prediction. Each split is a local positions file (see :func:`read_positions`) or a directory
    written by ``DatasetDict.save_to_disk`` with labelled splits (the toy chess world); ground truth comes from
    Stockfish, computed once per position and engine setting and cached.

    The prompt gives the FEN, the side to move and (``legal_moves``) the legal moves in UCI; the weak label is the
    first UCI move of a generation, or the first SAN move legal in the position (``Nf3``, ``exd5``, ``O-O``),
    written back as UCI. An illegal UCI move is a weak label like any other, and wrong (a student trained on it
    learns a wrong answer); an answer with no move is unparsed, so wrong. The splits named in
    ``mcqa_splits`` ask the same question through another interface: multiple choice among four candidate moves
    (the best and three other legal ones), answered with a letter (the OOD_domain experiment fits a trust
    function on one interface and applies it to the other).

    Args:
        source, target, test: positions files of D_l, D_u and the evaluation split (or ``path`` for all three).
        path: a saved ``DatasetDict`` with ``source``/``target``/``test`` splits of ``{id, fen, answer,
            accepted, benchmark}`` (labels already stored).
        fen_field: FEN column of table files.
        min_ply: first ply of a PGN game whose positions are used.
        legal_moves: list the legal moves in the prompt.
        max_cp_loss: a move is right when it loses at most this many centipawns against the best (needs every
            move scored: slower labelling); ``None``: only the best move is right.
        engine_depth, engine_time, engine_path: Stockfish's search per position and binary.
        max_examples: keep the first N positions of each split.
        mcqa_splits: splits asked as multiple choice (e.g. ``[source]``: a trust function fitted on
            multiple-choice outputs, applied to move generation).
    """

    def __init__(
        self,
        source: str | None = None,
        target: str | None = None,
        test: str | None = None,
        path: str | None = None,
        fen_field: str = "fen",
        min_ply: int = 0,
        legal_moves: bool = True,
        max_cp_loss: int | None = None,
        engine_depth: int | None = 10,
        engine_time: float | None = None,
        engine_path: str | None = None,
        max_examples: int | None = None,
        mcqa_splits: list[str] | None = None,
    ) -> None:
        check_ranges("Chess", min_ply=(min_ply, "int >= 0"), max_cp_loss=(max_cp_loss, ">= 0"),
                     engine_depth=(engine_depth, "int >= 1"), engine_time=(engine_time, "> 0"),
                     max_examples=(max_examples, "int >= 1"))
        if path is None and None in (source, target, test):
            raise W2SError("the Chess task needs source, target and test positions files (or a saved dataset "
                           "path)")
        self.source, self.target, self.test, self.path = source, target, test, path
        self.fen_field, self.min_ply, self.legal_moves, self.max_cp_loss = fen_field, min_ply, legal_moves, max_cp_loss
        self.engine = EngineSettings(engine_depth, engine_time, all_moves=max_cp_loss is not None)
        self.engine_path, self.max_examples, self.chat_template = engine_path, max_examples, False
        self.mcqa_splits = list(mcqa_splits or [])
        if set(self.mcqa_splits) - set(SPLITS):
            raise W2SError(f"task mcqa_splits {self.mcqa_splits} may name only {', '.join(SPLITS)}")

    def fingerprint(self) -> dict:
        keep = ("source", "target", "test", "path", "fen_field", "min_ply", "legal_moves", "max_cp_loss",
                "max_examples", "mcqa_splits")
        return {"class": "Chess", **{k: getattr(self, k) for k in keep}, "engine": vars(self.engine),
                "parser": 2}  # 2: illegal UCI moves are weak labels

    def hub_datasets(self) -> list[str]:
        return []

    # ---- data ---------------------------------------------------------------------------------------------
    def load_splits(self) -> datasets.DatasetDict:
        if self.path is not None:
            try:
                splits = datasets.load_from_disk(self.path)
            except FileNotFoundError:
                raise W2SError(f"chess dataset {self.path} does not exist; set task.init_args.path") from None
            for name, split in splits.items():
                if missing := sorted(set(FEATURES) - set(split.column_names)):
                    raise W2SError(f"split '{name}' of chess dataset {self.path} lacks column(s) {missing}; a "
                                   f"labelled chess dataset has {sorted(FEATURES)}")
            splits = datasets.DatasetDict({name: splits[name].select_columns(list(FEATURES)) for name in splits})
        else:
            splits = datasets.DatasetDict({name: self.label(getattr(self, name), name) for name in SPLITS})
        return datasets.DatasetDict({name: split.add_column("interface", [self.interface(name)] * len(split))
                                     for name, split in splits.items()})

    def interface(self, split: str) -> str:
        return "mcqa" if split in self.mcqa_splits else "move"

    def label(self, file: str, split: str) -> datasets.Dataset:
        """The positions of ``file`` with Stockfish's labels."""
        fens = read_positions(file, self.fen_field, self.min_ply)[: self.max_examples]
        labels = label_positions(fens, self.engine, self.engine_path, desc=f"stockfish {split}")
        rngs = [np.random.default_rng(int(stable_hash(fen, 8), 16)) for fen in fens]  # options fixed per position
        return datasets.Dataset.from_dict(
            {"id": [f"{Path(file).stem}:{split}/{i}" for i in range(len(fens))], "fen": fens,
             "answer": [lab["best"] for lab in labels],
             "accepted": [" ".join(self.accepted(lab)) for lab in labels],
             "benchmark": [Path(file).stem] * len(fens),
             "options": [move_options(f, lab["best"], rng) for f, lab, rng in zip(fens, labels, rngs)]},
            features=FEATURES)

    def accepted(self, label: dict) -> list[str]:
        """The moves counted right for a position's engine label, the best first."""
        if self.max_cp_loss is None:
            return [label["best"]]
        within = sorted((loss, move) for move, loss in label["losses"].items() if loss <= self.max_cp_loss)
        return [label["best"], *(m for _, m in within if m != label["best"])]

    # ---- prompts and answers ------------------------------------------------------------------------------
    def prompt(self, example: dict) -> str:
        position = board(example["fen"])
        side = "White" if position.turn else "Black"
        if example.get("interface") == "mcqa":
            question = f"Position (FEN): {position.fen()}\n{side} to move. Which move is best?"
            return format_mcqa_prompt(question, list(example["options"]))
        moves = f"\nLegal moves: {' '.join(sorted(m.uci() for m in position.legal_moves))}" if self.legal_moves else ""
        return f"Position (FEN): {position.fen()}\n{side} to move.{moves}\nBest move:"

    def completion(self, label: str, example: dict) -> str:
        return f" {label.split()[0]}"

    def gold(self, example: dict) -> str:
        """The accepted moves, space-separated, the best first (a training label uses the best); the letter of
        the best move for a multiple-choice question."""
        if example.get("interface") == "mcqa":
            return LETTERS[list(example["options"]).index(example["answer"])]
        return example.get("accepted") or example["answer"]

    def parse(self, generation: str, example: dict) -> str | None:
        """The first UCI move (legal or not), else the first SAN move legal in the example's position; for a
        multiple-choice question, the option letter."""
        if example.get("interface") == "mcqa":
            return parse_letter(generation, LETTERS[: len(example["options"])])
        match = UCI.search(generation)
        if match:  # an illegal move is a weak label too: a wrong one (it never matches a best move)
            return match.group(1)
        position = board(example["fen"])
        for token in SAN_TOKEN.findall(generation)[:8]:
            try:
                return position.parse_san(token.rstrip(".!?")).uci()
            except ValueError:
                continue
        return None

    def is_correct(self, label: str | None, gold: str) -> bool:
        return label is not None and label in gold.split()
