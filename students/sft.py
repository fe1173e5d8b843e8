"""``LoRASFTStudent``: the strong student fine-tuned with LoRA on the trusted weak labels (answer tokens only)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from students.lora import lora_model


class LoRASFTStudent(L.LightningModule):
    """A causal LM with a LoRA adapter, trained on (prompt, weak label) with loss on the answer tokens only.

    Validation and test report multiple-choice accuracy on the target test split: the option whose answer
    token has the highest logit right after the prompt (also per benchmark when the split mixes several).

    Args:
        model: ``toy:<seed>/student``, a local ``save_pretrained`` directory, or a hub id.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (scale = alpha / r).
        lora_dropout: dropout on the LoRA input.
        target_modules: modules that get an adapter (``all-linear`` = every linear layer but the head).
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the optimizer steps with linear warmup (then linear decay to 0).
        dtype: model dtype (``bfloat16`` with ``trainer.precision: bf16-mixed`` on GPUs; the LoRA weights stay
            float32).
        trust_remote_code: allow code shipped with the checkpoint to run (off by default).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30 % slower), for
            large students such as Qwen3-14B.
    """

    def __init__(
        self,
        model: str,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.0,
        target_modules: list[str] | str = "all-linear",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.1,
        dtype: str = "float32",
        trust_remote_code: bool = False,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = lora_model(model, lora_r, lora_alpha, target_modules, dtype, lora_dropout, trust_remote_code,
                                gradient_checkpointing)
        self.strict_loading = False  # checkpoints hold the trainable (LoRA) weights only

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep checkpoints small (the frozen base model is reloaded from its own files) and exactly
        resumable (the RNG state travels with them, for dropout)."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def training_step(self, batch: dict, _) -> torch.Tensor:
        loss = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          labels=batch["labels"]).loss
        self.log("student/train_loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def _accuracy(self, batch: dict) -> torch.Tensor:
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        last = logits[torch.arange(len(logits)), batch["last"]]
        option_logits = last.gather(-1, batch["option_ids"].clamp(min=0))
        option_logits = option_logits.masked_fill(batch["option_ids"] < 0, float("-inf"))
        return (option_logits.argmax(-1) == batch["gold"]).float()

    def _log_accuracy(self, name: str, batch: dict, **kwargs) -> None:
        """Accuracy over the batch, and per benchmark when the evaluation split mixes several; every rank logs
        every benchmark at every step (weight 0 when absent), so that the epoch-end sync lines up under DDP."""
        correct = self._accuracy(batch)
        self.log(name, correct.mean(), batch_size=len(correct), sync_dist=True, **kwargs)  # the mean over ranks
        groups = getattr(self.trainer.datamodule, "eval_groups", [])
        if len(groups) > 1:
            for g, group in enumerate(groups):
                mask = batch["group"] == g
                value = correct[mask].mean() if mask.any() else correct.new_zeros(())
                self.log(f"{name}/{group}", value, batch_size=int(mask.sum()), on_step=False, on_epoch=True,
                         sync_dist=True)

    def validation_step(self, batch: dict, _) -> None:
        self._log_accuracy("student/accuracy", batch, prog_bar=True)

    def test_step(self, batch: dict, _) -> None:
        self._log_accuracy("student/test_accuracy", batch)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(self.hparams.warmup_ratio * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def save_adapter(self, directory: str | Path) -> None:
        """Save only the LoRA adapter (``save_pretrained`` of the peft model)."""
        self.model.save_pretrained(directory)
