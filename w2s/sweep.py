"""Feature sweep: which cached hidden states should feed a trust function, chosen on the source set only."""

from __future__ import annotations

from typing import Callable

import lightning as L
import numpy as np

from trust_functions.base import TrustFunction
from w2s import metrics
from w2s.errors import W2SError
from w2s.outputs import TeacherOutputs


def candidate_features(cached: list[str]) -> list[list[str]]:
    """The default state alone, each cached feature alone, and the default state with each cached feature."""
    return [["hidden"], *([f] for f in cached), *(["hidden", f] for f in cached)]


def source_validation_auc(make: Callable[[], TrustFunction], source: TeacherOutputs,
                          groups: list[str] | None) -> float:
    """Source-only estimate of how well a trust function ranks unseen data.

    With ``groups`` (e.g. the attribute family or subject of each source example), leave-one-group-out:
    fit on the other groups, AUC on the held-out one, averaged; this mimics the source → target shift, which a
    random split hides (a feature can fit the source template well and still not transfer). Without groups,
    the trust function's own stratified validation split (``source_val``)."""
    if groups is None:
        trust = make()
        trust.fit(source)
        if "auc" not in trust.source_val:
            raise W2SError(f"{trust.name} reports no source validation; give the sweep a group field")
        return float(trust.source_val["auc"])
    groups_ = np.asarray(groups)
    if len(set(groups_)) < 2:
        raise W2SError(f"the sweep's group field has one value ({groups_[0]!r}) on the source set; "
                       "leave-one-group-out needs at least two groups")
    aucs = []
    for held in sorted(set(groups_)):
        trust = make()
        trust.fit(source.subset(np.flatnonzero(groups_ != held)))
        held_out = source.subset(np.flatnonzero(groups_ == held))
        aucs.append(metrics.auc(trust.score(held_out.without_labels()), held_out.correct))
    return float(np.nanmean(aucs))


def feature_sweep(
    make: Callable[[list[str]], TrustFunction],
    source: TeacherOutputs,
    target: TeacherOutputs,
    candidates: list[list[str]],
    seeds: list[int],
    groups: list[str] | None = None,
) -> list[dict]:
    """For each feature set and seed: source-validation AUC (the selection criterion) and target AUC
    (evaluation only: target correctness never chooses anything). Returns one dict per feature set."""
    rows = []
    for features in candidates:
        val, tgt = [], []
        for seed in seeds:
            L.seed_everything(seed, verbose=False)
            val.append(source_validation_auc(lambda: make(features), source, groups))
            L.seed_everything(seed, verbose=False)
            trust = make(features)
            trust.fit(source)
            tgt.append(metrics.auc(trust.score(target.without_labels()), target.correct))
        rows.append({"features": features, "source_val_auc": val, "target_auc": tgt})
    best = max(rows, key=lambda r: np.mean(r["source_val_auc"]))
    for r in rows:
        r["best_on_source"] = r is best
    return rows
