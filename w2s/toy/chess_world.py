"""The toy chess world: positions from random games, Stockfish's best move for each, and two tiny models that know
the best moves of some positions.

Positions come from games of random legal moves (captures preferred, so material thins out as a game goes on):
source (D_l) positions are early in a game, target (D_u) and test positions late (the distribution shift).
Stockfish labels every position once (``w2s.tasks.stockfish``, the same code as real positions files). Neither
tiny model can play chess; like the toy knowledge world's models with facts, they *know* best moves:
- the **teacher** has studied a share of all positions (``teacher_coverage``) in the task's own two interfaces
  (move generation and multiple choice) and answers the rest with whatever move it associates with the board;
- the **student** has studied every position, but only as ``<FEN> best <move>``: it must learn the task's prompt
  from the (weak) labels, and a wrong label teaches it a wrong move.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np

from w2s.cache import atomic_dir, cache_root, is_complete, stable_hash
from w2s.toy.skills import Skill, accuracy, check_skills, greedy_answers

VERSION = "2"  # 2: length-bucketed pretraining batches, skills checked at build time


@dataclass(frozen=True)
class ChessSpec:
    """Everything that determines a toy chess world; its hash names the cache directory.

    Args:
        seed: seed of the games and of both pretraining runs.
        n_source, n_target: positions in D_l and in the target pool + test split.
        test_fraction: share of the target positions held out as the test split.
        source_plies, target_plies: ranges (inclusive) of the ply at which a game's position is taken.
        capture_bias: probability that a random game takes a capture when one is legal.
        engine_depth: Stockfish's depth for the labels.
        teacher_coverage: share of all positions the teacher has studied.
        teacher, student: model size and pretraining of each.
        min_skill: checked once the models are built (``w2s.toy.skills``): the teacher's accuracy on positions it
            has studied (move interface) and the student's on every position in its practice form must reach it,
            or the build stops with one line (0 turns the check off).
    """

    seed: int = 0
    n_source: int = 400
    n_target: int = 800
    test_fraction: float = 0.3
    source_plies: tuple[int, int] = (6, 20)
    target_plies: tuple[int, int] = (30, 60)
    capture_bias: float = 0.5
    engine_depth: int = 8
    teacher_coverage: float = 0.5
    teacher: dict = field(default_factory=lambda: dict(hidden=64, layers=2, steps=2000, lr=3e-3, max_length=48))
    student: dict = field(default_factory=lambda: dict(hidden=128, layers=3, steps=2000, lr=3e-3, max_length=32))
    min_skill: float = 0.8

    def to_dict(self) -> dict:
        return asdict(self)


def random_position(rng: np.random.Generator, plies: int, capture_bias: float) -> str | None:
    """The FEN after ``plies`` random legal moves from the start (``None`` when the game ends first or the
    position has fewer than four legal moves, too few for a multiple-choice question)."""
    import chess

    board = chess.Board()
    for _ in range(plies):
        moves = list(board.legal_moves)
        if not moves:
            return None
        captures = [m for m in moves if board.is_capture(m)]
        pool = captures if captures and rng.random() < capture_bias else moves
        board.push(pool[int(rng.integers(len(pool)))])
    return board.fen() if board.legal_moves.count() >= 4 and not board.is_game_over() else None


def sample_positions(rng: np.random.Generator, n: int, plies: tuple[int, int], capture_bias: float,
                     seen: set[str]) -> list[str]:
    """``n`` distinct positions (none in ``seen``, which is updated) at plies drawn from ``plies``."""
    out: list[str] = []
    while len(out) < n:
        fen = random_position(rng, int(rng.integers(plies[0], plies[1] + 1)), capture_bias)
        if fen is not None and fen not in seen:
            seen.add(fen)
            out.append(fen)
    return out


def make_splits(spec: ChessSpec) -> dict[str, list[dict]]:
    """Source, target pool and test positions with Stockfish's best move and multiple-choice options."""
    from w2s.tasks.chess import move_options
    from w2s.tasks.stockfish import EngineSettings, label_positions

    rng, seen = np.random.default_rng(spec.seed + 1), set()
    source = sample_positions(rng, spec.n_source, spec.source_plies, spec.capture_bias, seen)
    target = sample_positions(rng, spec.n_target, spec.target_plies, spec.capture_bias, seen)
    labels = label_positions(source + target, EngineSettings(depth=spec.engine_depth), desc="toy chess labels")
    rows = []
    for i, (fen, label) in enumerate(zip(source + target, labels)):
        split = "s" if i < len(source) else "t"
        rows.append({"id": f"{split}{i}", "fen": fen, "answer": label["best"], "accepted": label["best"],
                     "benchmark": "toy_chess", "options": move_options(fen, label["best"], rng),
                     "ply": int(fen.split()[-1]) * 2 - (fen.split()[1] == "w") - 1})
    n_test = int(round(spec.test_fraction * len(target)))
    return {"source": rows[: len(source)], "target": rows[len(source) + n_test:],
            "test": rows[len(source): len(source) + n_test]}


