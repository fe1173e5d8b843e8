import pytest
import torch

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
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(W2SError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Selection(**kwargs)


def test_n_larger_than_target():
    with pytest.raises(W2SError, match="larger than the target set"):
        Selection(mode="top_n", n=10)(torch.rand(5))
