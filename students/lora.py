"""The students' shared start: a causal LM with a trainable LoRA adapter on frozen weights."""

from __future__ import annotations

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
