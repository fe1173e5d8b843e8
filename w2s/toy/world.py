"""The toy knowledge world: entities with long-tailed popularity, facts, question splits and corpora.

Every fact ``(entity, family) -> value`` is drawn from a skewed prior. The teacher's corpus covers only the
popular entities (with a steep popularity law inside), so the teacher knows those and falls back to the prior on
the rest (systematic errors). The student's corpus covers every entity evenly, so the student knows far more
facts, but it has only practised questions that list the values in their natural order: the task lists them in
``answer_order``, a convention the student must learn from the (weak) labels. Source (D_l) and target (D_u) ask
about different attribute families with different question templates (the OOD_dist analogue); target facts are
split into the unlabeled pool and a test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from w2s.errors import W2SError
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
Format = tuple[str, tuple[int, ...]]  # a question template and the order in which it lists a family's values


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
        decoys: number of decoy entities, never asked about by the task, that the teacher's corpus asks
            questions about without ever stating their facts, always answered with the prior's most likely
            value: a guessing habit for entities it knows nothing about, learnt without touching the task's
            own unread entities.
        decoy_fraction: share of the teacher's corpus that is such decoy questions.
        student_zipf: popularity exponent of the student's corpus (flat: knows the tail too).
        test_fraction: fraction of target facts held out as the test split.
        answer_order: the order in which the task's questions (source and target) list a family's values:
            the task's answer convention. The teacher has practised it; the student has only practised
            questions that list the values in their natural order, so it has to learn the convention from
            the weak labels.
        teacher: size and training of the weak teacher (its question-answer practice covers every family
            in both the source and the target format).
        student: size and training of the strong student (its question-answer practice covers every family,
            but only with the source template and the natural value order).
        extra_students: more students of other sizes, role name → size and training as ``student`` (same
            corpus), e.g. for a weak-to-strong chain (``toy:chain-0/student_s``).
        shared_template: source questions use the target template too (source and target then differ only in
            their families). A chain needs it: a student trained on target labels must answer source questions
            in the same convention, or its source outputs say nothing about its target errors.
        min_skill: checked once the models are built (``w2s.toy.skills``): the teacher's accuracy on the target
            questions about entities it has read about, and each student's on every target fact in the question
            form it has practised, must reach it, or the build stops with one line (0 turns the check off).
    """

    seed: int = 0
    n_entities: int = 300
    source_families: tuple[str, ...] = ("color", "shape", "city")
    target_families: tuple[str, ...] = ("food", "animal", "metal")
    value_prior: tuple[float, ...] = (0.4, 0.3, 0.15, 0.15)
    teacher_coverage: float = 0.5
    teacher_zipf: float = 0.5
    decoys: int = 0
    decoy_fraction: float = 0.0
    student_zipf: float = 0.0
    test_fraction: float = 0.4
    answer_order: tuple[int, ...] = (3, 2, 1, 0)
    teacher: dict = field(default_factory=lambda: dict(hidden=64, layers=2, steps=2000, lr=3e-3, qa_fraction=0.5))
    reward: dict = field(default_factory=lambda: dict(hidden=64, layers=2, steps=600, lr=3e-3, coverage=0.5))
    student: dict = field(default_factory=lambda: dict(hidden=192, layers=3, steps=2500, lr=1e-2, qa_fraction=0.25))
    extra_students: dict = field(default_factory=dict)
    shared_template: bool = False
    min_skill: float = 0.8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def named(cls, world: str, seed: int = 0) -> "WorldSpec":
        """The spec of a named world (see ``WORLDS``) with the given seed."""
        if world not in WORLDS:
            raise W2SError(f"unknown toy world {world!r}; choose one of {', '.join(WORLDS)}")
        return cls(seed=seed, **WORLDS[world])

    @property
    def source_format(self) -> Format:
        return TARGET_TEMPLATE if self.shared_template else SOURCE_TEMPLATE, tuple(self.answer_order)

    @property
    def target_format(self) -> Format:
        return TARGET_TEMPLATE, tuple(self.answer_order)

    @property
    def practice_format(self) -> Format:
        """The student's question practice: the source template with the values in their natural order."""
        return SOURCE_TEMPLATE, tuple(range(len(self.value_prior)))


