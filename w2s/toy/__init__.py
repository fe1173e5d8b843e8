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
import re
from pathlib import Path

import datasets

from w2s.cache import atomic_dir, cache_root, is_complete, stable_hash
from w2s.toy.skills import Skill, accuracy, check_skills, greedy_answers
from w2s.toy.tasks import ToyChess, ToyKnowledge, ToyMath
from w2s.toy.world import WORLDS, CorpusSampler, KnowledgeBase, WorldSpec, make_splits, question, vocabulary

TOY_MODEL = re.compile(r"^toy:(?:([a-z]+)-)?(\d+)/(teacher|student(?:_[a-z]+)?|reward)$")
VERSION = "4"  # 4: length-bucketed pretraining batches, skills checked at build time
log = logging.getLogger(__name__)


def world_dir(seed: int = 0, spec: WorldSpec | None = None, world: str = "confident") -> Path:
    spec = spec or WorldSpec.named(world, seed)
    return cache_root() / "toy" / f"world-{spec.seed}-{stable_hash([VERSION, spec.to_dict()], 10)}"


def resolve_model(name: str) -> str | None:
    """The directory of a toy model name ``toy:[<world>-]<seed>/<role>`` (its world built on demand), or ``None``
    when ``name`` is not one (registered with ``w2s.models`` as the resolver of ``toy:`` names)."""
    match = TOY_MODEL.match(name)
    if match is None:
        return None
    world, seed, role = match.group(1) or "confident", int(match.group(2)), match.group(3)
    return str(ensure_world(seed, world=world) / role)


def ensure_world(seed: int = 0, spec: WorldSpec | None = None, world: str = "confident") -> Path:
    """Build (or reuse) the named toy world (or the one ``spec`` describes) for ``seed``; return its directory.
    ``world="math"`` is the toy math world (``w2s.toy.arithmetic``), ``world="chess"`` the toy chess world
    (``w2s.toy.chess_world``)."""
    from w2s.toy.pretrain import build_role, build_tokenizer

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
        sampler = _sampler(role.split("_")[0], kb, spec, seed=spec.seed + offset)
        build_role(root, role, manifest, tokenizer, cfg, spec.seed + offset, sampler, 32,
                   f"toy {role} (world seed {spec.seed})", reward=role == "reward")
    check_skills(root, lambda: _skills(root, kb, spec))
    return root


def _skills(root: Path, kb: KnowledgeBase, spec: WorldSpec) -> dict[str, Skill]:
    """The teacher on the target questions about the entities it has read about (it should know those), and each
    student on every target fact in the question form it has practised (it should know them all)."""
    from w2s.tasks.base import LETTERS, format_mcqa_prompt, parse_letter

    def ask(role: str, fmt, entities) -> float:
        examples = [question(kb, e, f, fmt) for f in spec.target_families for e in entities]
        answers = greedy_answers(root / role, [format_mcqa_prompt(x["question"], x["choices"]) for x in examples], 1)
        return accuracy([parse_letter(a, LETTERS[:4]) for a in answers], [x["answer"] for x in examples])

    chance, covered = 1 / len(spec.value_prior), range(int(round(spec.teacher_coverage * spec.n_entities)))
    skills = {"teacher": Skill("the teacher on target questions about entities it has read about",
                               ask("teacher", spec.target_format, covered), chance, spec.min_skill)}
    for role in ["student", *sorted(spec.extra_students)]:
        skills[role] = Skill(f"the {role} on every target fact, in the question form it has practised",
                             ask(role, spec.practice_format, range(spec.n_entities)), chance, spec.min_skill)
    return skills


def _sampler(role: str, kb: KnowledgeBase, spec: WorldSpec, seed: int) -> CorpusSampler:
    """What each toy model reads: the teacher the popular head (both task formats), the student every
    entity (the practice format only), the reward model judged answers in the source format over the head."""
    if role == "teacher":
        return CorpusSampler(kb, spec.teacher_zipf, spec.teacher["qa_fraction"], seed,
                             qa_formats=(spec.source_format, spec.target_format), coverage=spec.teacher_coverage,
                             decoy_fraction=spec.decoy_fraction)
    if role == "student":
        return CorpusSampler(kb, spec.student_zipf, spec.student["qa_fraction"], seed,
                             qa_formats=(spec.practice_format,))
    return CorpusSampler(kb, 0.0, 1.0, seed, qa_formats=(spec.source_format,), coverage=spec.reward["coverage"])


__all__ = ["WORLDS", "ToyChess", "ToyKnowledge", "ToyMath", "WorldSpec", "ensure_world", "resolve_model", "world_dir"]
