"""The embedded toy world: data, tokenizer, weak teacher and strong student, built once and cached.

``ensure_world(seed)`` returns a directory with ``data/`` (a ``DatasetDict`` saved with ``save_to_disk``),
``teacher/`` and ``student/`` (models and tokenizers saved with ``save_pretrained``). Each part is written
atomically, so an interrupted build resumes with the parts that are missing. Configs name the models
``toy:<seed>/teacher`` and ``toy:<seed>/student``; ``w2s.models`` resolves those names to these paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import torch

from w2s.cache import atomic_dir, cache_root, is_complete, stable_hash
from w2s.toy.world import CorpusSampler, KnowledgeBase, WorldSpec, make_splits, vocabulary

VERSION = "2"
log = logging.getLogger(__name__)


def world_dir(seed: int = 0, spec: WorldSpec | None = None) -> Path:
    spec = spec or WorldSpec(seed=seed)
    return cache_root() / "toy" / f"world-{spec.seed}-{stable_hash([VERSION, spec.to_dict()], 10)}"


def ensure_world(seed: int = 0, spec: WorldSpec | None = None) -> Path:
    """Build (or reuse) the toy world for ``seed`` and return its directory."""
    from w2s.toy.pretrain import build_model, build_tokenizer, pretrain

    spec = spec or WorldSpec(seed=seed)
    root = world_dir(spec.seed, spec)
    kb = KnowledgeBase.sample(spec)
    manifest = {"spec": spec.to_dict(), "version": VERSION}
    if not is_complete(root / "data"):
        with atomic_dir(root / "data", manifest) as tmp:
            splits = make_splits(kb, spec)
            datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()}).save_to_disk(tmp)
    tokenizer = build_tokenizer(vocabulary(kb))
    for role, offset in (("teacher", 10), ("student", 20)):
        if is_complete(root / role):
            continue
        log.info("building toy %s for world seed %d (cached under %s)", role, spec.seed, root)
        cfg = getattr(spec, role)
        zipf = spec.teacher_zipf if role == "teacher" else spec.student_zipf
        if role == "teacher":
            qa = {"qa_formats": (spec.source_format, spec.target_format), "coverage": spec.teacher_coverage}
        else:
            qa = {"qa_formats": (spec.practice_format,)}
        sampler = CorpusSampler(kb, zipf, cfg["qa_fraction"], seed=spec.seed + offset, **qa)
        with torch.random.fork_rng():  # building must not change the run's random stream (cold == warm)
            model = build_model(tokenizer, cfg["hidden"], cfg["layers"], seed=spec.seed + offset)
            pretrain(model, tokenizer, sampler, steps=cfg["steps"], lr=cfg.get("lr", 1e-2), desc=f"toy {role}")
        with atomic_dir(root / role, manifest) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return root


__all__ = ["WorldSpec", "ensure_world", "world_dir"]
