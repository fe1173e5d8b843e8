"""The interface every trust function shares (fit on the source set, score the target set)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch

from w2s.errors import W2SError
from w2s.outputs import TeacherOutputs


class TrustFunction:
    """Scores how far each weak label can be trusted; higher = more trustworthy.

    ``prepare`` runs any extra teacher pass; ``fit`` may use the source set's correctness, never the target's (the
    target view it gets has ``correct=None``); ``score`` returns a ``[N]`` tensor of values in [0, 1].

    What the protocol and ``compare`` read from a trust function is declared here, with its default:

    Attributes:
        row: its row in ``compare`` (``--rows NAME``); ``None``: not a row of its own.
        title: the row's label in the comparison table.
        keep_all: the row trains on the whole target set regardless of the selection (Naive, GroundTruth), so
            it ranks nothing: no AUC, ECE or Brier.
        uses_gold_labels: the student is trained on gold labels instead of weak labels (the ceiling).
        reusable: :meth:`save` writes a file that the same class reloads (a chain's ``trust: reuse``).
        source_val: metrics on held-out source examples, set by ``fit`` (empty when it holds none out).
    """

    row: ClassVar[str | None] = None
    title: ClassVar[str] = ""
    keep_all: ClassVar[bool] = False
    uses_gold_labels: ClassVar[bool] = False
    reusable: ClassVar[bool] = False
    source_val: Mapping[str, float] = MappingProxyType({})

    def teacher_features(self) -> list[str]:
        """Cached teacher states it reads besides the default ``hidden`` (the teacher caches them for it)."""
        return []

    @classmethod
    def unsupported(cls, task) -> str | None:
        """Why this trust function cannot run on ``task`` (``compare``'s default rows leave it out, saying so), or
        ``None``: it can."""
        return None

    def hub_models(self) -> list[str]:
        """Models it loads by name (checked against the hub before a run starts)."""
        return []

    def prepare(self, teacher, task, splits) -> None:
        """Run any extra teacher pass the trust function needs (e.g. few-shot prompts); default: none.

        Called by the protocol before :meth:`fit` with the ``Teacher``, the ``Task`` and its splits.
        """

    def fit(self, source: TeacherOutputs) -> None:
        """Learn from the teacher's outputs on the labeled source set (default: nothing to learn)."""

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        raise NotImplementedError

    def save(self, path: Path) -> None:
        """Write the fitted trust function to ``path`` for reuse (only where ``reusable``)."""
        raise W2SError(f"{self.name} cannot be saved for reuse; only reusable trust functions can")

    @property
    def name(self) -> str:
        return type(self).__name__


def require_both_classes(source: TeacherOutputs) -> None:
    """A learned trust function needs correct and wrong weak labels on the source set (two of each, so that
    both its training and its validation part have one)."""
    correct = np.asarray(source.correct)
    if correct.all() or not correct.any():
        state = "right" if correct.all() else "wrong"
        raise W2SError(
            f"the teacher is {state} on all {len(correct)} source examples, so a trust function cannot learn "
            "when to trust it; use a larger or harder source set (or another teacher)"
        )
    fewer = min(int(correct.sum()), int((~correct.astype(bool)).sum()))
    if fewer < 2:
        state = "right" if correct.sum() < 2 else "wrong"
        raise W2SError(f"the teacher is {state} on only {fewer} of {len(correct)} source examples; a trust "
                       "function needs at least 2 of each kind to train and validate: use a larger source set")


class FeatureView:
    """The ``[N, d]`` float32 inputs of a hidden-state trust function — the teacher's default state g(x, ŷ)
    (``"hidden"``), the named cached features (``"<layer>:<pooling>"``) or the output-layer signals (``"output"``:
    ``trust_functions.confidence.output_signals``), concatenated in the given order —
    read by rows from the cache files, so that only the rows asked for are ever in memory (a 1M × 4096 cache is
    8-16 GB)."""

    def __init__(self, outputs: TeacherOutputs, features: list[str] | None = None) -> None:
        self.parts = []
        for name in features or ["hidden"]:
            if name == "hidden":
                self.parts.append(outputs.hidden)
            elif name == "output":
                from trust_functions.confidence import output_signals  # (it imports this module)

                self.parts.append(output_signals(outputs))
            elif name in outputs.features:
                self.parts.append(outputs.features[name])
            else:
                cached = ", ".join(["hidden", "output", *sorted(outputs.features)])
                raise W2SError(f"trust feature {name!r} was not cached by the teacher (cached: {cached}); "
                               f"add it to data.teacher.features")

    def __len__(self) -> int:
        return len(self.parts[0])

    @property
    def dim(self) -> int:
        return sum(p.shape[1] for p in self.parts)

    def rows(self, index) -> torch.Tensor:
        """The rows at ``index`` (any order), as one float32 tensor."""
        index = np.asarray(index, dtype=np.int64)
        order = np.argsort(index, kind="stable")  # read in file order, return in the order asked
        parts = [_read_rows(p, index[order]) for p in self.parts]
        out = np.empty((len(index), self.dim), dtype=np.float32)
        out[order] = np.concatenate(parts, axis=1)
        return torch.from_numpy(out)

    def blocks(self, index, size: int = 16384):
        """``(index_block, rows)`` over ``index`` in consecutive blocks of ``size`` rows."""
        index = np.asarray(index, dtype=np.int64)
        for start in range(0, len(index), size):
            block = index[start : start + size]
            yield block, self.rows(block)

    def moments(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and std over ``index``, accumulated block by block in float64."""
        total, squares = torch.zeros(self.dim, dtype=torch.float64), torch.zeros(self.dim, dtype=torch.float64)
        for _, x in self.blocks(index):
            total += x.double().sum(0)
            squares += x.double().square().sum(0)
        n = len(index)
        mean = total / n
        var = (squares - n * mean.square()) / max(1, n - 1)
        return mean.float(), var.clamp(min=0).sqrt().float()


def _read_rows(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows ``index`` (sorted) as float32. A cache file is read with ``pread``, one call per run of consecutive
    rows, not through the mapping: mapped pages count as resident memory, and the kernel maps neighbouring pages
    on every fault, so random rows through a mapping can make a whole multi-GB file resident."""
    if not _whole_file(array):
        return np.asarray(array[index], dtype=np.float32)
    row_bytes = array.strides[0]
    out = np.empty((len(index), *array.shape[1:]), dtype=array.dtype)
    starts = np.flatnonzero(np.diff(index, prepend=-2) != 1)  # where a run of consecutive rows begins
    ends = np.append(starts[1:], len(index))
    with open(array.filename, "rb", buffering=0) as f:
        for a, b in zip(starts.tolist(), ends.tolist()):
            data = os.pread(f.fileno(), (b - a) * row_bytes, array.offset + int(index[a]) * row_bytes)
            out[a:b] = np.frombuffer(data, dtype=array.dtype).reshape(b - a, *array.shape[1:])
    return out.astype(np.float32, copy=False)


def _whole_file(array: np.ndarray) -> bool:
    """A memory map of a whole .npy file's data (a slice of one keeps its parent's offset: not remappable)."""
    return (isinstance(array, np.memmap) and bool(array.filename) and array.flags.c_contiguous
            and array.offset + array.nbytes == os.path.getsize(array.filename))


def feature_matrix(outputs: TeacherOutputs, features: list[str] | None = None) -> torch.Tensor:
    """All rows of :class:`FeatureView` in memory (for small sets and full-batch fits such as a probe)."""
    view = FeatureView(outputs, features)
    return view.rows(np.arange(len(view)))


def stratified_split(y: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Train / validation indices with the same share of each class in both (global RNG)."""
    train, val = [], []
    for cls in (0, 1):
        idx = torch.nonzero(y == cls).flatten()
        idx = idx[torch.randperm(len(idx))]
        n_val = max(1, int(round(fraction * len(idx))))
        val.append(idx[:n_val]), train.append(idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def split_source(source: TeacherOutputs, features: list[str] | None, val_fraction: float):
    """What a learned trust function trains on: inputs ``x`` (a :class:`FeatureView`), correctness ``y``,
    stratified ``train`` / ``val`` indices and the class weight of the correct labels (wrong / right count in
    ``train``)."""
    require_both_classes(source)
    x = FeatureView(source, features)
    y = torch.from_numpy(np.asarray(source.correct, dtype=np.float32))
    train, val = stratified_split(y, val_fraction)
    n_pos = float(y[train].sum())
    return x, y, train, val, (len(train) - n_pos) / n_pos
