import math

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, roc_auc_score

from w2s import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [10, 257])
def test_auc_and_brier_agree_with_sklearn(seed, n):
    rng = np.random.default_rng(seed)
    scores, correct = rng.random(n), rng.integers(0, 2, n)
    correct[:2] = [0, 1]
    assert metrics.auc(torch.tensor(scores), torch.tensor(correct)) == pytest.approx(roc_auc_score(correct, scores), abs=1e-6)
    assert metrics.brier(torch.tensor(scores), torch.tensor(correct)) == pytest.approx(brier_score_loss(correct, scores), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_ece_matches_equal_width_definition(seed):
    rng = np.random.default_rng(seed)
    scores, correct = rng.random(500), rng.integers(0, 2, 500)
    bins = np.minimum((scores * 15).astype(int), 14)
    expected = sum(abs(scores[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
                   for b in range(15) if (bins == b).any())
    assert metrics.ece(scores, correct, n_bins=15) == pytest.approx(expected, abs=1e-5)


def test_ece_is_zero_when_calibrated_and_large_when_not():
    correct = torch.tensor([1, 1, 0, 0])
    assert metrics.ece(torch.tensor([1.0, 1.0, 0.0, 0.0]), correct) == pytest.approx(0.0)
    assert metrics.ece(torch.tensor([0.0, 0.0, 1.0, 1.0]), correct) == pytest.approx(1.0)


def test_purity_at_n_counts_the_most_trusted():
    scores = torch.tensor([0.9, 0.1, 0.8, 0.7, 0.2])
    correct = torch.tensor([1, 1, 0, 1, 0])
    assert metrics.purity_at_n(scores, correct, 1) == 1.0
    assert metrics.purity_at_n(scores, correct, 2) == 0.5
    assert metrics.purity_at_n(scores, correct, 3) == pytest.approx(2 / 3)


@pytest.mark.parametrize("method,base,gt,expected", [(0.9, 0.5, 0.9, 100.0), (0.7, 0.5, 0.9, 50.0), (0.4, 0.5, 0.9, -25.0)])
def test_recovery(method, base, gt, expected):
    assert metrics.recovery(method, base, gt) == pytest.approx(expected)


def test_trust_metrics_bundle_and_one_class_auc():
    scores, correct = torch.tensor([0.9, 0.2, 0.7, 0.4]), torch.tensor([1, 0, 1, 1])
    assert metrics.trust_metrics(scores, correct) == {"auc": metrics.auc(scores, correct),
                                                      "ece": metrics.ece(scores, correct),
                                                      "brier": metrics.brier(scores, correct)}
    assert math.isnan(metrics.trust_metrics(scores, torch.ones(4))["auc"])
