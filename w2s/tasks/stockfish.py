"""Chess ground truth from Stockfish (driven through ``chess.engine``): the best move of every position, and on
request every legal move's centipawn loss, computed once and cached per position and engine setting."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from w2s.cache import atomic_write_text, cache_root, stable_hash
from w2s.errors import W2SError

INSTALL = ("install it with `apt-get install stockfish` (Debian/Ubuntu; `brew install stockfish` on macOS) or "
           "point task.init_args.engine_path at the binary")
SEARCH_PATHS = ("/usr/games/stockfish", "/usr/local/bin/stockfish", "/opt/homebrew/bin/stockfish")
MATE = 100_000  # centipawn value of a forced mate (mate in n scores MATE - n)


@dataclass(frozen=True)
class EngineSettings:
    """How Stockfish labels positions.

    Args:
        depth: search depth per position (deterministic: one thread, hash cleared per position).
        time: seconds per position instead of (or, with ``depth``, as well as) a depth; not deterministic.
        all_moves: also score every legal move (``multipv`` = all), for correctness within a centipawn loss.
    """

    depth: int | None = 10
    time: float | None = None
    all_moves: bool = False

    def __post_init__(self) -> None:
        if self.depth is None and self.time is None:
            raise W2SError("the engine needs a depth or a time per position (task.init_args.engine_depth / "
                           "engine_time)")
        if (self.depth is not None and self.depth < 1) or (self.time is not None and self.time <= 0):
            raise W2SError(f"engine depth {self.depth} / time {self.time} must be positive")


def find_stockfish(path: str | None = None) -> str:
    """The Stockfish binary: ``path``, else ``stockfish`` on PATH or in the usual install locations."""
    if path is not None:
        if not Path(path).is_file():
            raise W2SError(f"the Stockfish binary {path} does not exist; {INSTALL}")
        return path
    found = shutil.which("stockfish") or next((p for p in SEARCH_PATHS if Path(p).is_file()), None)
    if found is None:
        raise W2SError(f"Stockfish is not installed (chess ground truth needs it); {INSTALL}")
    return found


def board(fen: str):
    """The position of a FEN (or the first four fields of an EPD line), checked."""
    import chess

    fields = fen.split()
    try:
        position = chess.Board(" ".join(fields[:4] + (fields[4:6] if len(fields) >= 6 else ["0", "1"])))
    except ValueError as e:
        raise W2SError(f"{fen!r} is not a valid FEN ({e})") from None
    if not position.is_valid():
        raise W2SError(f"{fen!r} is not a legal chess position ({position.status()!r})")
    return position


def playable(fen: str):
    """The position of a FEN that has a best move to find: valid, legal and not over (no engine needed)."""
    position = board(fen)
    if position.legal_moves.count() == 0:
        raise W2SError(f"{fen!r} has no legal move (the game is over): it has no best move; drop it")
    return position


def analyse(engine, fen: str, settings: EngineSettings) -> dict:
    """``{"best": uci, "score": centipawns for the side to move, "losses": {uci: centipawn loss} or None}``."""
    import chess.engine

    position = playable(fen)
    moves = position.legal_moves.count()
    limit = chess.engine.Limit(depth=settings.depth, time=settings.time)
    # a new ``game`` per position sends ucinewgame: the hash is cleared, so a label never depends on the order
    infos = engine.analyse(position, limit, multipv=moves if settings.all_moves else 1, game=object())
    value = lambda info: info["score"].pov(position.turn).score(mate_score=MATE)  # noqa: E731
    best = infos[0]
    losses = {i["pv"][0].uci(): value(best) - value(i) for i in infos} if settings.all_moves else None
    return {"best": best["pv"][0].uci(), "score": value(best), "losses": losses}


def label_positions(fens: list[str], settings: EngineSettings, engine_path: str | None = None,
                    desc: str = "stockfish") -> list[dict]:
    """Stockfish's label (see :func:`analyse`) for every FEN, from the cache where it is there; the cache
    (``$W2S_CACHE/chess/stockfish-<settings>.json``) is written atomically every 200 positions, so an
    interrupted labelling resumes."""
    path = cache_root() / "chess" / f"stockfish-{stable_hash(asdict(settings))}.json"
    try:
        cache = json.loads(path.read_text())["labels"] if path.is_file() else {}
    except (ValueError, KeyError):
        raise W2SError(f"the chess label cache {path} is corrupt; delete it to relabel") from None
    todo = [fen for fen in dict.fromkeys(fens) if fen not in cache]
    for fen in todo:  # a bad position is bad with or without an engine: say so before asking for one
        playable(fen)
    if todo:
        import chess.engine

        binary = find_stockfish(engine_path)
        try:
            engine = chess.engine.SimpleEngine.popen_uci(binary)
        except (OSError, chess.engine.EngineError) as e:
            raise W2SError(f"cannot start Stockfish at {binary} ({e}); {INSTALL}") from None
        with engine:
            engine.configure({"Threads": 1, "Hash": 16})
            name = engine.id.get("name", "stockfish")
            save = lambda: atomic_write_text(  # noqa: E731
                path, json.dumps({"engine": name, "settings": asdict(settings), "labels": cache}))
            for i, fen in enumerate(tqdm(todo, desc=desc, unit="position")):
                cache[fen] = analyse(engine, fen, settings)
                if i % 200 == 199:
                    save()
        save()
    return [cache[fen] for fen in fens]
