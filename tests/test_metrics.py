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
                                                      "brier": metrics.brier(scores, correct),
                                                      "prr": metrics.prr(scores, correct),
                                                      "aurc": metrics.aurc(scores, correct)}
    one_class = metrics.trust_metrics(scores, torch.ones(4))
    assert math.isnan(one_class["auc"]) and math.isnan(one_class["prr"]) and one_class["aurc"] == 0


def _q(scores, correct):
    """q(k) for k = 1..N by the definition: sort by score, descending, ties in original order."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [sum(correct[i] for i in order[:k]) / k for k in range(1, len(scores) + 1)]


@pytest.mark.parametrize("seed", range(5))
def test_prr_and_aurc_follow_their_definitions_including_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    scores, correct = np.round(rng.random(n), 1).tolist(), rng.integers(0, 2, n).tolist()  # rounded: ties
    correct[:2] = [0, 1]
    q = _q(scores, correct)
    achieved, oracle, random = np.mean(q), np.mean(_q(correct, correct)), np.mean(correct)
    assert metrics.aurc(scores, correct) == pytest.approx(np.mean([1 - x for x in q]), abs=1e-6)
    assert metrics.prr(scores, correct) == pytest.approx((achieved - random) / (oracle - random), abs=1e-6)


def test_prr_is_one_for_the_oracle_and_near_zero_for_a_random_ranking():
    rng = np.random.default_rng(0)
    correct = rng.integers(0, 2, 5000)
    assert metrics.prr(correct.astype(float), correct) == pytest.approx(1.0)
    assert abs(metrics.prr(rng.random(5000), correct)) < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_auc_is_the_roc_auc_including_ties(seed):
    rng = np.random.default_rng(seed)
    scores, correct = np.round(rng.random(300), 1), rng.integers(0, 2, 300)  # rounded: many ties
    assert metrics.rank_auc(scores, correct) == pytest.approx(roc_auc_score(correct, scores), abs=1e-9)
    assert metrics.rank_auc(scores, correct) == pytest.approx(metrics.auc(torch.tensor(scores), torch.tensor(correct)),
                                                              abs=1e-6)
