import json
import re

import datasets
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import ROOT, run_main
from w2s.tasks.base import LETTERS
from w2s.toy.world import FAMILIES, KnowledgeBase, WorldSpec, make_splits, zipf_weights


def test_world_is_deterministic_and_splits_are_disjoint():
    spec = WorldSpec(seed=3, n_entities=50)
    a, b = make_splits(KnowledgeBase.sample(spec), spec), make_splits(KnowledgeBase.sample(spec), spec)
    assert a == b
    ids = {name: {ex["id"] for ex in split} for name, split in a.items()}
    assert not ids["target"] & ids["test"] and not ids["source"] & ids["target"] and not ids["source"] & ids["test"]
    assert {ex["id"].split(":")[1] for ex in a["source"]} == set(spec.source_families)
    assert {ex["id"].split(":")[1] for ex in a["target"]} == set(spec.target_families)


@pytest.mark.parametrize("order", [(3, 2, 1, 0), (0, 1, 2, 3), (1, 3, 0, 2)])
def test_questions_follow_the_answer_convention(order):
    spec = WorldSpec(seed=1, n_entities=20, answer_order=order)
    kb = KnowledgeBase.sample(spec)
    splits = make_splits(kb, spec)
    for ex in splits["source"] + splits["target"] + splits["test"]:
        family = ex["id"].split(":")[1]
        assert ex["choices"] == [FAMILIES[family][i] for i in order]
        assert ex["choices"][LETTERS.index(ex["answer"])] == FAMILIES[family][kb.facts[family][ex["entity_rank"]]]
    assert spec.practice_format[1] == (0, 1, 2, 3)


def test_teacher_corpus_covers_only_the_popular_head():
    w = zipf_weights(100, 0.8, coverage=0.5)
    assert w[:50].min() > 0 and w[50:].max() == 0 and w[0] > w[49] and abs(w.sum() - 1) < 1e-9


def test_decoys_teach_a_guessing_habit_without_touching_the_task_entities():
    from w2s.toy import _sampler
    from w2s.toy.world import vocabulary

    plain, spec = WorldSpec(seed=2, n_entities=30), WorldSpec(seed=2, n_entities=30, decoys=5, decoy_fraction=0.3)
    kb = KnowledgeBase.sample(spec)
    assert kb.decoys == [f"ent{30 + i}" for i in range(5)] and set(kb.decoys) <= set(vocabulary(kb))
    sampler = _sampler("teacher", kb, spec, 0)
    texts = [sampler.sample() for _ in range(2000)]
    guesses = [t for t in texts if any(re.search(rf"\b{d}\b", t) for d in kb.decoys)]
    assert 0.25 < len(guesses) / len(texts) < 0.35
    for text in guesses:  # a question (never a fact) answered with the prior's most likely value
        family = next(f for f in FAMILIES if f" {f} " in text)
        first = FAMILIES[family][0]
        letter = text.rsplit(" ", 1)[1]
        assert text.startswith("Question:") and f"{letter}. {first}" in text
    # decoys the corpus never asks about change nothing: the corpus of a world without them, draw for draw
    unused = WorldSpec(seed=2, n_entities=30, decoys=5)
    a, b = (_sampler("teacher", KnowledgeBase.sample(w), w, 0) for w in (plain, unused))
    assert [a.sample() for _ in range(300)] == [b.sample() for _ in range(300)]


def test_artifacts_load_like_hub_models(tiny_world):
    data = datasets.load_from_disk(tiny_world / "data")
    assert set(data) == {"source", "target", "test"}
    for role in ("teacher", "student"):
        tokenizer = AutoTokenizer.from_pretrained(tiny_world / role)
        model = AutoModelForCausalLM.from_pretrained(tiny_world / role)
        text = data["target"][0]["question"]
        assert tokenizer.unk_token_id not in tokenizer(text).input_ids
        assert model.config.model_type == "qwen3"
    assert (tiny_world / "teacher" / "manifest.json").exists()


