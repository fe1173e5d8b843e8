from dataclasses import replace

import lightning as L
import numpy as np
import pytest
import torch

from conftest import synthetic_outputs
from trust_functions import GroundTruth, Naive, NeuralTrustFunction, Random
from trust_functions.ntf import NTFNetwork, SwiGLUBlock
from w2s import metrics
from w2s.errors import W2SError


def test_ntf_learns_a_nonlinear_trust_signal():
    """Over 6 seeds (data and training): target AUC 0.965 ± 0.007 (min 0.958), source validation 0.960 ± 0.011
    (min 0.946); a linear probe on the same features 0.638 ± 0.019 (max 0.658), the baseline it must beat."""
    from trust_functions import LinearProbe

    L.seed_everything(0)
    ntf = NeuralTrustFunction(max_epochs=40)
    ntf.fit(synthetic_outputs(1500, 0))
    target = synthetic_outputs(500, 1)
    scores = ntf.score(target.without_labels())
    assert scores.shape == (500,) and ((scores >= 0) & (scores <= 1)).all()
    probe = LinearProbe()
    probe.fit(synthetic_outputs(1500, 0))
    auc = metrics.auc(scores, target.correct)
    assert auc > 0.9 and auc > metrics.auc(probe.score(target.without_labels()), target.correct) + 0.2
    assert ntf.source_val["auc"] > 0.9


def test_ntf_never_sees_target_correctness():
    """An NTF fitted on the source scores the target from its hidden states alone: the target as given, with its
    correctness permuted or flipped, and without labels all get the same scores."""
    L.seed_everything(0)
    ntf = NeuralTrustFunction(max_epochs=3)
    ntf.fit(synthetic_outputs(300, 0))
    target = synthetic_outputs(100, 1)
    unlabelled = target.without_labels()
    assert unlabelled.correct is None and np.array_equal(unlabelled.hidden, target.hidden)
    scores = ntf.score(target)
    assert scores.unique().numel() > 1  # a constant scorer would pass the comparisons below trivially
    permuted = np.random.default_rng(2).permutation(target.correct)
    assert not np.array_equal(permuted, target.correct)
    for view in (replace(target, correct=permuted), replace(target, correct=~target.correct), unlabelled):
        assert torch.equal(ntf.score(view), scores)


@pytest.mark.parametrize("value,state", [(True, "right"), (False, "wrong")])
def test_single_class_source_is_refused(value, state):
    with pytest.raises(W2SError, match=f"teacher is {state} on all 50 source examples"):
        NeuralTrustFunction().fit(synthetic_outputs(50, 0, correct=np.full(50, value)))


@pytest.mark.parametrize("depth,drop_path", [(1, 0.0), (3, 0.5)])
def test_network_shapes_and_stochastic_depth(depth, drop_path):
    torch.manual_seed(0)
    net = NTFNetwork(8, width=16, depth=depth, expansion=2, dropout=0.0, drop_path=drop_path).train()
    x = torch.randn(32, 8)
    first, second = net(x), net(x)
    assert first.shape == (32,)
    # dropout is off: only stochastic depth can make two training-mode passes differ
    assert torch.equal(first, second) == (drop_path == 0)
    net.eval()
    assert torch.equal(net(x), net(x))  # deterministic in eval mode
    if drop_path == 0:
        assert torch.equal(net(x), first)


def test_stochastic_depth_drops_the_whole_branch_per_example():
    """In training each example either skips the block (output = input, exactly) or keeps its branch scaled by
    1 / (1 - drop_path); both happen in a batch of 64. In eval mode every branch is kept, unscaled."""
    torch.manual_seed(0)
    block = SwiGLUBlock(16, expansion=2, dropout=0.0, drop_path=0.5)
    x = torch.randn(64, 16)
    branch = block.eval()(x) - x
    assert torch.equal(block(x), block(x)) and (branch != 0).any(dim=1).all()
    out = block.train()(x)
    dropped = (out == x).all(dim=1)
    assert 0 < dropped.sum() < 64
    torch.testing.assert_close(out[~dropped], x[~dropped] + branch[~dropped] / 0.5)


def test_reference_rows():
    out = synthetic_outputs(20, 0)
    assert Naive().keep_all and not Naive().uses_gold_labels
    assert GroundTruth().keep_all and GroundTruth().uses_gold_labels
    assert torch.equal(Random(seed=3).score(out), Random(seed=3).score(out))
    assert not torch.equal(Random(seed=3).score(out), Random(seed=4).score(out))


def test_trust_features_pick_and_concatenate_cached_states():
    from trust_functions.base import feature_matrix

    out = synthetic_outputs(50, 0)
    extra = np.ones((50, 3), np.float32)
    out = replace(out, features={"1:prompt_mean": extra})
    assert feature_matrix(out).shape == (50, 16)
    both = feature_matrix(out, ["1:prompt_mean", "hidden"])
    assert both.shape == (50, 19) and torch.equal(both[:, :3], torch.ones(50, 3))
    with pytest.raises(W2SError, match="'0:produced' was not cached by the teacher.*data.teacher.features"):
        feature_matrix(out, ["0:produced"])
    L.seed_everything(0)
    ntf = NeuralTrustFunction(max_epochs=2, features=["1:prompt_mean", "hidden"])
    ntf.fit(out)
    assert ntf.score(out).shape == (50,)


def test_a_saved_ntf_is_reused_as_is_and_refuses_other_widths(tmp_path):
    L.seed_everything(0)
    ntf = NeuralTrustFunction(width=32, depth=1, max_epochs=5)
    ntf.fit(synthetic_outputs(600, 0))
    ntf.save(tmp_path / "trust_function.pt")
    target = synthetic_outputs(200, 1).without_labels()

    reused = NeuralTrustFunction(checkpoint=str(tmp_path / "trust_function.pt"))  # default width 128: the file's wins
    reused.fit(synthetic_outputs(300, 2))  # measures, never trains
    assert torch.allclose(reused.score(target), ntf.score(target))
    assert reused.width == 32 and 0.5 < reused.source_val["auc"] <= 1.0  # 6 seeds: 0.693 ± 0.036 (min 0.660)

    with pytest.raises(W2SError, match="reads 16-dim features .* 24-dim: reuse needs a teacher of the same"):
        reused.fit(synthetic_outputs(300, 2, d=24))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    for path, message in [(tmp_path / "bad.pt", "corrupt or another format"), (tmp_path / "no.pt", "does not exist")]:
        with pytest.raises(W2SError, match=message):
            NeuralTrustFunction(checkpoint=str(path)).fit(synthetic_outputs(300, 2))
