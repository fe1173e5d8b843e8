"""Figures of a trust function on the target set: reliability diagram, ROC, score histogram, purity vs n."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to TensorBoard, never to a screen

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torchmetrics.functional.classification import binary_roc  # noqa: E402

from w2s import metrics  # noqa: E402


def _prepare(scores, correct) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(scores, dtype=torch.float32).flatten(), torch.as_tensor(correct).flatten().bool()


def reliability_diagram(scores, correct, n_bins: int = 15) -> Figure:
    """Accuracy of the weak labels per equal-width trust-score bin, against the diagonal of perfect calibration."""
    s, c = _prepare(scores, correct)
    bins = torch.clamp((s * n_bins).long(), max=n_bins - 1)
    centers, accuracy, counts = [], [], []
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            centers.append((b + 0.5) / n_bins)
            accuracy.append(float(c[in_bin].float().mean()))
            counts.append(int(in_bin.sum()))
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.bar(centers, accuracy, width=1 / n_bins, edgecolor="black", alpha=0.7, label="weak-label accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set(xlabel="trust score", ylabel="fraction correct", xlim=(0, 1), ylim=(0, 1), title="Reliability")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def roc_figure(scores, correct) -> Figure:
    """ROC curve of the trust scores as a detector of correct weak labels."""
    s, c = _prepare(scores, correct)
    fig, ax = plt.subplots(figsize=(4, 4))
    if c.any() and not c.all():
        fpr, tpr, _ = binary_roc(s, c.long())
        ax.plot(fpr.numpy(), tpr.numpy(), label="trust function")
    ax.plot([0, 1], [0, 1], "k--", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1), title="ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def score_histogram(scores, correct, n_bins: int = 30) -> Figure:
    """Distribution of trust scores, split by whether the weak label is correct."""
    s, c = _prepare(scores, correct)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.hist([s[c].numpy(), s[~c].numpy()], bins=n_bins, range=(0, 1), label=["correct", "wrong"],
            color=["tab:green", "tab:red"], alpha=0.7, histtype="stepfilled")
    ax.set(xlabel="trust score", ylabel="target examples", title="Trust scores")
    ax.legend()
    fig.tight_layout()
    return fig


def purity_curve(scores, correct, chosen_n: int | None = None, selection: dict | None = None) -> Figure:
    """purity@n for every n (most trusted first), with the teacher's accuracy on the whole target as a line; the
    selected n, and for a ``certified`` / ``fdr`` selection (``selection``: results.json's section) its purity
    target, which the certified n is guaranteed to meet with probability ≥ 1 − δ (``fdr``: in expectation)."""
    s, c = _prepare(scores, correct)
    selection = selection or {}
    mode = selection.get("mode")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(1, len(s) + 1), metrics.purity_by_n(s, c).numpy(), label="purity@n")
    ax.axhline(float(c.float().mean()), color="k", linestyle="--", label="teacher accuracy")
    if mode in ("certified", "fdr"):
        target = selection["purity_target"]
        bound = f"purity ≥ {target:g} w.p. ≥ {1 - selection['delta']:g}" if mode == "certified" else (
            f"expected purity ≥ {target:g}")
        ax.axhline(target, color="tab:red", linestyle="-.", label=f"{mode}: {bound}")
    if chosen_n:
        name = f"{mode} n" if mode in ("certified", "fdr") else "selected n"
        ax.axvline(chosen_n, color="tab:gray", linestyle=":", label=f"{name} = {chosen_n}")
    ax.set(xlabel="n (most trusted first)", ylabel="purity", ylim=(0, 1.02), title="Purity vs n")
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def trust_figures(scores, correct, chosen_n: int | None = None, selection: dict | None = None) -> dict[str, Figure]:
    """The four figures under their TensorBoard tags (``selection``: results.json's section, for purity vs n)."""
    return {
        "trust/reliability": reliability_diagram(scores, correct),
        "trust/roc": roc_figure(scores, correct),
        "trust/score_histogram": score_histogram(scores, correct),
        "trust/purity_vs_n": purity_curve(scores, correct, chosen_n, selection),
    }
