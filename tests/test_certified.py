"""Selections with a guarantee, checked by simulation: correctness ~ Bernoulli(sigmoid(a·s + b)) for a trust score
s ~ U(0, 1), calibration and pool drawn from the same distribution."""

import numpy as np
import pytest

from w2s.errors import W2SError
from w2s.selection import certified_threshold, fdr_selection

A, B = 8.0, -3.0  # P(right | s) from 0.05 at s = 0 to 0.99 at s = 1: an easy setting
PURITY, DELTA, REPETITIONS = 0.9, 0.1, 1000


def draw(rng, n):
    scores = rng.random(n)
    return scores, rng.random(n) < 1 / (1 + np.exp(-(A * scores + B)))


def true_purity(threshold: float) -> float:
    """P(right | s ≥ threshold), by the exact integral of the sigmoid (its antiderivative is log(1 + e^x) / A)."""
    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    return (softplus(A + B) - softplus(A * threshold + B)) / A / (1 - threshold)


def largest_certifiable_share() -> float:
    """The share of the pool kept by the lowest threshold whose true purity still meets the target."""
    grid = np.linspace(0, 0.999, 20000)
    return 1 - grid[np.argmax([true_purity(t) >= PURITY for t in grid])]


def test_the_certified_purity_holds_in_all_but_delta_of_repetitions_and_keeps_a_real_share():
    rng = np.random.default_rng(0)
    thresholds = np.array([certified_threshold(*draw(rng, 1000), PURITY, DELTA) for _ in range(REPETITIONS)])
    held = np.mean([true_purity(t) >= PURITY for t in thresholds])
    assert held >= 1 - DELTA - 3 * np.sqrt(DELTA * (1 - DELTA) / REPETITIONS)  # 0.872: three binomial SEs
    kept = np.median(1 - thresholds)
    assert kept >= 0.5 * largest_certifiable_share()  # not trivially small


def test_fdr_selection_keeps_the_expected_purity():
    rng = np.random.default_rng(1)
    purities, sizes = [], []
    for _ in range(REPETITIONS):
        cal_scores, cal_correct = draw(rng, 500)
        scores, correct = draw(rng, 1000)
        chosen = fdr_selection(cal_scores, cal_correct, scores, PURITY)
        purities.append(correct[chosen].mean() if len(chosen) else 1.0)
        sizes.append(len(chosen))
    standard_error = np.std(purities) / np.sqrt(REPETITIONS)
    assert np.mean(purities) >= PURITY - 3 * standard_error
    assert np.median(sizes) >= 0.5 * largest_certifiable_share() * 1000


def test_the_threshold_is_a_calibration_score_and_falls_as_the_target_eases():
    rng = np.random.default_rng(2)
    scores, correct = draw(rng, 2000)
    strict, loose = (certified_threshold(scores, correct, p, DELTA) for p in (0.95, 0.8))
    assert strict in scores and loose in scores and loose < strict


def test_a_wholly_certified_calibration_set_keeps_every_example():
    import torch

    from w2s.selection import Selection

    rng = np.random.default_rng(3)
    cal_scores, cal_correct = rng.random(200) + 0.5, rng.random(200) < 0.97
    assert certified_threshold(cal_scores, cal_correct, 0.8, DELTA) == -np.inf
    pool = torch.tensor([0.1, 0.9, 0.2])  # all below every calibration score
    chosen, info = Selection("certified", purity=0.8).with_guarantee(pool, cal_scores, cal_correct)
    assert chosen.tolist() == [1, 2, 0] and info["threshold"] is None
    # a finite threshold above every pool score keeps nothing: one line, not an empty training set
    right_above_one = (cal_scores > 1.0) | (rng.random(200) < 0.5)  # only the upper half is certifiably pure
    with pytest.raises(W2SError, match="lies above every target trust score"):
        Selection("certified", purity=0.9).with_guarantee(pool, cal_scores, right_above_one)


@pytest.mark.parametrize("kwargs,message", [
    (dict(purity=1.0), r"selection.purity must be in \(0, 1\)"),
    (dict(purity=0.0), r"selection.purity must be in \(0, 1\)"),
    (dict(delta=1.5), r"selection.delta must be in \(0, 1\)"),
    (dict(n=10), "needs at least 20 calibration examples \\(got 10\\)"),
    (dict(one_class=True), "are all right; a certified selection needs right and wrong"),
    (dict(purity=0.999), "no threshold is certified at purity 0.999 .* needs at least 5296 calibration examples"),
])
def test_bad_calibration_is_one_line(kwargs, message):
    rng = np.random.default_rng(3)
    scores, correct = draw(rng, kwargs.get("n", 200))
    if kwargs.get("one_class"):
        correct = np.ones_like(correct)
    with pytest.raises(W2SError, match=message):
        certified_threshold(scores, correct, kwargs.get("purity", PURITY), kwargs.get("delta", DELTA))
