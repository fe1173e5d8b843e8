"""The tables' statistics against direct computations."""

import numpy as np
import pytest
from scipy import stats

from w2s.errors import W2SError
from w2s.intervals import bootstrap_interval, paired_accuracy_difference, t_interval, verdict


def test_a_paired_difference_is_the_mean_difference_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    reference = (rng.random((3, 500)) < 0.6).astype(int)
    row = reference.copy()
    row[:, :50] = 1 - row[:, :50]  # flip the first 50 examples of every seed
    d, low, high = paired_accuracy_difference(row, reference)
    assert d == pytest.approx((row - reference).mean()) and low < d < high
    assert paired_accuracy_difference(reference, reference) == (0.0, 0.0, 0.0)  # identical runs: no spread


def test_the_paired_bootstrap_is_narrower_than_treating_rows_as_independent():
    rng = np.random.default_rng(1)
    reference = (rng.random((1, 1000)) < 0.5).astype(int)
    row = np.where(rng.random((1, 1000)) < 0.05, 1, reference)  # mostly the same answers, a few more right
    _, low, high = paired_accuracy_difference(row, reference)
    independent = 1.96 * np.sqrt(2 * 0.25 / 1000)
    assert high - low < independent and low > 0  # pairing sees a small real gain


def test_t_interval_matches_scipy():
    values = [0.61, 0.64, 0.58, 0.66]
    low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected)


@pytest.mark.parametrize("low,high,mark", [(-0.01, 0.02, "≈"), (0.01, 0.03, "↑"), (-0.05, -0.01, "↓")])
def test_verdict(low, high, mark):
    assert verdict(low, high) == mark


def test_a_statistic_undefined_everywhere_is_one_line():
    with pytest.raises(W2SError, match="undefined on every bootstrap resample of the 5 examples"):
        bootstrap_interval(lambda index: None, 5, resamples=10)


def _write_tests(run_dir, correct, ids=None):
    run_dir.mkdir(parents=True)
    ids = ids or [f"q{i}" for i in range(len(correct))]
    (run_dir / "student_test.csv").write_text("id,correct\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, correct)))


def test_correctness_matrix_needs_every_run_on_the_same_examples(tmp_path):
    from w2s.intervals import correctness_matrix

    _write_tests(tmp_path / "a", [1, 0, 1], ["q2", "q0", "q1"])
    _write_tests(tmp_path / "b", [0, 0, 1])
    ids, matrix = correctness_matrix([tmp_path / "a", tmp_path / "b"])
    assert ids == ["q0", "q1", "q2"] and matrix.tolist() == [[0, 1, 1], [0, 0, 1]]  # ordered by id
    assert correctness_matrix([tmp_path / "a", tmp_path / "missing"]) is None
    _write_tests(tmp_path / "c", [1, 1], ["q0", "q9"])
    assert correctness_matrix([tmp_path / "a", tmp_path / "c"]) is None


def test_auc_interval_covers_the_mean_auc_over_runs():
    from w2s.intervals import auc_interval
    from w2s.metrics import rank_auc

    rng = np.random.default_rng(0)
    correct = rng.random(400) < 0.5
    scores = rng.random((3, 400)) + 0.4 * correct
    low, high = auc_interval(scores, correct)
    mean = np.mean([rank_auc(s, correct) for s in scores])
    assert low < mean < high and high - low < 0.15


def test_the_chain_compares_each_generation_with_its_ground_truth_student(tmp_path):
    from w2s.chain import generation_deltas, render

    rng = np.random.default_rng(0)
    for seed in (0, 1):
        for gen in (1, 2):
            gt = rng.random(200) < 0.7
            _write_tests(tmp_path / f"seed{seed}" / f"gen{gen}" / "gt", gt.astype(int))
            trust = gt & (rng.random(200) < 0.5)  # generation 2 loses half its right answers
            if gen == 1:  # as many answers lost as gained: Δ = 0
                trust = gt.copy()
                trust[np.flatnonzero(gt)[:10]], trust[np.flatnonzero(~gt)[:10]] = False, True
            _write_tests(tmp_path / f"seed{seed}" / f"gen{gen}" / "trust", trust.astype(int))
    row = {"teacher accuracy": 0.5, "trust AUC": 0.7, "purity@n": 0.8, "n": 10, "student accuracy": 0.6,
           "ground truth": 0.7, "recovery %": 50.0}
    table = {0: [row, row], 1: [row]}  # seed 1 stopped after generation 1: generation 2 has no paired Δ
    deltas = generation_deltas(tmp_path, table)
    assert set(deltas) == {1}
    table = {0: [row, row], 1: [row, row]}
    deltas = generation_deltas(tmp_path, table)
    assert deltas[1][0] == 0 and deltas[1][1] < 0 < deltas[1][2] and deltas[2][2] < 0
    markdown, _ = render(table, deltas)
    assert "Δ vs ground truth [95 % CI]" in markdown and " ≈ |" in markdown and " ↓ |" in markdown