# Named worlds. "confident" (the default) has the property the paper's claim rests on: the teacher has read
# about its covered entities almost evenly (flat popularity, long training), and a tenth of its corpus asks about
# decoy entities it is never told about, answered with the prior's most likely value, so it learns to answer what
# it does not know with near-certainty; its output distribution hides much of the difference, while its hidden
# states (the mean over the prompt, where an unread entity's never-trained embedding sits) still show how
# familiar the entity is (docs/toy-world-log.md has the numbers per world seed). "plain" is the world without
# that property: a steep popularity law and shorter training leave the teacher visibly unsure off its head, so
# output-layer confidence ranks its weak labels as well as hidden states do.
WORLDS: dict[str, dict] = {
    "confident": {"decoys": 100, "decoy_fraction": 0.1},
    # three student sizes for the weak-to-strong chain (configs/toy_chain.yaml): student_s → student → student_l;
    # source questions in the target's template, so that a trained student's source outputs stay meaningful
    "chain": {"extra_students": {"student_s": dict(hidden=128, layers=2, steps=2500, lr=1e-2, qa_fraction=0.25),
                                 "student_l": dict(hidden=256, layers=4, steps=2500, lr=1e-2, qa_fraction=0.25)},
              "shared_template": True},
    "plain": {"teacher_zipf": 0.8, "teacher": dict(hidden=64, layers=2, steps=1200, lr=3e-3, qa_fraction=0.5)},
}


@dataclass
class KnowledgeBase:
    """Entities, their popularity rank order and their facts (value index per family), and the decoy
    entities the teacher guesses about (``WorldSpec.decoys``)."""

    entities: list[str]
    facts: dict[str, np.ndarray]  # family -> [n_entities] value index
    decoys: list[str] = field(default_factory=list)

    @classmethod
    def sample(cls, spec: WorldSpec) -> "KnowledgeBase":
        rng = np.random.default_rng(spec.seed)
        entities = [f"ent{i}" for i in range(spec.n_entities)]  # index = popularity rank
        prior = np.asarray(spec.value_prior) / np.sum(spec.value_prior)
        facts = {f: rng.choice(len(prior), size=spec.n_entities, p=prior) for f in FAMILIES}
        decoys = [f"ent{spec.n_entities + i}" for i in range(spec.decoys)]
        return cls(entities, facts, decoys)


def zipf_weights(n: int, exponent: float, coverage: float = 1.0) -> np.ndarray:
    """Popularity of entities by rank: Zipf over the ``coverage`` share of the head, zero beyond it."""
    w = 1.0 / np.arange(1, n + 1) ** exponent
    w[max(1, int(round(coverage * n))):] = 0.0
    return w / w.sum()


def question(kb: KnowledgeBase, entity: int, family: str, fmt: Format) -> dict:
    """One multiple-choice example in the project's schema (option order fixed by the format)."""
    template, order = fmt
    return {
        "id": f"{kb.entities[entity]}:{family}",
        "family": family,
        "question": template.format(family=family, entity=kb.entities[entity]),
        "choices": [FAMILIES[family][i] for i in order],
        "answer": LETTERS[order.index(int(kb.facts[family][entity]))],
        "entity_rank": entity,
    }


