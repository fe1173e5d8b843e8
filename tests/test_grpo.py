"""GRPO: the objective against an independent per-token computation, and one update on a real tiny model."""

from __future__ import annotations

import math

import pytest
import torch

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
    batch = {"prompt_ids": enc.input_ids, "prompt_mask": enc.attention_mask, "weak_labels": ["a"] * 4}
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
