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
