"""``LoRASFTStudent``: the strong student fine-tuned with LoRA on the trusted weak labels (answer tokens only)."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch

from students.lora import LoRAStudent, lora_model
from students.losses import aux_weight, logconf_loss
from w2s.batching import choice_batch, sft_batch
from w2s.errors import W2SError, check_ranges
from w2s.models import load_tokenizer


class LoRASFTStudent(LoRAStudent):
    """A causal LM with a LoRA adapter, trained on (prompt, weak label) with loss on the answer tokens only.

    Validation and test report accuracy on the target test split (see ``LoRAStudent``).

    Args:
        model: ``toy:<seed>/student``, a local ``save_pretrained`` directory, or a hub id.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (scale = alpha / r).
        lora_dropout: dropout on the LoRA input.
        target_modules: modules that get an adapter (``all-linear`` = every linear layer but the head).
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the optimizer steps with linear warmup (then linear decay to 0).
        dtype: model dtype (``bfloat16`` with ``trainer.precision: bf16-mixed`` on GPUs; ``fast``: bfloat16 where
            the hardware has it, else float32); the LoRA weights stay float32.
        trust_remote_code: allow code shipped with the checkpoint to run (off by default).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30 % slower), for
            large students such as Qwen3-14B.
        max_new_tokens: generation length when evaluating a free-form (math) task.
        loss: ``xent``, cross-entropy on the weak label's answer tokens; ``logconf``, Burns et al.'s auxiliary
            confidence loss (``students.losses.logconf_loss``): the target mixes the weak label with the student's
            own hardened prediction among the options (multiple-choice tasks only; every option is scored: the
            prompt once, its options from the prompt's key/value cache).
        aux_coef: ``logconf``: the weight of the student's own prediction after the warm-up, in [0, 1] (Burns
            et al.: 0.5).
        aux_warmup: ``logconf``: the share of the optimizer steps over which the weight ramps from 0 to
            ``aux_coef``, in [0, 1) (Burns et al.: 0.1).
    """

    train_batch = staticmethod(sft_batch)  # loss logconf: every option of a question (``choice_batch``)

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
        max_new_tokens: int = 256,
        loss: Literal["xent", "logconf"] = "xent",
        aux_coef: float = 0.5,
        aux_warmup: float = 0.1,
    ) -> None:
        check_ranges("LoRASFTStudent", lora_r=(lora_r, "int >= 1"), lora_alpha=(lora_alpha, "> 0"),
                     lora_dropout=(lora_dropout, "[0, 1)"), lr=(lr, "> 0"), weight_decay=(weight_decay, ">= 0"),
                     warmup_ratio=(warmup_ratio, "[0, 1)"), max_new_tokens=(max_new_tokens, "int >= 1"),
                     aux_coef=(aux_coef, "[0, 1]"), aux_warmup=(aux_warmup, "[0, 1)"))
        if loss not in ("xent", "logconf"):
            raise W2SError(f"LoRASFTStudent.loss must be xent or logconf (got {loss!r})")
        super().__init__()
        self.trains_on_options = loss == "logconf"
        if self.trains_on_options:
            self.train_batch = partial(choice_batch, answer="weak")
        self.save_hyperparameters()
        self.model = lora_model(model, lora_r, lora_alpha, target_modules, dtype, lora_dropout, trust_remote_code,
                                gradient_checkpointing)
        self.tokenizer = load_tokenizer(model, trust_remote_code)
        self.max_new_tokens = max_new_tokens
        self.gradient_checkpointing = gradient_checkpointing

    def training_step(self, batch: dict, _) -> torch.Tensor:
        """Cross-entropy of the answer tokens (the output layer runs at their positions only), or the auxiliary
        confidence loss over every option's completion."""
        from w2s.scoring import score_continuations

        if self.trains_on_options:
            logprobs, tokens, decision = self.option_logprobs(batch)  # [B, K] each
            weight = aux_weight(self.global_step, int(self.trainer.estimated_stepping_batches),
                                self.hparams.aux_coef, self.hparams.aux_warmup)
            loss = logconf_loss(logprobs, tokens, batch["weak"], weight, decision)
            self.log("student/aux_weight", weight, batch_size=len(batch["weak"]))
            size = len(batch["weak"])
        else:
            scored = batch["labels"] != -100
            logprobs = score_continuations(self.model, batch["input_ids"], batch["attention_mask"], scored).logprobs
            loss = -logprobs.sum() / scored[:, 1:].sum().clamp(min=1)
            size = len(batch["input_ids"])
        self.log("student/train_loss", loss, prog_bar=True, batch_size=size)
        return loss

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(self.hparams.warmup_ratio * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
