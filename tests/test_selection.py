import re

import numpy as np
import pytest
import torch

from conftest import synthetic_outputs
from w2s.errors import W2SError
from w2s.selection import Selection, top_n


def test_top_n_breaks_ties_by_index():
    scores = torch.tensor([0.5, 0.9, 0.5, 0.9, 0.1])
    assert top_n(scores, 4).tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize("kwargs,expected", [
    (dict(mode="top_n", n=2), [1, 3]),
    (dict(mode="fraction", fraction=0.4), [1, 3]),
    (dict(mode="fraction", fraction=1.0), [1, 3, 0, 2, 4]),
    (dict(mode="threshold", threshold=0.5), [1, 3, 0, 2]),
])
def test_modes(kwargs, expected):
    assert Selection(**kwargs)(torch.tensor([0.5, 0.9, 0.5, 0.9, 0.1])).tolist() == expected


@pytest.mark.parametrize("kwargs,message", [
    (dict(mode="top_n", n=0), "positive"),
    (dict(mode="top_n", n=None), "positive"),
    (dict(mode="fraction", fraction=0.0), "(0, 1]"),
    (dict(mode="fraction", fraction=1.5), "(0, 1]"),
    (dict(mode="threshold", threshold=2.0), "[0, 1]"),
    (dict(mode="certified", purity=1.0), "selection.purity must be in (0, 1)"),
    (dict(mode="certified", delta=0.0), "selection.delta must be in (0, 1)"),
    (dict(mode="fdr", calibration_fraction=1.0), "selection.calibration_fraction must be in (0, 1)"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(W2SError, match=re.escape(message)):
        Selection(**kwargs)


def test_n_larger_than_target():
    with pytest.raises(W2SError, match="larger than the target set"):
        Selection(mode="top_n", n=10)(torch.rand(5))


@pytest.mark.parametrize("mode", ["certified", "fdr"])
def test_a_guaranteed_selection_keeps_the_most_trusted_and_says_what_it_guaranteed(mode):
    rng = np.random.default_rng(0)
    cal_scores, scores = rng.random(400), torch.as_tensor(rng.random(1000))
    cal_correct = rng.random(400) < cal_scores  # P(right | s) = s
    selection = Selection(mode=mode, purity=0.8, delta=0.1)
    with pytest.raises(W2SError, match="needs calibration scores"):
        selection(scores)
    chosen, info = selection.with_guarantee(scores, cal_scores, cal_correct)
    kept = scores[chosen]
    assert 0 < len(chosen) < len(scores) and (kept[:-1] >= kept[1:]).all()  # most trusted first
    assert kept.min() > scores[~torch.isin(torch.arange(len(scores)), chosen)].max() - 1e-12  # a top block
    assert info["purity_target"] == 0.8 and info["n_calibration"] == 400
    if mode == "certified":
        assert kept.min() >= info["threshold"] and info["delta"] == 0.1
        assert info["threshold"] >= 0.8  # P(right | s ≥ t) ≥ 0.8 needs t ≥ 0.6; the bound adds a margin


def test_the_calibration_part_is_held_out_and_stratified():
    from w2s.protocol import calibration_split

    source = synthetic_outputs(300, seed=0)
    fitted, calibration = calibration_split(source, 0.3)
    assert sorted(fitted.ids + calibration.ids, key=int) == source.ids and not set(fitted.ids) & set(calibration.ids)
    assert len(calibration) == pytest.approx(90, abs=1)
    assert np.mean(calibration.correct) == pytest.approx(np.mean(source.correct), abs=0.01)
