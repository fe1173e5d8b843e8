"""Scoring a question's options from its prompt's key/value cache gives what full sequences give, on every
decoder architecture the project runs (Llama = SmolLM2, Gemma 3 with its sliding-window layers, Qwen3, OLMo2)."""

import pytest
import torch

from w2s.scoring import score_options


def tiny_model(arch: str):
    from transformers import (AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, Olmo2Config, Qwen3Config)

    shape = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0)
    config = {"llama": lambda: LlamaConfig(**shape),
              "gemma3": lambda: Gemma3TextConfig(head_dim=8, sliding_window=4, final_logit_softcapping=30.0,
                                                 **shape),
              "qwen3": lambda: Qwen3Config(head_dim=8, **shape),
              "olmo2": lambda: Olmo2Config(**shape)}[arch]()
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def questions() -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Three prompts of different lengths (left padding is exercised) with 4, 3 and 5 options of 1-4 tokens."""
    generator = torch.Generator().manual_seed(1)

    def tokens(n: int) -> list[int]:
        return torch.randint(1, 97, (n,), generator=generator).tolist()

    prompts = [tokens(n) for n in (7, 12, 3)]
    options, question = [], []
    for q, k in enumerate((4, 3, 5)):
        for _ in range(k):
            options.append(tokens(int(torch.randint(1, 5, (1,), generator=generator))))
            question.append(q)
    return prompts, options, question


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen3", "olmo2"])
def test_shared_prompt_scoring_equals_full_sequences(arch):
    model = tiny_model(arch)
    prompts, options, question = questions()
    with torch.no_grad():
        full = score_options(model, prompts, options, question, pad=0, hidden_states=True, shared=False)
        shared = score_options(model, prompts, options, question, pad=0, hidden_states=True, shared=True)
    torch.testing.assert_close(shared.total, full.total, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(shared.entropy, full.entropy, atol=1e-4, rtol=1e-4)
    assert shared.tokens.tolist() == full.tokens.tolist() == [len(o) for o in options]
    seqs = torch.arange(len(options))
    ends = torch.tensor([len(prompts[q]) + len(o) for q, o in zip(question, options)])
    for layer in (0, 1, -1):
        for positions in (ends - 1, ends - 2, torch.zeros_like(ends)):  # an option's last token, the one before it
            torch.testing.assert_close(shared.state(layer, seqs, positions), full.state(layer, seqs, positions),
                                       atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(shared.prompt_last(layer, seqs), full.prompt_last(layer, seqs), atol=1e-4,
                                   rtol=1e-4)
        torch.testing.assert_close(shared.prompt_mean(layer, seqs), full.prompt_mean(layer, seqs), atol=1e-4,
                                   rtol=1e-4)


def test_full_sequences_score_what_the_models_own_forward_scores():
    """The reference itself: one sequence's summed option log-probability from the model's logits."""
    model = tiny_model("llama")
    prompt, option = [5, 9, 13, 2], [7, 8]
    with torch.no_grad():
        logits = model(torch.tensor([prompt + option])).logits[0].log_softmax(-1)
        scored = score_options(model, [prompt], [option], [0], pad=0, shared=True)
    expected = logits[3, 7] + logits[4, 8]
    assert scored.total.item() == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_shared_prompt_gradients_equal_full_sequences(arch):
    """The student's loss over every option (logconf) backpropagates through the prompt's key/value cache: the
    LoRA weights get the gradients that full sequences give them."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model(arch), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    for name, p in model.named_parameters():  # LoRA's B starts at zero, which would hide A's gradient
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    prompts, options, question = questions()
    grads = []
    for shared in (False, True):
        model.zero_grad()
        score_options(model, prompts, options, question, pad=0, shared=shared).total.sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name, full in grads[0].items():
        assert full.abs().sum() > 0, name
        torch.testing.assert_close(grads[1][name], full, atol=1e-4, rtol=1e-3, msg=name)
