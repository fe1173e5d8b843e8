"""The embedded toy world: data, tokenizer, weak teacher and strong student, built once and cached.

``ensure_world(seed, world)`` returns a directory with ``data/`` (a ``DatasetDict`` saved with
``save_to_disk``), ``teacher/``, ``student/`` and ``reward/`` (models and tokenizers saved with
``save_pretrained``; the "chain" world adds students of other sizes). Each part is written atomically, so an
interrupted build resumes with the parts that are missing. Configs name the models ``toy:<seed>/<role>`` (the
default "confident" world) or ``toy:<world>-<seed>/<role>`` (e.g. ``toy:plain-0/teacher``, or
``toy:math-0/student`` in the toy math world); ``w2s.models`` resolves those names to these paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import torch

from w2s.cache import atomic_dir, cache_root, is_complete, stable_hash
from w2s.toy.world import WORLDS, CorpusSampler, KnowledgeBase, WorldSpec, make_splits, vocabulary

VERSION = "3"
log = logging.getLogger(__name__)


def world_dir(seed: int = 0, spec: WorldSpec | None = None, world: str = "confident") -> Path:
    spec = spec or WorldSpec.named(world, seed)
    return cache_root() / "toy" / f"world-{spec.seed}-{stable_hash([VERSION, spec.to_dict()], 10)}"


def ensure_world(seed: int = 0, spec: WorldSpec | None = None, world: str = "confident") -> Path:
    """Build (or reuse) the named toy world (or the one ``spec`` describes) for ``seed``; return its directory.
    ``world="math"`` is the toy math world (``w2s.toy.arithmetic``), ``world="chess"`` the toy chess world
    (``w2s.toy.chess_world``)."""
    from w2s.toy.pretrain import build_model, build_tokenizer, pretrain

    if world == "math" and spec is None:
        from w2s.toy import arithmetic

        return arithmetic.ensure_world(seed)
    if world == "chess" and spec is None:
        from w2s.toy import chess_world

        return chess_world.ensure_world(seed)

    spec = spec or WorldSpec.named(world, seed)
    root = world_dir(spec.seed, spec)
    kb = KnowledgeBase.sample(spec)
    manifest = {"spec": spec.to_dict(), "version": VERSION}
    if not is_complete(root / "data"):
        with atomic_dir(root / "data", manifest) as tmp:
            splits = make_splits(kb, spec)
            datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()}).save_to_disk(tmp)
    tokenizer = build_tokenizer(vocabulary(kb))
    roles = [("teacher", 10, spec.teacher), ("student", 20, spec.student), ("reward", 30, spec.reward)]
    roles += [(name, 40 + 10 * i, cfg) for i, (name, cfg) in enumerate(sorted(spec.extra_students.items()))]
    for role, offset, cfg in roles:
        if is_complete(root / role):
            continue
        log.info("building toy %s for world seed %d (cached under %s)", role, spec.seed, root)
        sampler = _sampler(role.split("_")[0], kb, spec, seed=spec.seed + offset)
        with torch.random.fork_rng():  # building must not change the run's random stream (cold == warm)
            model = build_model(tokenizer, cfg["hidden"], cfg["layers"], seed=spec.seed + offset,
                                reward=role == "reward")
            pretrain(model, tokenizer, sampler, steps=cfg["steps"], lr=cfg.get("lr", 1e-2), desc=f"toy {role}")
        with atomic_dir(root / role, manifest) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return root


def _sampler(role: str, kb: KnowledgeBase, spec: WorldSpec, seed: int) -> CorpusSampler:
    """What each toy model reads: the teacher the popular head (both task formats), the student every
    entity (the practice format only), the reward model judged answers in the source format over the head."""
    if role == "teacher":
        return CorpusSampler(kb, spec.teacher_zipf, spec.teacher["qa_fraction"], seed,
                             qa_formats=(spec.source_format, spec.target_format), coverage=spec.teacher_coverage)
    if role == "student":
        return CorpusSampler(kb, spec.student_zipf, spec.student["qa_fraction"], seed,
                             qa_formats=(spec.practice_format,))
    return CorpusSampler(kb, 0.0, 1.0, seed, qa_formats=(spec.source_format,), coverage=spec.reward["coverage"])


__all__ = ["WORLDS", "WorldSpec", "ensure_world", "world_dir"]
