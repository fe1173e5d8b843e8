"""What a teacher pass produces, as plain numpy data: ``TeacherOutputs`` and its on-disk form.

Trust functions read only this module (no transformers, no lightning), so ``import trust_functions.base`` stays light.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from w2s.cache import atomic_dir, read_manifest
from w2s.errors import W2SError

LISTS = ("ids", "generations", "weak_labels")
ARRAYS = ("hidden", "option_logprobs", "token_logprobs", "token_entropy", "correct")



@dataclass
class TeacherOutputs:
    """The teacher's pass over one split: weak labels, hidden states and output-layer signals.

    Attributes:
        ids: example ids, in split order.
        generations: raw generated text.
        weak_labels: parsed weak label per example (``None`` when unparseable: counted as wrong).
        hidden: ``[N, d]`` hidden state g(x, ŷ) (memory-mapped when loaded from the cache).
        option_logprobs: ``[N, K]`` the teacher's score of each option (multiple choice): with letters, the letter's
            log-prob at the answer step; by likelihood, the option text's summed log-likelihood (per character
            with ``normalize: chars``). Trust functions read their softmax as the option distribution.
        token_logprobs: ``[N]`` mean log-prob of the generated answer tokens.
        token_entropy: ``[N]`` mean entropy of the next-token distribution over the generated tokens.
        correct: ``[N]`` whether the weak label equals the gold label; ``None`` when hidden from a trust function.
        features: extra ``[N, d]`` hidden-state features by name (``"<layer>:<pooling>"``, see ``Teacher``).
    """

    ids: list[str]
    generations: list[str]
    weak_labels: list[str | None]
    hidden: np.ndarray
    option_logprobs: np.ndarray | None
    token_logprobs: np.ndarray
    token_entropy: np.ndarray
    correct: np.ndarray | None
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def without_labels(self) -> "TeacherOutputs":
        """The view a trust function gets of the target set: no correctness."""
        return replace(self, correct=None)

    @classmethod
    def concat(cls, parts: list["TeacherOutputs"]) -> "TeacherOutputs":
        """One split's outputs from its consecutive shards (option log-probs padded with -inf to the widest shard:
        questions may offer different numbers of options)."""
        first = parts[0]
        arrays = {n: None if getattr(first, n) is None else [np.asarray(getattr(p, n)) for p in parts] for n in ARRAYS}
        if arrays["option_logprobs"] is not None:
            width = max(a.shape[1] for a in arrays["option_logprobs"])
            arrays["option_logprobs"] = [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-np.inf)
                                         for a in arrays["option_logprobs"]]
        return cls(**{n: [x for p in parts for x in getattr(p, n)] for n in LISTS},
                   **{n: None if a is None else np.concatenate(a) for n, a in arrays.items()},
                   features={k: np.concatenate([p.features[k] for p in parts]) for k in first.features})

    def subset(self, index) -> "TeacherOutputs":
        """The outputs of the examples at ``index`` (e.g. one fold of the source set)."""
        index = np.asarray(index, dtype=int)
        return TeacherOutputs(**{n: [getattr(self, n)[i] for i in index] for n in LISTS},
                              **{n: None if getattr(self, n) is None else np.asarray(getattr(self, n))[index]
                                 for n in ARRAYS},
                              features={k: np.asarray(v)[index] for k, v in self.features.items()})

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.correct))

    @property
    def n_unparsed(self) -> int:
        return sum(label is None for label in self.weak_labels)


POOLINGS = ("produced", "prompt_mean", "prompt_last")
# trust-function inputs every pass has without caching anything more: the default state g(x, ŷ), and the
# output-layer signals (trust_functions.confidence.output_signals)
BUILT_IN_FEATURES = ("hidden", "output")


def parse_feature(name: str) -> tuple[int, str]:
    """``"<layer>:<pooling>"`` → ``(layer, pooling)``, with one clear error for anything else."""
    layer, _, pooling = name.partition(":")
    try:
        index = int(layer)
    except ValueError:
        index = None
    if index is None or pooling not in POOLINGS:
        raise W2SError(f"teacher feature {name!r} is not '<layer>:<pooling>' with an integer layer and pooling "
                       f"one of {', '.join(POOLINGS)} (e.g. '-1:prompt_mean')")
    return index, pooling


def _feature_file(name: str) -> str:
    layer, pooling = parse_feature(name)
    return f"feature_{layer}_{pooling}.npy"



def save_outputs(outputs: TeacherOutputs, target: Path, manifest: dict) -> None:
    """Write one split's outputs atomically: ``.npy`` arrays plus ``outputs.json``, then the manifest."""
    with atomic_dir(target, {**manifest, "n": len(outputs)}) as tmp:
        for name in ARRAYS:
            value = getattr(outputs, name)
            if value is not None:
                np.save(tmp / f"{name}.npy", value)
        for name, values in outputs.features.items():
            np.save(tmp / _feature_file(name), values)
        (tmp / "outputs.json").write_text(json.dumps(
            {"ids": outputs.ids, "generations": outputs.generations, "weak_labels": outputs.weak_labels,
             "features": sorted(outputs.features)}))


def load_outputs(path: Path, key: str | None = None) -> TeacherOutputs:
    """Read a cached split; hidden states stay memory-mapped. A damaged cache, or one written for another pass
    (``key`` differs from its manifest's), names itself and its fix. Arrays are read with numpy's default
    ``allow_pickle=False``: a cache file can never run code."""
    try:
        manifest = read_manifest(path)
        if key is not None and manifest.get("key") != key:
            raise ValueError(f"it was written for another teacher pass (key {manifest.get('key')}, expected {key})")
        meta = json.loads((path / "outputs.json").read_text())
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r" if name == "hidden" else None)
                  if (path / f"{name}.npy").exists() else None for name in ARRAYS}
        features = {name: np.load(path / _feature_file(name), mmap_mode="r") for name in meta.get("features", [])}
        lengths = [len(a) for a in [*arrays.values(), *features.values()] if a is not None] + [len(meta["ids"])]
        if any(n != manifest["n"] for n in lengths):
            raise ValueError("array lengths disagree with the manifest")
    except (OSError, ValueError, KeyError, W2SError) as e:
        raise W2SError(f"teacher cache {path} is corrupt ({e}); delete that directory and rerun") from None
    return TeacherOutputs(meta["ids"], meta["generations"], meta["weak_labels"], **arrays, features=features)