@pytest.mark.slow(minutes=12)
def test_default_toy_config_shows_the_effect(tmp_path):
    """The README's command on the default toy world shows the paper's effect (issue thresholds, one seed):
    the NTF lifts the student well above Naive, and its hidden states see errors output-layer entropy misses."""
    finals = {}
    for trust in ("NeuralTrustFunction", "Naive", "Entropy"):
        proc = run_main("fit", "--config", str(ROOT / "configs" / "toy.yaml"), "--trust", trust,
                        "--trainer.enable_progress_bar", "false", cwd=tmp_path / trust,
                        timeout=1500)  # the first run builds the default world (~9 min on 2 cores)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (results,) = (tmp_path / trust).glob("runs/toy/version_*/results.json")
        finals[trust] = json.loads(results.read_text())
    ntf = finals["NeuralTrustFunction"]
    teacher = ntf["teacher"]["accuracy"]["target"]
    assert 0.35 <= teacher <= 0.8
    assert ntf["trust"]["auc"] >= 0.8 and ntf["trust"]["purity"] >= teacher + 0.15
    assert ntf["student"]["accuracy"]["final"] >= finals["Naive"]["student"]["accuracy"]["final"] + 0.05
    assert ntf["trust"]["auc"] >= finals["Entropy"]["trust"]["auc"] + 0.1  # the confident world's errors


def test_building_a_world_leaves_the_global_random_stream_alone(cache_root):
    import torch

    from w2s.toy import ensure_world

    spec = WorldSpec(seed=7, n_entities=12, teacher=dict(hidden=16, layers=1, steps=2, lr=1e-2, qa_fraction=0.5),
                     student=dict(hidden=16, layers=1, steps=2, lr=1e-2, qa_fraction=0.25),
                     reward=dict(hidden=16, layers=1, steps=2, lr=1e-2, coverage=0.5), min_skill=0.0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ensure_world(spec=spec)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow(minutes=20)
def test_toy_math_config_shows_the_effect_with_grpo(tmp_path):
    """configs/toy_math.yaml (one seed): the teacher solves 20-60 % of the target problems, the NTF finds its
    confident errors, and GRPO on the trusted weak labels beats the base student and GRPO on every weak label."""
    finals = {}
    for trust in ("NeuralTrustFunction", "Naive"):
        proc = run_main("fit", "--config", str(ROOT / "configs" / "toy_math.yaml"), "--trust", trust,
                        "--trainer.enable_progress_bar", "false", cwd=tmp_path / trust,
                        timeout=1800)  # the first run builds the toy math world (~12 min on 2 cores)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (results,) = (tmp_path / trust).glob("runs/toy_math/version_*/results.json")
        finals[trust] = json.loads(results.read_text())
    ntf, naive = finals["NeuralTrustFunction"], finals["Naive"]
    assert 0.2 <= ntf["teacher"]["accuracy"]["target"] <= 0.6
    assert ntf["trust"]["auc"] >= 0.8 and ntf["trust"]["purity"] >= 0.9
    student = ntf["student"]["accuracy"]
    assert student["final"] >= student["base"] + 0.3
    assert student["final"] >= naive["student"]["accuracy"]["final"] + 0.15


def test_a_world_whose_models_did_not_learn_stops_with_one_line(cache_root):
    """Two pretraining steps leave the teacher at chance: the build says so (and keeps what it measured)."""
    from w2s.errors import W2SError
    from w2s.toy import ensure_world, world_dir

    tiny = dict(hidden=16, layers=1, steps=2, lr=1e-2)
    spec = WorldSpec(seed=8, n_entities=12, teacher={**tiny, "qa_fraction": 0.5},
                     student={**tiny, "qa_fraction": 0.25}, reward={**tiny, "coverage": 0.5}, min_skill=0.9)
    with pytest.raises(W2SError, match=r"did not learn what it needs \(the teacher on target questions .*needs ≥ 0.90"):
        ensure_world(spec=spec)
    skills = json.loads((world_dir(spec.seed, spec) / "skills.json").read_text())
    assert set(skills) == {"teacher", "student"} and all(0 <= s["accuracy"] <= 1 for s in skills.values())