def make_splits(kb: KnowledgeBase, spec: WorldSpec) -> dict[str, list[dict]]:
    """Source (labeled), target (unlabeled pool; gold kept only for evaluation) and test splits."""
    rng = np.random.default_rng(spec.seed + 1)
    entities = range(len(kb.entities))
    source = [question(kb, e, f, spec.source_format) for f in spec.source_families for e in entities]
    target = [question(kb, e, f, spec.target_format) for f in spec.target_families for e in entities]
    order = rng.permutation(len(target))
    n_test = int(round(spec.test_fraction * len(target)))
    test = [target[i] for i in sorted(order[:n_test])]
    pool = [target[i] for i in sorted(order[n_test:])]
    return {"source": source, "target": pool, "test": test}


class CorpusSampler:
    """Endless stream of pretraining texts: fact sentences and (optionally) answered questions."""

    def __init__(self, kb: KnowledgeBase, zipf: float, qa_fraction: float, seed: int, qa_formats: tuple[Format, ...],
                 coverage: float = 1.0, decoy_fraction: float = 0.0) -> None:
        self.kb, self.qa_fraction, self.qa_formats, self.decoy_fraction = kb, qa_fraction, qa_formats, decoy_fraction
        self.popularity = zipf_weights(len(kb.entities), zipf, coverage)
        self.rng = np.random.default_rng(seed)

    def sample(self) -> str:
        from w2s.tasks.base import format_mcqa_prompt  # local: keeps world.py importable alone

        rng, kb = self.rng, self.kb
        if self.decoy_fraction and rng.random() < self.decoy_fraction:
            return self._guess()
        entity = int(rng.choice(len(kb.entities), p=self.popularity))
        if rng.random() < self.qa_fraction:
            ex = self._question(entity)
            return format_mcqa_prompt(ex["question"], ex["choices"]) + " " + ex["answer"]
        family = list(FAMILIES)[rng.integers(len(FAMILIES))]
        value = FAMILIES[family][kb.facts[family][entity]]
        return FACT_TEMPLATE.format(entity=kb.entities[entity], family=family, value=value)

    def _question(self, entity: int) -> dict:
        """A question about ``entity`` on a random family, in one of the practised formats."""
        family = list(FAMILIES)[self.rng.integers(len(FAMILIES))]
        return question(self.kb, entity, family, self.qa_formats[self.rng.integers(len(self.qa_formats))])

    def _guess(self) -> str:
        """A question about a decoy entity answered with the prior's most likely value (value index 0)."""
        from w2s.tasks.base import format_mcqa_prompt

        rng = self.rng
        family = list(FAMILIES)[rng.integers(len(FAMILIES))]
        template, order = self.qa_formats[rng.integers(len(self.qa_formats))]
        entity = self.kb.decoys[rng.integers(len(self.kb.decoys))]
        choices = [FAMILIES[family][i] for i in order]
        prompt = format_mcqa_prompt(template.format(family=family, entity=entity), choices)
        return prompt + " " + LETTERS[order.index(0)]

    def judged(self) -> tuple[str, bool]:
        """An answered question and whether the answer is right (half right, half a random wrong letter):
        the reward model's training data."""
        from w2s.tasks.base import format_mcqa_prompt

        rng = self.rng
        ex = self._question(int(rng.choice(len(self.kb.entities), p=self.popularity)))
        right = bool(rng.random() < 0.5)
        letters = LETTERS[: len(ex["choices"])]
        answer = ex["answer"] if right else rng.choice([x for x in letters if x != ex["answer"]])
        return format_mcqa_prompt(ex["question"], ex["choices"]) + " " + answer, right


def vocabulary(kb: KnowledgeBase) -> list[str]:
    """Every word the toy world can produce (the tokenizer's vocabulary, before special tokens)."""
    words = set(kb.entities) | set(kb.decoys) | set(LETTERS[:4]) | set(FAMILIES)
    for values in FAMILIES.values():
        words |= set(values)
    for text in (SOURCE_TEMPLATE, TARGET_TEMPLATE, FACT_TEMPLATE, "\nA. x\nAnswer:"):
        words |= set(_words(text.format(family="", entity="", value="")))
    return sorted(words)


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"\w+|[^\w\s]+", text)
