"""Which weak labels were trusted: every run's per-example trust scores (``trust_scores.parquet``), written beside
results.json, read back by ``compare`` (trust-AUC intervals) and ``inspect``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from w2s.cache import atomic_path
from w2s.errors import W2SError

FILE = "trust_scores.parquet"
QUESTION_CHARS = 200
# the evaluation-only column: whether each weak label was right (target gold; it never selects anything)
EVALUATION_COLUMN = "eval_only_weak_label_correct"
# the purity–coverage curve (evaluation only): the purity of the `rank` most trusted weak labels, at each row
CURVE_COLUMN = "eval_only_purity_at_rank"
COLUMNS = ("id", "question", "weak_label", "trust_score", "rank", "selected", EVALUATION_COLUMN, CURVE_COLUMN)


def trust_scores_table(ids: list[str], questions: list[str], weak_labels: list[str | None], scores, selected,
                       correct) -> "pyarrow.Table":  # noqa: F821
    """One row per target example, in target order: id, question (first 200 characters), weak label, trust score,
    rank (1 = most trusted; ties by target order), whether the student trained on it, and — evaluation only —
    whether the weak label was right and the purity of the ``rank`` most trusted (sorted by rank: the purity–
    coverage curve)."""
    import pyarrow as pa

    from w2s.metrics import purity_by_n, ranking

    scores = np.asarray(scores, dtype=np.float64)
    rank = np.empty(len(scores), dtype=np.int64)
    rank[ranking(scores).numpy()] = np.arange(1, len(scores) + 1)
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[np.asarray(selected, dtype=np.int64)] = True
    return pa.table({"id": [str(i) for i in ids], "question": [q[:QUESTION_CHARS] for q in questions],
                     "weak_label": weak_labels, "trust_score": scores, "rank": rank, "selected": chosen,
                     EVALUATION_COLUMN: np.asarray(correct, dtype=bool),
                     CURVE_COLUMN: purity_by_n(scores, np.asarray(correct, dtype=bool)).numpy()[rank - 1]})


def write_trust_scores(run_dir: Path, table) -> Path:
    """Write ``table`` to ``<run_dir>/trust_scores.parquet`` atomically; returns the path."""
    import pyarrow.parquet as pq

    path = run_dir / FILE
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_trust_scores(run_dir: Path) -> dict[str, np.ndarray] | None:
    """A run's trust scores as columns (numpy arrays, target order), or ``None`` when the run wrote none. A file
    that cannot be read, or lacks a column, is one error naming it."""
    import pyarrow.parquet as pq

    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001  (pyarrow raises several types for a damaged file)
        raise W2SError(f"{path} cannot be read ({type(e).__name__}: {e}); delete it and rerun the run") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise W2SError(f"{path} lacks the column(s) {missing}; it was not written by this version: rerun the run")
    return {c: table.column(c).to_numpy(zero_copy_only=False) for c in COLUMNS}


def extremes(columns: dict[str, np.ndarray], k: int) -> dict[str, list[dict]]:
    """The ``k`` most trusted wrong weak labels (most trusted first) and the ``k`` least trusted right ones (least
    trusted first): where a trust function goes wrong, by the evaluation-only column."""
    right = columns[EVALUATION_COLUMN].astype(bool)
    order = np.argsort(columns["rank"], kind="stable")  # most trusted first
    values = {c: columns[c].tolist() for c in COLUMNS}

    def rows(index: list[int]) -> list[dict]:
        return [{c: values[c][i] for c in COLUMNS} for i in index]

    return {"most trusted wrong": rows([i for i in order if not right[i]][:k]),
            "least trusted right": rows([i for i in order[::-1] if right[i]][:k])}


def render_extremes(groups: dict[str, list[dict]]) -> str:
    """Markdown tables of :func:`extremes`."""
    lines = []
    for title, rows in groups.items():
        lines += [f"\n{title} ({len(rows)})", "| rank | trust score | weak label | selected | id | question |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['rank']} | {r['trust_score']:.4f} | {r['weak_label']} | {'yes' if r['selected'] else 'no'} "
                  f"| {r['id']} | {' '.join(str(r['question']).split())[:100]} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Entry point of ``main.py inspect RUN_DIR``: the most trusted wrong and least trusted right weak labels."""
    import argparse

    parser = argparse.ArgumentParser(prog="main.py inspect", description=(
        "Where a run's trust function errs: its most trusted wrong and least trusted right weak labels (from "
        f"{FILE}; correctness there is the target's gold, used for evaluation only)."))
    parser.add_argument("run_dir", type=Path, help="a fit run's directory (it holds results.json)")
    parser.add_argument("-k", type=int, default=10, help="examples per group (default 10)")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error("-k must be ≥ 1")
    columns = read_trust_scores(args.run_dir)
    if columns is None:
        raise W2SError(f"{args.run_dir} holds no {FILE}: give the directory of a finished fit run (one with "
                       "results.json), written by this version")
    right = columns[EVALUATION_COLUMN].astype(bool)
    print(f"{args.run_dir}: {len(right)} target weak labels, {right.mean():.3f} right; "
          f"{int(columns['selected'].sum())} selected")
    print(render_extremes(extremes(columns, args.k)))
