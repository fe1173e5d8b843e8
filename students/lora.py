"""The students' shared start: a causal LM with a trainable LoRA adapter on frozen weights, its checkpoints and
its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import lightning as L
import torch
from peft import LoraConfig, get_peft_model

from w2s.models import load_causal_lm


def lora_model(model: str, lora_r: int, lora_alpha: int, target_modules: list[str] | str, dtype: str,
               lora_dropout: float = 0.0, trust_remote_code: bool = False, gradient_checkpointing: bool = False):
    """``model`` loaded and wrapped with a LoRA adapter, in training mode (``from_pretrained`` returns eval mode,
    which would switch off ``lora_dropout``)."""
    base = load_causal_lm(model, dtype, trust_remote_code)
    if gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=target_modules,
                        task_type="CAUSAL_LM")
    peft_model = get_peft_model(base, config)
    peft_model.train()
    return peft_model


class LoRAStudent(L.LightningModule):
    """What every student shares: a LoRA policy (``self.model``) and its tokenizer, small checkpoints that hold
    the adapter only, and accuracy on the target test split, logged by validation and test.

    Accuracy is the option with the highest answer-token logit for lettered multiple-choice batches
    (``option_ids``), the most likely option text for likelihood batches (``options``), and for free-form batches
    (math, chess moves) the task's ``judge`` of a greedy generation of up to ``max_new_tokens`` tokens in its
    example's context. When the split mixes benchmarks, each one's accuracy is logged too.

    Attributes:
        train_batch: how this student's training rows become a batch (``w2s.batching``): ``(rows, pad) -> batch``.
        trains_on_options: whether its training rows carry every option's completion besides the weak label's
            (``continuations``, ``chars``, ``weak``), as a loss over the options needs.
        gradient_checkpointing: whether the model recomputes activations in the backward pass (which turns its
            key/value cache off in training).
    """

    max_new_tokens: int = 256
    gradient_checkpointing: bool = False
    train_batch: Callable[[list[dict], int], dict]
    trains_on_options: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.strict_loading = False  # checkpoints hold the trainable (LoRA) weights only

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep checkpoints small (the frozen base model is reloaded from its own files) and exactly
        resumable (the RNG state travels with them, for dropout and sampling)."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def save_adapter(self, directory: str | Path) -> None:
        """Save only the LoRA adapter (``save_pretrained`` of the peft model)."""
        self.model.save_pretrained(directory)

    def _accuracy(self, batch: dict) -> torch.Tensor:
        if "options" in batch:
            return self._likelihood_accuracy(batch)
        if "option_ids" not in batch:
            return self._generated_accuracy(batch)
        from w2s.scoring import logits_at

        last = logits_at(self.model, batch["input_ids"], batch["attention_mask"], batch["last"])  # [B, V]
        option_logits = last.gather(-1, batch["option_ids"].clamp(min=0))
        option_logits = option_logits.masked_fill(batch["option_ids"] < 0, float("-inf"))
        return (option_logits.argmax(-1) == batch["gold"]).float()

    def option_logprobs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The student's summed log-probability of every option's completion in a ``choice_batch`` as a
        ``[questions, K]`` table (``-inf`` where a question offers fewer options), the options' token counts, and
        the scores it answers by (per character where the task normalises by length).

        Each prompt runs once and its options continue from its key/value cache, gradients included; with
        gradient checkpointing in training (which turns the cache off) every prompt + option is a full sequence."""
        from w2s.scoring import score_options

        shared = not (torch.is_grad_enabled() and self.gradient_checkpointing)
        scores = score_options(self.model, batch["prompts"], batch["options"], batch["question"].tolist(),
                               self.tokenizer.pad_token_id, shared=shared)  # one score per (question, option)
        shape, at = (len(batch["group"]), int(batch["option"].max()) + 1), (batch["question"], batch["option"])
        table = scores.total.new_full(shape, float("-inf")).index_put(at, scores.total)
        tokens = scores.total.new_zeros(shape).index_put(at, scores.tokens.to(scores.total.dtype))
        decision = table
        if self.trainer.datamodule.student_task.normalize == "chars":
            decision = table / scores.total.new_ones(shape).index_put(at, batch["chars"].clamp(min=1))
        return table, tokens, decision

    def _likelihood_accuracy(self, batch: dict) -> torch.Tensor:
        """The most likely option (by the task's ``normalize``) against the gold one, per question."""
        return (self.option_logprobs(batch)[2].argmax(1) == batch["gold"]).float()

    def _generated_accuracy(self, batch: dict) -> torch.Tensor:
        task = self.trainer.datamodule.student_task
        sequences = self.model.generate(input_ids=batch["prompt_ids"], attention_mask=batch["prompt_mask"],
                                        do_sample=False, max_new_tokens=self.max_new_tokens,
                                        pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(sequences[:, batch["prompt_ids"].shape[1]:], skip_special_tokens=True)
        return torch.tensor([float(task.judge(t, ex, gold)) for t, ex, gold in zip(texts, batch["examples"],
                                                                                   batch["gold"])],
                            device=self.device)

    def _log_accuracy(self, name: str, batch: dict, **kwargs) -> torch.Tensor:
        """Accuracy over the batch, and per benchmark when the evaluation split mixes several; every rank logs
        every benchmark at every step (weight 0 when absent), so that the epoch-end sync lines up under DDP.
        Returns each example's correctness."""
        correct = self._accuracy(batch)
        self.log(name, correct.mean(), batch_size=len(correct), sync_dist=True, **kwargs)  # the mean over ranks
        groups = self.trainer.datamodule.eval_groups
        if len(groups) > 1:
            for g, group in enumerate(groups):
                mask = batch["group"] == g
                value = correct[mask].mean() if mask.any() else correct.new_zeros(())
                self.log(f"{name}/{group}", value, batch_size=int(mask.sum()), on_step=False, on_epoch=True,
                         sync_dist=True)
        return correct

    def validation_step(self, batch: dict, _) -> None:
        self._log_accuracy("student/accuracy", batch, prog_bar=True)

    def on_test_epoch_start(self) -> None:
        self.test_correct: list[torch.Tensor] = []

    def test_step(self, batch: dict, _) -> None:
        """Accuracy, and each example's correctness kept in evaluation order (``test_correct``), so that tables can
        compare runs example by example (a paired bootstrap) without rerunning them."""
        self.test_correct.append(self._log_accuracy("student/test_accuracy", batch).detach().cpu())