def practice_text(example: dict) -> str:
    """How the student has studied a position: ``<FEN> best <move>``."""
    return f"{example['fen']} best {example['answer']}"


class StudySampler:
    """Endless pretraining texts: the task's prompt and answer (``task`` given: the teacher, both interfaces)
    or the practice text (the student) of a random studied position."""

    def __init__(self, examples: list[dict], task=None, seed: int = 0) -> None:
        self.examples, self.task, self.rng = examples, task, np.random.default_rng(seed)

    def sample(self) -> str:
        example = self.examples[int(self.rng.integers(len(self.examples)))]
        if self.task is None:
            return practice_text(example)
        interface = "mcqa" if self.rng.random() < 0.5 else "move"
        example = {**example, "interface": interface}
        return self.task.prompt(example) + self.task.completion(self.task.gold(example), example)


def world_texts(rows: list[dict], task) -> list[str]:
    """Every text either model reads (for the vocabulary)."""
    texts = []
    for example in rows:
        texts.append(practice_text(example))
        for interface in ("move", "mcqa"):
            e = {**example, "interface": interface}
            texts.append(task.prompt(e) + task.completion(task.gold(e), e))
    return texts


def build_tokenizer(texts: list[str]):
    """Word-level tokenizer over the world's texts (FEN ranks, UCI moves and prompt words are tokens)."""
    from tokenizers import pre_tokenizers

    from w2s.toy.pretrain import build_tokenizer as word_level

    split = pre_tokenizers.Whitespace()
    words = sorted({w for text in texts for w, _ in split.pre_tokenize_str(text)})
    return word_level(words)


def world_dir(seed: int = 0, spec: ChessSpec | None = None) -> Path:
    spec = spec or ChessSpec(seed=seed)
    return cache_root() / "toy" / f"chess-{spec.seed}-{stable_hash([VERSION, spec.to_dict()], 10)}"


def ensure_world(seed: int = 0, spec: ChessSpec | None = None) -> Path:
    """Build (or reuse) the toy chess world for ``seed``: ``data/``, ``teacher/`` and ``student/``."""
    from w2s.tasks.chess import Chess
    from w2s.toy.pretrain import build_role

    spec = spec or ChessSpec(seed=seed)
    root = world_dir(spec.seed, spec)
    manifest = {"spec": spec.to_dict(), "version": VERSION}
    if not is_complete(root / "data"):
        splits = make_splits(spec)
        with atomic_dir(root / "data", manifest) as tmp:
            datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()}).save_to_disk(tmp)
    data = datasets.load_from_disk(str(root / "data"))
    rows = [r for name in ("source", "target", "test") for r in data[name]]
    task = Chess(path=str(root / "data"), legal_moves=False)
    tokenizer = build_tokenizer(world_texts(rows, task))
    chosen = np.random.default_rng(spec.seed + 2).random(len(rows)) < spec.teacher_coverage
    studied = [r for r, s in zip(rows, chosen) if s]
    corpora = {"teacher": StudySampler(studied, task, spec.seed + 10),
               "student": StudySampler(rows, None, spec.seed + 20)}
    for role, offset in (("teacher", 10), ("student", 20)):
        cfg = getattr(spec, role)
        build_role(root, role, manifest, tokenizer, cfg, spec.seed + offset, corpora[role], cfg["max_length"],
                   f"toy chess {role} (world seed {spec.seed})")
    check_skills(root, lambda: _skills(root, spec, task, studied, rows))
    return root


def _skills(root: Path, spec: ChessSpec, task, studied: list[dict], rows: list[dict], n: int = 300) -> dict[str, Skill]:
    """The teacher on positions it has studied (the task's move prompt) and the student on every position in the
    form it has studied (``<FEN> best``): the best moves each should know (read as the task reads weak labels)."""

    def ask(role: str, examples: list[dict], prompt) -> float:
        answers = greedy_answers(root / role, [prompt(ex) for ex in examples], 2)
        return accuracy([task.parse(a, ex) for a, ex in zip(answers, examples)], [ex["answer"] for ex in examples])

    chance = 1 / np.mean([board_moves(r["fen"]) for r in rows[:n]])
    return {"teacher": Skill("the teacher on positions it has studied", ask(
                "teacher", studied[:n], lambda ex: task.prompt({**ex, "interface": "move"})), chance, spec.min_skill),
            "student": Skill("the student on every position, in the form it has studied", ask(
                "student", rows[:n], lambda ex: practice_text(ex).rsplit(" ", 1)[0]), chance, spec.min_skill)}


def board_moves(fen: str) -> int:
    import chess

    return chess.Board(fen).legal_moves.count()
