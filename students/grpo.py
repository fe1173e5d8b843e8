"""``GRPOStudent``: the strong student trained with GRPO; the reward is agreement with the trusted weak label.

The pieces are plain functions (completion mask, group-relative advantages, completion log-probs, the clipped
objective with an optional KL term) so that each is tested against an independent computation; the
LightningModule only wires them into rollouts and updates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from students.lora import LoRAStudent, lora_model
from w2s.batching import prompt_batch
from w2s.errors import W2SError, check_ranges
from w2s.models import load_tokenizer
from w2s.scoring import position_ids


def completion_mask(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 for completion tokens up to and including the first EOS, 0 after it (padding the sampler added)."""
    is_eos = completion_ids == eos_token_id
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0  # strictly after the first EOS
    return (~after_eos).long()


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True) -> torch.Tensor:
    """Group-relative advantages: each completion's reward minus its group's mean (the G completions of one
    prompt are consecutive), divided by the group's std + 1e-4 when ``scale``."""
    grouped = rewards.view(-1, group_size)
    advantages = grouped - grouped.mean(1, keepdim=True)
    if scale:
        advantages = advantages / (grouped.std(1, keepdim=True) + 1e-4)
    return advantages.flatten()


def completion_logprobs(model, sequences: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int,
                        temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs ``[N, T]`` of the completion tokens ``sequences[:, prompt_len:]`` under the distribution they
    were sampled from (logits divided by ``temperature``), and that distribution's entropy per token. Position
    ids follow the attention mask, as in generation with left padding."""
    logits = model(input_ids=sequences, attention_mask=attention_mask, position_ids=position_ids(attention_mask)).logits
    logits = logits[:, prompt_len - 1 : -1].float() / temperature
    logp = logits.log_softmax(-1)
    chosen = logp.gather(-1, sequences[:, prompt_len:, None]).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return chosen, entropy


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              epsilon: float = 0.2, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped GRPO objective, averaged over every completion token of the batch (token-level averaging):

        per token: -min(r·A, clip(r, 1-ε, 1+ε)·A) + β·KL,  r = exp(logp - old_logp),
        KL = exp(ref - logp) - (ref - logp) - 1   (the k3 estimator of KL(π ‖ π_ref))

    Returns the loss and statistics: the clip fraction (tokens whose clipped term is the active one) and the mean
    KL (0 without a reference)."""
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    a = advantages[:, None]
    unclipped, clipped = ratio * a, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * a
    per_token = -torch.minimum(unclipped, clipped)
    kl = torch.zeros_like(logps)
    if beta:
        if ref_logps is None:
            raise W2SError("GRPO with beta > 0 needs reference log-probs")
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
    tokens = mask.sum().clamp(min=1)
    loss = (per_token * mask).sum() / tokens
    is_clipped = ((ratio < 1 - epsilon) & (a < 0)) | ((ratio > 1 + epsilon) & (a > 0))
    stats = {"clip_fraction": (is_clipped.to(mask.dtype) * mask).sum() / tokens,
             "kl": (kl.detach() * mask).sum() / tokens}
    return loss, stats


class GRPOStudent(LoRAStudent):
    """A causal LM with a LoRA adapter trained by GRPO on prompts whose trusted weak label is the target.

    Each training batch (``w2s.batching.prompt_batch``) holds left-padded ``prompt_ids`` / ``prompt_mask``, the
    trusted ``labels`` (strings) and their ``examples``. For every prompt, ``num_generations`` completions are
    sampled at ``temperature``; a completion's reward is ``reward_fn(completion, label)``, by default the task's
    ``reward`` (its answer is right for the label in its example's context: ``task.judge``) plus
    ``format_reward`` when it parses at all. The rollout is used for ``num_iterations`` updates (the clipped ratio
    matters from the second on); ``beta > 0`` adds the KL penalty to the reference policy, which is the same model
    with the adapter disabled (no second copy). Gradients accumulate over ``accumulate`` batches per optimizer step.

    Args:
        model: ``toy:<seed>/student``, a ``save_pretrained`` directory or a hub id.
        lora_r, lora_alpha, target_modules: the LoRA adapter.
        lr, weight_decay: AdamW.
        num_generations: completions per prompt (G ≥ 2).
        temperature: sampling temperature (log-probs are computed at it too).
        max_new_tokens: completion length limit (rollouts and evaluation).
        epsilon: clipping range of the importance ratio.
        beta: KL coefficient (0: no reference pass).
        num_iterations: updates per rollout batch.
        scale_rewards: divide advantages by the group's reward std.
        format_reward: reward added when a completion contains a parseable answer.
        max_grad_norm: clip the gradient norm before each optimizer step (``None``: no clipping).
        accumulate: batches per optimizer step.
        dtype: model dtype.
        trust_remote_code: allow code shipped with the checkpoint to run (off by default).
        gradient_checkpointing: recompute activations in the backward pass (less memory, slower).
    """

    train_batch = staticmethod(prompt_batch)

    def __init__(
        self,
        model: str,
        lora_r: int = 8,
        lora_alpha: int = 16,
        target_modules: list[str] | str = "all-linear",
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        num_generations: int = 8,
        temperature: float = 1.0,
        max_new_tokens: int = 256,
        epsilon: float = 0.2,
        beta: float = 0.0,
        num_iterations: int = 1,
        scale_rewards: bool = True,
        format_reward: float = 0.0,
        max_grad_norm: float | None = 1.0,
        accumulate: int = 1,
        dtype: str = "float32",
        trust_remote_code: bool = False,
        gradient_checkpointing: bool = False,
    ) -> None:
        check_ranges("GRPOStudent", lora_r=(lora_r, "int >= 1"), lora_alpha=(lora_alpha, "> 0"), lr=(lr, "> 0"),
                     weight_decay=(weight_decay, ">= 0"), num_generations=(num_generations, "int >= 2"),
                     temperature=(temperature, "> 0"), max_new_tokens=(max_new_tokens, "int >= 1"),
                     epsilon=(epsilon, "> 0"), beta=(beta, ">= 0"), num_iterations=(num_iterations, "int >= 1"),
                     max_grad_norm=(max_grad_norm, "> 0"), accumulate=(accumulate, "int >= 1"))
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.model = lora_model(model, lora_r, lora_alpha, target_modules, dtype,
                                trust_remote_code=trust_remote_code, gradient_checkpointing=gradient_checkpointing)
        self.tokenizer = load_tokenizer(model, trust_remote_code)
        self.max_new_tokens = max_new_tokens
        self.gradient_checkpointing = gradient_checkpointing
        self.reward_fn: Callable[[str, str], float] | None = None
        self._calls = 0

    # ---- rollouts -------------------------------------------------------------------------------------------
    def _reward(self, completion: str, label: str, example: dict) -> tuple[float, float]:
        """The completion's reward, and whether its answer agrees with the label (``grpo/accuracy``); both read
        the completion in its example's context (a chess move in SAN needs the position)."""
        if self.reward_fn is not None:
            reward = float(self.reward_fn(completion, label))
            return reward, reward
        task = self.trainer.datamodule.student_task
        formatted = self.hparams.format_reward if task.parse(completion, example) is not None else 0.0
        agree = task.reward(completion, label, example)
        return agree + formatted, agree

    @torch.no_grad()
    def rollout(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, labels: list[str],
                examples: list[dict]) -> dict:
        """Sample G completions per (left-padded) prompt; their tokens, masks, rewards, advantages and old/ref
        log-probs."""
        g, hp = self.hparams.num_generations, self.hparams
        training = self.model.training
        self.model.eval()  # no dropout while sampling
        sequences = self.model.generate(
            input_ids=prompt_ids.repeat_interleave(g, 0), attention_mask=prompt_mask.repeat_interleave(g, 0),
            do_sample=True, temperature=hp.temperature, top_k=0, top_p=1.0, max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id)
        self.model.train(training)
        prompt_len = prompt_ids.shape[1]
        completions = sequences[:, prompt_len:]
        mask = completion_mask(completions, self.tokenizer.eos_token_id)
        attention = torch.cat([prompt_mask.repeat_interleave(g, 0), mask], 1)
        texts = self.tokenizer.batch_decode(completions * mask + self.tokenizer.pad_token_id * (1 - mask),
                                            skip_special_tokens=True)
        scored = torch.tensor([self._reward(t, labels[i // g], examples[i // g]) for i, t in enumerate(texts)],
                              device=self.device)
        rewards = scored[:, 0]
        old, _ = completion_logprobs(self.model, sequences, attention, prompt_len, hp.temperature)
        ref = None
        if hp.beta:
            with self.model.disable_adapter():
                ref, _ = completion_logprobs(self.model, sequences, attention, prompt_len, hp.temperature)
        return {"sequences": sequences, "attention": attention, "mask": mask, "prompt_len": prompt_len,
                "rewards": rewards, "agree": scored[:, 1], "old": old, "ref": ref,
                "advantages": group_advantages(rewards, g, hp.scale_rewards)}

    # ---- updates --------------------------------------------------------------------------------------------
    def training_step(self, batch: dict, _) -> None:
        hp = self.hparams
        data = self.rollout(batch["prompt_ids"], batch["prompt_mask"], batch["labels"], batch["examples"])
        opt = self.optimizers()
        for _ in range(hp.num_iterations):
            logps, entropy = completion_logprobs(self.model, data["sequences"], data["attention"],
                                                 data["prompt_len"], hp.temperature)
            loss, stats = grpo_loss(logps, data["old"], data["advantages"], data["mask"], hp.epsilon, hp.beta,
                                    data["ref"])
            self.manual_backward(loss / hp.accumulate)
            self._calls += 1
            if self._calls % hp.accumulate == 0:
                if hp.max_grad_norm is not None:
                    self.clip_gradients(opt, gradient_clip_val=hp.max_grad_norm, gradient_clip_algorithm="norm")
                opt.step()
                opt.zero_grad()
        n, mask = len(batch["labels"]), data["mask"].float()
        self.log_dict({
            "grpo/loss": loss.detach(), "grpo/reward_mean": data["rewards"].mean(),
            "grpo/reward_std": data["rewards"].std(), "grpo/accuracy": data["agree"].mean(),
            "grpo/kl": stats["kl"],
            "grpo/clip_fraction": stats["clip_fraction"], "grpo/completion_length": mask.sum(1).mean(),
            "grpo/entropy": (entropy.detach() * mask).sum() / mask.sum().clamp(min=1),
        }, batch_size=n, prog_bar=False)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
