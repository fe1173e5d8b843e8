"""The density, neighbour and stacked trust functions: known rankings, no use of target gold, bad input."""

from dataclasses import replace

import lightning as L
import numpy as np
import pytest
import torch

from conftest import synthetic_outputs
from trust_functions import KNN, Mahalanobis, NeuralTrustFunction, RelativeMahalanobis, StackedNTF
from w2s import metrics
from w2s.errors import W2SError


def _outputs(hidden, correct=None, token_entropy=None):
    n = len(hidden)
    base = synthetic_outputs(n, 0, d=hidden.shape[1], correct=np.ones(n, bool) if correct is None else correct)
    return replace(base, hidden=np.asarray(hidden, np.float32),
                   token_entropy=base.token_entropy if token_entropy is None else np.asarray(token_entropy, np.float32))


def _clusters(n: int, seed: int, d: int = 6):
    """Right weak labels around the origin, wrong ones around (4, 0, ...): a density signal."""
    rng = np.random.default_rng(seed)
    correct = rng.random(n) < 0.6
    hidden = rng.normal(size=(n, d)) + np.where(correct, 0.0, 4.0)[:, None] * np.eye(d)[0]
    return _outputs(hidden, correct)


@pytest.mark.parametrize("cls", [Mahalanobis, RelativeMahalanobis])
def test_mahalanobis_ranks_by_distance_to_the_right_examples(cls):
    L.seed_everything(0)
    trust = cls()
    trust.fit(_clusters(400, 0))
    target = _clusters(200, 1)
    assert metrics.auc(trust.score(target.without_labels()), target.correct) > 0.95
    # along the axis that separates the classes, the score falls monotonically away from the right mean
    line = _outputs(np.outer([0.0, 1.0, 2.0, 3.0, 4.0], np.eye(6)[0]))
    scores = trust.score(line.without_labels())
    assert (scores.diff() < 0).all() and ((scores >= 0) & (scores <= 1)).all()
    # far beyond every source state (a shifted target) the scores still rank: no saturation at 0
    far = trust.score(_outputs(np.outer([50.0, 100.0, 1000.0], np.eye(6)[0])).without_labels())
    assert (far > 0).all() and (far.diff() < 0).all()


def test_knn_is_the_share_of_right_neighbours():
    # source: 5 right states around direction e0, 5 wrong ones around e1
    rng = np.random.default_rng(0)
    e = np.eye(4)
    hidden = np.concatenate([e[0] + 0.01 * rng.normal(size=(5, 4)), e[1] + 0.01 * rng.normal(size=(5, 4))])
    source = _outputs(hidden, np.array([True] * 5 + [False] * 5))
    trust = KNN(k=4, val_fraction=0.2)
    trust.fit(source)
    target = _outputs(np.stack([e[0], e[1], e[0] + e[1] * 0.01]))
    assert trust.score(target.without_labels()).tolist() == [1.0, 0.0, 1.0]
    knn_all = KNN(k=10, val_fraction=0.2)
    with pytest.raises(W2SError, match=r"KNN.k = 10 neighbours, but the source set leaves only 8 .* use k ≤ 8"):
        knn_all.fit(source)


def test_stacking_adds_what_the_output_layer_knows():
    """Correctness shows only in the output layer's token entropy, not in the hidden state: the NTF on the state
    alone ranks at chance, the stacked NTF well (seeds 0-2: 0.50-0.56 vs ≥ 0.97)."""
    def split(n, seed):
        rng = np.random.default_rng(seed)
        correct = rng.random(n) < 0.5
        return _outputs(rng.normal(size=(n, 8)), correct, np.where(correct, 0.2, 1.0) + 0.3 * rng.normal(size=n))

    L.seed_everything(0)
    source, target = split(600, 0), split(300, 1)
    stacked, plain = StackedNTF(max_epochs=10), NeuralTrustFunction(max_epochs=10)
    assert stacked.features == ["hidden", "output"] and stacked.teacher_features() == ["hidden", "output"]
    stacked.fit(source), plain.fit(source)
    stacked_auc = metrics.auc(stacked.score(target.without_labels()), target.correct)
    plain_auc = metrics.auc(plain.score(target.without_labels()), target.correct)
    assert stacked_auc > 0.9 and plain_auc < 0.65


@pytest.mark.parametrize("make", [Mahalanobis, RelativeMahalanobis, lambda: KNN(k=5), lambda: StackedNTF(max_epochs=2)])
def test_target_gold_changes_no_score(make):
    L.seed_everything(0)
    trust = make()
    trust.fit(synthetic_outputs(200, 0))
    target = synthetic_outputs(100, 1)
    scores = trust.score(target.without_labels())
    assert scores.unique().numel() > 1
    permuted = np.random.default_rng(2).permutation(target.correct)
    assert not np.array_equal(permuted, target.correct)
    assert torch.equal(trust.score(replace(target, correct=permuted)), scores)


@pytest.mark.parametrize("make", [lambda f: Mahalanobis(features=f), lambda f: KNN(features=f)])
def test_a_feature_the_teacher_did_not_cache_is_one_line(make):
    with pytest.raises(W2SError, match=r"trust feature '3:produced' was not cached by the teacher \(cached: hidden, "
                                       r"output\); add it to data.teacher.features"):
        make(["3:produced"]).fit(synthetic_outputs(100, 0))


@pytest.mark.parametrize("make, message", [
    (lambda: Mahalanobis(shrinkage=1.5), "shrinkage"), (lambda: KNN(k=0), "k"),
])
def test_bad_arguments_are_one_line(make, message):
    with pytest.raises(W2SError, match=message):
        make()
