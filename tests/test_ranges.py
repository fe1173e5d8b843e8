"""Every numeric init argument is range-checked where its object is built: one W2SError line naming it."""

import re

import pytest
from conftest import ROOT, run_cli

from students import GRPOStudent, LoRASFTStudent
from trust_functions import ICLConfidence, LinearProbe, NeuralTrustFunction, RewardModel
from w2s.errors import W2SError, check_ranges
from w2s.selection import Selection
from w2s.tasks import Chess, MathReasoning, MultipleChoice
from w2s.teacher import Teacher

NO_MODEL = "no/such/model"  # a student or teacher is refused before its model would be looked for
MMLU = dict(source="mmlu:test", target="mmlu:dev", test="mmlu:validation")
MATH = dict(source="math", target="omni_math", test="aime")

BAD = [
    (LoRASFTStudent, dict(model=NO_MODEL, lora_r=0), "LoRASFTStudent.lora_r must be a positive integer (got 0)"),
    (LoRASFTStudent, dict(model=NO_MODEL, lora_alpha=0), "LoRASFTStudent.lora_alpha must be > 0 (got 0)"),
    (LoRASFTStudent, dict(model=NO_MODEL, lora_dropout=1.0), "LoRASFTStudent.lora_dropout must be in [0, 1) (got 1.0)"),
    (LoRASFTStudent, dict(model=NO_MODEL, lr=0.0), "LoRASFTStudent.lr must be > 0 (got 0.0)"),
    (LoRASFTStudent, dict(model=NO_MODEL, weight_decay=-0.1), "LoRASFTStudent.weight_decay must be ≥ 0 (got -0.1)"),
    (LoRASFTStudent, dict(model=NO_MODEL, warmup_ratio=1.0), "LoRASFTStudent.warmup_ratio must be in [0, 1) (got 1.0)"),
    (LoRASFTStudent, dict(model=NO_MODEL, max_new_tokens=0), "LoRASFTStudent.max_new_tokens must be a positive"),
    (GRPOStudent, dict(model=NO_MODEL, lora_r=0), "GRPOStudent.lora_r must be a positive integer (got 0)"),
    (GRPOStudent, dict(model=NO_MODEL, lora_alpha=-1), "GRPOStudent.lora_alpha must be > 0 (got -1)"),
    (GRPOStudent, dict(model=NO_MODEL, lr=-1e-4), "GRPOStudent.lr must be > 0 (got -0.0001)"),
    (GRPOStudent, dict(model=NO_MODEL, weight_decay=-1.0), "GRPOStudent.weight_decay must be ≥ 0 (got -1.0)"),
    (GRPOStudent, dict(model=NO_MODEL, num_generations=1), "GRPOStudent.num_generations must be an integer ≥ 2"),
    (GRPOStudent, dict(model=NO_MODEL, temperature=0.0), "GRPOStudent.temperature must be > 0 (got 0.0)"),
    (GRPOStudent, dict(model=NO_MODEL, max_new_tokens=0), "GRPOStudent.max_new_tokens must be a positive integer"),
    (GRPOStudent, dict(model=NO_MODEL, epsilon=0.0), "GRPOStudent.epsilon must be > 0 (got 0.0)"),
    (GRPOStudent, dict(model=NO_MODEL, beta=-0.1), "GRPOStudent.beta must be ≥ 0 (got -0.1)"),
    (GRPOStudent, dict(model=NO_MODEL, num_iterations=0), "GRPOStudent.num_iterations must be a positive integer"),
    (GRPOStudent, dict(model=NO_MODEL, max_grad_norm=0.0), "GRPOStudent.max_grad_norm must be > 0 (got 0.0)"),
    (GRPOStudent, dict(model=NO_MODEL, accumulate=0), "GRPOStudent.accumulate must be a positive integer"),
    (NeuralTrustFunction, dict(width=0), "NeuralTrustFunction.width must be a positive integer (got 0)"),
    (NeuralTrustFunction, dict(depth=0), "NeuralTrustFunction.depth must be a positive integer (got 0)"),
    (NeuralTrustFunction, dict(expansion=1.5), "NeuralTrustFunction.expansion must be a positive integer (got 1.5)"),
    (NeuralTrustFunction, dict(dropout=1.0), "NeuralTrustFunction.dropout must be in [0, 1) (got 1.0)"),
    (NeuralTrustFunction, dict(drop_path=-0.1), "NeuralTrustFunction.drop_path must be in [0, 1) (got -0.1)"),
    (NeuralTrustFunction, dict(lr=0.0), "NeuralTrustFunction.lr must be > 0 (got 0.0)"),
    (NeuralTrustFunction, dict(lr="fast"), "NeuralTrustFunction.lr must be > 0 (got 'fast')"),
    (NeuralTrustFunction, dict(weight_decay=-0.05), "NeuralTrustFunction.weight_decay must be ≥ 0 (got -0.05)"),
    (NeuralTrustFunction, dict(max_epochs=0), "NeuralTrustFunction.max_epochs must be a positive integer (got 0)"),
    (NeuralTrustFunction, dict(batch_size=0), "NeuralTrustFunction.batch_size must be a positive integer (got 0)"),
    (NeuralTrustFunction, dict(val_fraction=0.0), "NeuralTrustFunction.val_fraction must be in (0, 1) (got 0.0)"),
    (NeuralTrustFunction, dict(val_fraction=1.0), "NeuralTrustFunction.val_fraction must be in (0, 1) (got 1.0)"),
    (LinearProbe, dict(l2=-1e-3), "LinearProbe.l2 must be ≥ 0 (got -0.001)"),
    (LinearProbe, dict(max_iter=0), "LinearProbe.max_iter must be a positive integer (got 0)"),
    (LinearProbe, dict(val_fraction=1.0), "LinearProbe.val_fraction must be in (0, 1) (got 1.0)"),
    (RewardModel, dict(fine_tune_steps=-1), "RewardModel.fine_tune_steps must be a non-negative integer (got -1)"),
    (RewardModel, dict(lr=0.0), "RewardModel.lr must be > 0 (got 0.0)"),
    (RewardModel, dict(lora_r=-1), "RewardModel.lora_r must be a non-negative integer (got -1)"),
    (RewardModel, dict(batch_size=0), "RewardModel.batch_size must be a positive integer (got 0)"),
    (RewardModel, dict(max_length=0), "RewardModel.max_length must be a positive integer (got 0)"),
    (RewardModel, dict(val_fraction=0.0), "RewardModel.val_fraction must be in (0, 1) (got 0.0)"),
    (ICLConfidence, dict(k=0), "ICLConfidence.k must be a positive integer (got 0)"),
    (Teacher, dict(model=NO_MODEL, batch_size=0), "Teacher.batch_size must be a positive integer (got 0)"),
    (Teacher, dict(model=NO_MODEL, max_new_tokens=0), "Teacher.max_new_tokens must be a positive integer (got 0)"),
    (Teacher, dict(model=NO_MODEL, shard_size=0), "Teacher.shard_size must be a positive integer (got 0)"),
    (Selection, dict(mode="top_n", n=0), "selection.n must be a positive integer (got 0)"),
    (Selection, dict(mode="top_n", n=None), "selection.n must be a positive integer for mode top_n (got None)"),
    (Selection, dict(fraction=0.0), "selection.fraction must be in (0, 1] (got 0.0)"),
    (Selection, dict(fraction=1.5), "selection.fraction must be in (0, 1] (got 1.5)"),
    (Selection, dict(mode="threshold", threshold=1.5), "selection.threshold must be in [0, 1] (got 1.5)"),
    (Chess, dict(path="unused", min_ply=-1), "Chess.min_ply must be a non-negative integer (got -1)"),
    (Chess, dict(path="unused", max_cp_loss=-50), "Chess.max_cp_loss must be ≥ 0 (got -50)"),
    (Chess, dict(path="unused", engine_depth=0), "Chess.engine_depth must be a positive integer (got 0)"),
    (Chess, dict(path="unused", engine_time=0.0), "Chess.engine_time must be > 0 (got 0.0)"),
    (Chess, dict(path="unused", max_examples=0), "Chess.max_examples must be a positive integer (got 0)"),
    (MultipleChoice, dict(**MMLU, max_examples=0), "MultipleChoice.max_examples must be a positive integer (got 0)"),
    (MathReasoning, dict(**MATH, max_examples=0), "MathReasoning.max_examples must be a positive integer (got 0)"),
]

