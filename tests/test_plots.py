import matplotlib.pyplot as plt
import pytest
import torch

from w2s.plots import purity_curve, trust_figures


@pytest.mark.parametrize("correct", [[1, 0, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])  # one class: ROC is skipped
def test_trust_figures_draw(correct):
    scores = torch.tensor([0.9, 0.8, 0.7, 0.4, 0.2, 0.1])
    figures = trust_figures(scores, torch.tensor(correct), chosen_n=3)
    assert set(figures) == {"trust/reliability", "trust/roc", "trust/score_histogram", "trust/purity_vs_n"}
    for figure in figures.values():
        plt.close(figure)


def test_purity_curve_plots_purity_at_every_n():
    figure = purity_curve(torch.tensor([0.9, 0.8, 0.1, 0.5]), torch.tensor([1, 0, 0, 1]))
    (curve, baseline) = figure.axes[0].lines[:2]
    assert curve.get_ydata().tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert baseline.get_ydata()[0] == pytest.approx(0.5)
    plt.close(figure)


@pytest.mark.parametrize("mode, label", [("certified", "purity ≥ 0.9 w.p. ≥ 0.9"), ("fdr", "expected purity ≥ 0.9")])
def test_purity_curve_shows_the_guaranteed_purity_and_n(mode, label):
    selection = {"mode": mode, "purity_target": 0.9, "delta": 0.1}
    figure = purity_curve(torch.tensor([0.9, 0.8, 0.1, 0.5]), torch.tensor([1, 0, 0, 1]), 2, selection)
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    assert lines[f"{mode}: {label}"].get_ydata()[0] == pytest.approx(0.9)
    assert lines[f"{mode} n = 2"].get_xdata()[0] == 2
    plt.close(figure)
