"""The toy knowledge world: entities with long-tailed popularity, facts, question splits and corpora.

Every fact ``(entity, family) -> value`` is drawn from a skewed prior. The teacher's corpus follows a steep
popularity law, so the teacher knows the popular entities and falls back to the prior on the rest (systematic
errors); the student's corpus is flatter, so the student knows far more facts but has never answered a
multiple-choice question. Source (D_l) and target (D_u) ask about different attribute families with different
question templates (the OOD_dist analogue); target facts are split into the unlabeled pool and a test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from w2s.tasks.base import LETTERS

FAMILIES: dict[str, list[str]] = {
    "color": ["red", "blue", "green", "yellow"],
    "shape": ["round", "square", "flat", "long"],
    "city": ["paris", "tokyo", "lima", "oslo"],
    "food": ["rice", "bread", "fish", "corn"],
    "animal": ["cat", "dog", "horse", "goat"],
    "metal": ["iron", "gold", "tin", "copper"],
}
SOURCE_TEMPLATE = "Question: What is the {family} of {entity}?"
TARGET_TEMPLATE = "Question: We know that {entity} has {family} of which kind?"
FACT_TEMPLATE = "{entity} has {family} {value}."


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines a toy world; its hash names the cache directory.

    Args:
        seed: seed of the knowledge base, the splits and both pretraining runs.
        n_entities: number of entities.
        source_families: attribute families asked in the source set D_l.
        target_families: attribute families asked in the target set D_u (and its test split).
        value_prior: probability of each value of a family (first = the teacher's fallback guess).
        teacher_coverage: share of the entities (the most popular ones) that the teacher's corpus mentions
            at all; the teacher has never read about the rest and falls back to the value prior there.
        teacher_zipf: popularity exponent of the teacher's corpus within its coverage.
        student_zipf: popularity exponent of the student's corpus (flat: knows the tail too).
        test_fraction: fraction of target facts held out as the test split.
        teacher: size and training of the weak teacher (its question-answer practice covers every family
            and both templates).
        student: size and training of the strong student (its question-answer practice covers only the
            source families and template: the target questions are new to it).
    """

    seed: int = 0
    n_entities: int = 300
    source_families: tuple[str, ...] = ("color", "shape", "city")
    target_families: tuple[str, ...] = ("food", "animal", "metal")
    value_prior: tuple[float, ...] = (0.4, 0.3, 0.15, 0.15)
    teacher_coverage: float = 0.5
    teacher_zipf: float = 0.8
    student_zipf: float = 0.0
    test_fraction: float = 0.4
    teacher: dict = field(default_factory=lambda: dict(hidden=64, layers=2, steps=1200, lr=3e-3, qa_fraction=0.5))
    student: dict = field(default_factory=lambda: dict(hidden=192, layers=3, steps=1000, qa_fraction=0.25))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class KnowledgeBase:
    """Entities, their popularity rank order and their facts (value index per family)."""

    entities: list[str]
    facts: dict[str, np.ndarray]  # family -> [n_entities] value index

    @classmethod
    def sample(cls, spec: WorldSpec) -> "KnowledgeBase":
        rng = np.random.default_rng(spec.seed)
        entities = [f"ent{i}" for i in range(spec.n_entities)]  # index = popularity rank
        prior = np.asarray(spec.value_prior) / np.sum(spec.value_prior)
        facts = {f: rng.choice(len(prior), size=spec.n_entities, p=prior) for f in FAMILIES}
        return cls(entities, facts)


def zipf_weights(n: int, exponent: float, coverage: float = 1.0) -> np.ndarray:
    """Popularity of entities by rank: Zipf over the ``coverage`` share of the head, zero beyond it."""
    w = 1.0 / np.arange(1, n + 1) ** exponent
    w[max(1, int(round(coverage * n))):] = 0.0
    return w / w.sum()


def question(kb: KnowledgeBase, entity: int, family: str, template: str) -> dict:
    """One multiple-choice example in the project's schema (fixed option order per family)."""
    return {
        "id": f"{kb.entities[entity]}:{family}",
        "question": template.format(family=family, entity=kb.entities[entity]),
        "choices": list(FAMILIES[family]),
        "answer": LETTERS[int(kb.facts[family][entity])],
        "entity_rank": entity,
    }


def make_splits(kb: KnowledgeBase, spec: WorldSpec) -> dict[str, list[dict]]:
    """Source (labeled), target (unlabeled pool; gold kept only for evaluation) and test splits."""
    rng = np.random.default_rng(spec.seed + 1)
    source = [question(kb, e, f, SOURCE_TEMPLATE) for f in spec.source_families for e in range(len(kb.entities))]
    target = [question(kb, e, f, TARGET_TEMPLATE) for f in spec.target_families for e in range(len(kb.entities))]
    order = rng.permutation(len(target))
    n_test = int(round(spec.test_fraction * len(target)))
    test = [target[i] for i in sorted(order[:n_test])]
    pool = [target[i] for i in sorted(order[n_test:])]
    return {"source": source, "target": pool, "test": test}


class CorpusSampler:
    """Endless stream of pretraining texts: fact sentences and (optionally) answered questions."""

    def __init__(self, kb: KnowledgeBase, zipf: float, qa_fraction: float, seed: int, coverage: float = 1.0,
                 qa_families: tuple[str, ...] = tuple(FAMILIES),
                 qa_templates: tuple[str, ...] = (SOURCE_TEMPLATE, TARGET_TEMPLATE)) -> None:
        self.kb, self.qa_fraction = kb, qa_fraction
        self.qa_families, self.qa_templates = qa_families, qa_templates
        self.popularity = zipf_weights(len(kb.entities), zipf, coverage)
        self.rng = np.random.default_rng(seed)

    def sample(self) -> str:
        from w2s.tasks.base import format_mcqa_prompt  # local: keeps world.py importable alone

        rng, kb = self.rng, self.kb
        entity = int(rng.choice(len(kb.entities), p=self.popularity))
        if rng.random() < self.qa_fraction:
            family = self.qa_families[rng.integers(len(self.qa_families))]
            template = self.qa_templates[rng.integers(len(self.qa_templates))]
            ex = question(kb, entity, family, template)
            return format_mcqa_prompt(ex["question"], ex["choices"]) + " " + ex["answer"]
        family = list(FAMILIES)[rng.integers(len(FAMILIES))]
        value = FAMILIES[family][kb.facts[family][entity]]
        return FACT_TEMPLATE.format(entity=kb.entities[entity], family=family, value=value)


def vocabulary(kb: KnowledgeBase) -> list[str]:
    """Every word the toy world can produce (the tokenizer's vocabulary, before special tokens)."""
    words = set(kb.entities) | set(LETTERS[:4]) | set(FAMILIES)
    for values in FAMILIES.values():
        words |= set(values)
    for text in (SOURCE_TEMPLATE, TARGET_TEMPLATE, FACT_TEMPLATE, "\nA. x\nAnswer:"):
        words |= set(_words(text.format(family="", entity="", value="")))
    return sorted(words)


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"\w+|[^\w\s]+", text)