BOUNDARIES = [
    (NeuralTrustFunction, dict(width=1, depth=1, expansion=1, dropout=0.0, drop_path=0.0, weight_decay=0.0,
                               max_epochs=1, batch_size=1, val_fraction=0.01)),
    (LinearProbe, dict(l2=0.0, max_iter=1, val_fraction=0.99)),
    (RewardModel, dict(fine_tune_steps=0, lora_r=0, batch_size=1, max_length=1, val_fraction=0.5)),
    (ICLConfidence, dict(k=1)),
    (Teacher, dict(model=NO_MODEL, batch_size=1, max_new_tokens=1, shard_size=1)),
    (Selection, dict(mode="top_n", n=1)),
    (Selection, dict(mode="fraction", fraction=1.0)),
    (Selection, dict(mode="threshold", threshold=0.0)),
    (Selection, dict(mode="threshold", threshold=1.0)),
    (Chess, dict(path="unused", min_ply=0, max_cp_loss=0, engine_depth=1, engine_time=1e-3, max_examples=1)),
    (MultipleChoice, dict(**MMLU, max_examples=1)),
    (MathReasoning, dict(**MATH, max_examples=1)),
]

STUDENT_BOUNDARIES = [
    (LoRASFTStudent, dict(lora_r=1, lora_alpha=1e-3, lora_dropout=0.0, weight_decay=0.0, warmup_ratio=0.0,
                          max_new_tokens=1)),
    (GRPOStudent, dict(lora_r=1, num_generations=2, weight_decay=0.0, beta=0.0, num_iterations=1, accumulate=1,
                       max_grad_norm=None, max_new_tokens=1)),
]


