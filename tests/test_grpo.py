"""GRPO: the objective against an independent per-token computation, and one update on a real tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from students.grpo import GRPOStudent, completion_mask, grpo_loss, group_advantages


def reference_loss(logps, old, ref, adv, mask, eps, beta):
    """The GRPO objective written out token by token with Python floats (no tensor ops shared with the code)."""
    total, count = 0.0, 0
    for i in range(len(logps)):
        for t in range(len(logps[i])):
            if not mask[i][t]:
                continue
            ratio = math.exp(logps[i][t] - old[i][t])
            clipped = min(max(ratio, 1 - eps), 1 + eps)
            term = -min(ratio * adv[i], clipped * adv[i])
            if beta:
                d = ref[i][t] - logps[i][t]
                term += beta * (math.exp(d) - d - 1)
            total, count = total + term, count + 1
    return total / count


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_and_gradient_match_an_independent_computation(beta):
    g = torch.Generator().manual_seed(0)
    n, t, eps = 6, 5, 0.2
    logps = (torch.randn(n, t, generator=g) * 0.5 - 1).double().requires_grad_()
    old = (logps.detach() + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.4)  # some ratios outside 1 ± ε
    ref = logps.detach() + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.3
    adv = torch.randn(n, generator=g, dtype=torch.float64)
    mask = (torch.rand(n, t, generator=g) > 0.3).long()
    mask[0] = 0  # a completion with no token to learn from
    loss, stats = grpo_loss(logps, old, adv, mask, eps, beta, ref)
    expected = reference_loss(logps.tolist(), old.tolist(), ref.tolist(), adv.tolist(), mask.tolist(), eps, beta)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    loss.backward()
    # the reference's gradient by central differences, token by token
    h = 1e-6
    for i in range(n):
        for k in range(t):
            up, down = logps.detach().clone(), logps.detach().clone()
            up[i, k] += h
            down[i, k] -= h
            numeric = (reference_loss(up.tolist(), old.tolist(), ref.tolist(), adv.tolist(), mask.tolist(), eps, beta)
                       - reference_loss(down.tolist(), old.tolist(), ref.tolist(), adv.tolist(), mask.tolist(), eps,
                                        beta)) / (2 * h)
            assert logps.grad[i, k].item() == pytest.approx(numeric, abs=1e-6)
    assert (logps.grad[0] == 0).all() and (logps.grad[mask == 0] == 0).all()
    ratio = torch.exp(logps.detach() - old)
    active = ((ratio < 1 - eps) & (adv[:, None] < 0)) | ((ratio > 1 + eps) & (adv[:, None] > 0))
    assert stats["clip_fraction"].item() == pytest.approx((active & (mask == 1)).sum().item() / mask.sum().item())
    assert 0 < stats["clip_fraction"] < 1
    assert (stats["kl"] > 0) == (beta > 0)


def test_completion_mask_stops_after_the_first_eos():
    eos = 9
    ids = torch.tensor([[1, 2, eos, 9, 9], [1, 2, 3, 4, 5], [eos, 3, eos, 1, 1]])
    assert completion_mask(ids, eos).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_group_advantages_are_relative_to_each_prompts_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    centred = group_advantages(rewards, 4, scale=False)
    assert centred.tolist() == [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    scaled = group_advantages(rewards, 4)
    assert scaled[:4].tolist() == pytest.approx((centred[:4] / (rewards[:4].std() + 1e-4)).tolist())
    assert scaled[4:].abs().max() == 0  # a group that all agrees teaches nothing


def test_one_grpo_step_changes_every_lora_weight_and_no_frozen_one(tiny_world):
    """One training step on one rollout batch reused for two updates (the clipped-ratio path): LoRA's B starts at
    zero, so A's gradient is zero on the first update and moves on the second."""
    import lightning as L
    from torch.utils.data import DataLoader

    L.seed_everything(0, verbose=False)
    student = GRPOStudent(str(tiny_world / "student"), num_generations=4, max_new_tokens=4, lr=1e-2,
                          num_iterations=2, beta=0.04)
    student.reward_fn = lambda completion, label: float(len(completion) % 2)  # varies within groups
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    prompts = ["what is the capital of", "who wrote the", "the colour of", "the largest city in"]
    enc = student.tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    batch = {"prompt_ids": enc.input_ids, "prompt_mask": enc.attention_mask, "labels": ["a"] * 4,
             "examples": [{}] * 4}
    batches = DataLoader([batch], batch_size=None)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(student, batches)
    assert trainer.global_step == 2  # two optimizer updates from one rollout batch
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    for name, param in student.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == (name in trainable), name


def test_toy_math_tokenizer_decodes_exactly():
    from w2s.toy.arithmetic import ArithmeticSpec, SolutionSampler, build_tokenizer

    tokenizer, sampler = build_tokenizer(), SolutionSampler(ArithmeticSpec(), 0.3, 0.5, seed=0)
    for _ in range(20):
        text = sampler.sample()
        ids = tokenizer(text).input_ids
        assert tokenizer.unk_token_id not in ids and tokenizer.decode(ids) == text


