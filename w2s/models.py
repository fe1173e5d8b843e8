"""Resolve a model name (a registered scheme such as ``toy:``, a local directory or a hub id) and load it with one
clear error on failure."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Callable

from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel,
                          PreTrainedTokenizerBase)

from w2s.errors import W2SError

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# name prefix -> "module:function" that maps such a name to a local directory (or None: not one of its names);
# imported only when a name with that prefix is resolved
RESOLVERS: dict[str, str] = {"toy:": "w2s.toy:resolve_model", "pip:": "w2s.pip_models:resolve_model"}


def register_resolver(prefix: str, target: str) -> None:
    """Resolve model names starting with ``prefix`` with ``target`` (``"module:function"``, name → directory)."""
    RESOLVERS[prefix] = target


def has_scheme(name: str) -> bool:
    """Whether ``name`` starts with a registered prefix (a model this library makes, never a hub id)."""
    return name.startswith(tuple(RESOLVERS))


def _resolver(prefix: str) -> Callable[[str], str | None]:
    module, _, function = RESOLVERS[prefix].partition(":")
    return getattr(importlib.import_module(module), function)


def resolve(name: str) -> str:
    """Map a registered name (``toy:[<world>-]<seed>/<role>``) to its directory; return other names unchanged.

    A name that is neither an existing directory nor shaped like a hub id (``org/name``) is a missing path.
    """
    for prefix in RESOLVERS:
        if name.startswith(prefix) and (path := _resolver(prefix)(name)) is not None:
            return path
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if not HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise W2SError(f"model path '{name}' does not exist; give a directory saved with save_pretrained, "
                       "a hub id such as Qwen/Qwen3-0.6B, or toy:0/teacher")
    return name


def _load(kind: str, name: str, loader, **kwargs):
    path = resolve(name)
    try:
        return loader(path, **kwargs)
    except OSError as e:
        raise W2SError(
            f"could not load {kind} '{name}' ({str(e).splitlines()[0][:160]}); if the hub is unreachable, "
            f"download it where it is (huggingface-cli download {name} --local-dir DIR) and set the path to DIR"
        ) from None


def load_tokenizer(name: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Tokenizer with a pad token (EOS when the checkpoint has none)."""
    tokenizer = _load("tokenizer", name, AutoTokenizer.from_pretrained, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def fast_dtype(dtype: str) -> str:
    """``fast``: ``bfloat16`` where the hardware multiplies it fast (a GPU, or a CPU with AMX or AVX-512 BF16),
    ``float32`` elsewhere (on an AVX2 CPU a bfloat16 forward is emulated: ~7× slower than float32, measured on an AMD
    EPYC); any other dtype name is returned as it is."""
    if dtype != "fast":
        return dtype
    import torch

    try:
        cpu_bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    except AttributeError:  # a torch without these probes: assume the slow path
        cpu_bf16 = False
    return "bfloat16" if torch.cuda.is_available() or cpu_bf16 else "float32"


def load_causal_lm(name: str, dtype: str = "auto", trust_remote_code: bool = False) -> PreTrainedModel:
    """``AutoModelForCausalLM`` in eval mode (``dtype: fast``: see :func:`fast_dtype`); ``trust_remote_code`` stays
    off unless asked for."""
    return _load("model", name, AutoModelForCausalLM.from_pretrained, dtype=fast_dtype(dtype),
                 trust_remote_code=trust_remote_code).eval()


def load_reward_model(name: str, dtype: str = "auto", trust_remote_code: bool = False) -> PreTrainedModel:
    """``AutoModelForSequenceClassification`` (a reward model scoring a prompt and its answer) in eval mode."""
    model = _load("reward model", name, AutoModelForSequenceClassification.from_pretrained, dtype=dtype,
                  trust_remote_code=trust_remote_code)
    return model.eval()