@pytest.mark.parametrize("cls,kwargs,expected", BAD, ids=lambda p: p.__name__ if isinstance(p, type) else None)
def test_out_of_range_argument_is_one_clear_line(cls, kwargs, expected):
    name = next(k for k in kwargs if k not in ("model", "mode", "path", *MMLU, *MATH))
    with pytest.raises(W2SError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert expected in message
    assert f".{name} must be " in message and "\n" not in message


@pytest.mark.parametrize("cls,kwargs", BOUNDARIES, ids=lambda p: p.__name__ if isinstance(p, type) else None)
def test_boundary_values_pass(cls, kwargs):
    cls(**kwargs)


@pytest.mark.parametrize("cls,kwargs", STUDENT_BOUNDARIES, ids=lambda p: p.__name__ if isinstance(p, type) else None)
def test_student_boundary_values_pass_the_check(cls, kwargs):
    """In range, the student goes on to look for its model (and finds none)."""
    with pytest.raises(W2SError, match="model path 'no/such/model' does not exist"):
        cls(model=NO_MODEL, **kwargs)


@pytest.mark.parametrize("rule,good,bad,words", [
    (">= 1", 1.0, 0.5, "≥ 1"),
    ("int >= 2", 2, 2.0, "an integer ≥ 2"),
    ("[0, 1]", 1, "0.5", "in [0, 1]"),
    ("(0, 1)", 0.5, float("nan"), "in (0, 1)"),
])
def test_check_ranges_rules(rule, good, bad, words):
    check_ranges("Thing", x=(good, rule), y=(None, rule))
    with pytest.raises(W2SError, match=re.escape(f"Thing.x must be {words} (got {bad!r})")):
        check_ranges("Thing", x=(bad, rule))
    with pytest.raises(ValueError, match="unknown range rule"):
        check_ranges("Thing", x=(good, "~ 1"))


def test_range_error_comes_first_on_the_command_line(tmp_path, monkeypatch):
    """The bad value is named before anything is built: no toy world, no teacher pass, no run directory."""
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    proc = run_cli("fit", "--config", str(ROOT / "configs" / "toy.yaml"), "--trust.init_args.dropout", "1.0",
                   "--data.teacher.model", str(tmp_path / "never"), cwd=tmp_path / "run")
    assert proc.returncode != 0
    assert "NeuralTrustFunction.dropout must be in [0, 1) (got 1.0)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists() and not list((tmp_path / "run").iterdir())