def test_toy_math_world_has_the_misconception_it_claims():
    """Products read as sums: the teacher's worked solutions state them so, the gold answers do not."""
    from w2s.toy.arithmetic import apply, solve

    assert apply("*", 3, 4) == 2 and apply("*", 3, 4, misconception=True) == 7 and apply("-", 3, 4) == 9
    right, gold = solve(3, [("*", 4), ("+", 1)])
    wrong, weak = solve(3, [("*", 4), ("+", 1)], misconception=1.0)
    assert (gold, weak) == (3, 8) and right.endswith("\\boxed{3}") and "3 * 4 = 7" in wrong


def grpo_args(world: Path, *extra: str) -> list[str]:
    """The toy math config on the tiny math world, through the generic MathReasoning task (local files)."""
    data = world / "data"
    return ["fit", "--config", str(ROOT / "configs" / "toy_math.yaml"),
            "--data.task", "w2s.tasks.MathReasoning", "--data.task.source", f"{data}:source",
            "--data.task.target", f"{data}:target", "--data.task.test", f"{data}:test",
            "--data.task.instruction", "", "--data.teacher.model", str(world / "teacher"),
            "--model.model", str(world / "student"), "--trust.init_args.max_epochs", "3",
            "--trainer.max_steps", "2", "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
            "--data.batch_size", "4",
            "--model.max_new_tokens", "16", "--data.teacher.max_new_tokens", "40", *extra]


def test_grpo_student_runs_the_whole_protocol_from_the_cli(tiny_math_world, tmp_path):
    """fit with the GRPO student: teacher pass with free-form answers, trust fit, selection, GRPO on the trusted
    weak labels, accuracy by greedy generation before and after, results.json and the adapter."""
    import json

    from conftest import run_cli

    result = run_cli(*grpo_args(tiny_math_world), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "runs" / "toy_math" / "version_0"
    results = json.loads((run / "results.json").read_text())
    assert results["selection"]["labels"] == "weak" and results["selection"]["n"] == round(0.4 * 24)
    assert results["selection"]["skipped_unparsed"] < results["selection"]["n"]  # GRPO had weak labels to learn
    for value in results["student"]["accuracy"].values():
        assert 0.0 <= value <= 1.0
    assert (run / "student_adapter" / "adapter_config.json").is_file()
    assert "class_path: students.GRPOStudent" in (run / "config.yaml").read_text()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert {"grpo/reward_mean", "grpo/clip_fraction", "grpo/completion_length", "student/accuracy"} <= set(tags)


def test_each_student_reads_its_own_batch_format(tiny_math_world):
    """What the data module serves: a GRPO student left-padded prompts with their trusted labels and examples, an
    SFT student prompt + answer with the loss on the answer only, evaluation prompts with gold answers."""
    from types import SimpleNamespace

    from students import GRPOStudent, LoRASFTStudent
    from w2s.batching import pad_batch
    from w2s.data import W2SDataModule
    from w2s.models import load_tokenizer
    from w2s.tasks import MathReasoning

    data = tiny_math_world / "data"
    task = MathReasoning(f"{data}:source", f"{data}:target", f"{data}:test", instruction="")
    tokenizer = load_tokenizer(str(tiny_math_world / "student"))
    examples = list(task.load()["test"])[:3]
    subset = SimpleNamespace(examples=examples, labels=["0", "1", "2"])
    batches = {}
    for student in (GRPOStudent, LoRASFTStudent):
        module = W2SDataModule(task, teacher=None).connect(SimpleNamespace(
            tokenizer=tokenizer, train_batch=student.train_batch, trains_on_options=student.trains_on_options), subset)
        module.setup("fit")
        batches[student] = next(iter(module.train_dataloader()))
    order = [examples.index(ex) for ex in batches[GRPOStudent]["examples"]]  # the loader shuffles
    grpo = batches[GRPOStudent]
    assert grpo["labels"] == [str(k) for k in order] and set(grpo) == {"prompt_ids", "prompt_mask", "labels",
                                                                       "examples"}
    assert (grpo["prompt_mask"][:, -1] == 1).all()  # left padding: every prompt ends at the last column
    assert tokenizer.batch_decode(grpo["prompt_ids"], skip_special_tokens=True) == [task.prompt(examples[k])
                                                                                    for k in order]
    sft = batches[LoRASFTStudent]
    assert set(sft) == {"input_ids", "attention_mask", "labels"}
    assert sorted((sft["labels"] != -100).sum(1).tolist()) == sorted(
        len(tokenizer(task.completion(str(k), examples[k]), add_special_tokens=False).input_ids) for k in range(3))
    evaluation = next(iter(module.val_dataloader()))
    assert evaluation["gold"] == [ex["answer"] for ex in evaluation["examples"]] and "option_ids" not in evaluation
    lengths = [len(row["prompt_ids"]) for row in module.evaluation_rows()]
    assert lengths == sorted(lengths)  # evaluated shortest first: batches of similar length pad less
    ids, mask = pad_batch([[1, 2], [3]], 0, left=True)
    assert ids.tolist() == [[1, 2], [0, 3]] and mask.tolist() == [[1, 1], [0, 1]]


def test_a_trusted_subset_without_parseable_weak_labels_is_refused(tiny_math_world, tmp_path):
    """Target solutions (3-5 steps) cut before their \\boxed{} answer leave GRPO nothing to reward (the one-step
    source solutions fit): one line, not a silent run that trains nothing."""
    from conftest import run_cli

    result = run_cli(*grpo_args(tiny_math_world, "--data.teacher.max_new_tokens", "12"), cwd=tmp_path)
    assert result.returncode == 2 and "could be parsed" in result.stderr.splitlines()[-1]
