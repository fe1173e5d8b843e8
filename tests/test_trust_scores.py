"""The per-example export (trust_scores.parquet) and ``main.py inspect``."""

import numpy as np
import pytest

from conftest import error_message, run_cli, run_main
from w2s.errors import W2SError
from w2s.trust_scores import (CURVE_COLUMN, EVALUATION_COLUMN, FILE, extremes, read_trust_scores, trust_scores_table,
                              write_trust_scores)


def _table():
    scores = [0.2, 0.9, 0.5, 0.9, 0.1]
    return trust_scores_table([f"q{i}" for i in range(5)], ["What is 1+1?" * 30] + ["x"] * 4,
                              ["A", "B", None, "C", "D"], scores, [1, 3], [True, False, False, True, True])


def test_the_table_ranks_with_stable_ties_and_marks_the_selection(tmp_path):
    write_trust_scores(tmp_path, _table())
    columns = read_trust_scores(tmp_path)
    assert columns["rank"].tolist() == [4, 1, 3, 2, 5]  # 0.9 at q1 ranks before 0.9 at q3
    assert columns["selected"].tolist() == [False, True, False, True, False]
    assert len(columns["question"][0]) == 200 and columns["weak_label"][2] is None
    assert columns[EVALUATION_COLUMN].tolist() == [True, False, False, True, True]
    # the purity–coverage curve: ranks 1..5 are q1 (wrong), q3, q2 (wrong), q0, q4
    assert columns[CURVE_COLUMN].tolist() == pytest.approx([2 / 4, 0, 1 / 3, 1 / 2, 3 / 5])


def test_extremes_are_the_most_trusted_wrong_and_least_trusted_right(tmp_path):
    write_trust_scores(tmp_path, _table())
    groups = extremes(read_trust_scores(tmp_path), k=2)
    assert [r["id"] for r in groups["most trusted wrong"]] == ["q1", "q2"]
    assert [r["id"] for r in groups["least trusted right"]] == ["q4", "q0"]


def test_inspect_prints_both_groups(tmp_path):
    write_trust_scores(tmp_path, _table())
    proc = run_main("inspect", str(tmp_path), "-k", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "5 target weak labels, 0.600 right; 2 selected" in proc.stdout
    assert "most trusted wrong (1)" in proc.stdout and "| 1 | 0.9000 | B | yes | q1 |" in proc.stdout


@pytest.mark.parametrize("content, message", [
    (None, "holds no trust_scores.parquet: give the directory of a finished fit run"),
    (b"not a parquet file", "trust_scores.parquet cannot be read"),
])
def test_a_missing_or_damaged_file_is_one_line(tmp_path, content, message):
    if content is not None:
        (tmp_path / FILE).write_bytes(content)
    proc = run_cli("inspect", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and message in error_message(proc.stderr)


def test_a_file_without_a_column_is_refused(tmp_path):
    write_trust_scores(tmp_path, _table().drop_columns(["rank"]))
    with pytest.raises(W2SError, match=r"lacks the column\(s\) \['rank'\]"):
        read_trust_scores(tmp_path)
