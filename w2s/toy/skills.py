"""What a freshly built toy model can do, measured once at build time, so that a world whose pretraining did not
converge (a teacher answering at chance, a student that never learnt its facts) stops with one clear line
instead of producing a table of meaningless numbers.

Each world names its skills (e.g. "the teacher on the questions it has studied"), measures them with greedy
answers on held-out practice prompts, and compares each with a minimum from its spec. The measurements are
written to ``skills.json`` in the world's directory (read back on later runs) and logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from w2s.cache import atomic_write_text
from w2s.errors import W2SError

log = logging.getLogger(__name__)
SKILLS = "skills.json"


@dataclass(frozen=True)
class Skill:
    """One measured skill of a toy model: its accuracy, the accuracy of guessing, and the minimum the world needs."""

    what: str
    accuracy: float
    chance: float
    minimum: float


@torch.no_grad()
def greedy_answers(model_dir: Path, prompts: list[str], max_new_tokens: int, batch_size: int = 256) -> list[str]:
    """The greedy continuation of each prompt by the model saved in ``model_dir`` (left-padded batches)."""
    from w2s.batching import pad_batch
    from w2s.models import load_causal_lm, load_tokenizer

    model, tokenizer = load_causal_lm(str(model_dir), "float32"), load_tokenizer(str(model_dir))
    ids = tokenizer(prompts).input_ids
    out = []
    for start in range(0, len(ids), batch_size):
        input_ids, mask = pad_batch(ids[start : start + batch_size], tokenizer.pad_token_id, left=True)
        generated = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                   do_sample=False, pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(generated[:, input_ids.shape[1]:], skip_special_tokens=True)
    return out


def accuracy(parsed: list[str | None], golds: list[str]) -> float:
    """Share of parsed answers that equal their gold."""
    return sum(p == g for p, g in zip(parsed, golds)) / max(1, len(golds))


def check_skills(root: Path, measure: Callable[[], dict[str, Skill]]) -> dict[str, Skill]:
    """The world's skills (measured now, or read from ``root/skills.json``); a skill below its minimum stops the
    run with one line naming it, its accuracy and what to do."""
    path = root / SKILLS
    if path.is_file():
        skills = {k: Skill(**v) for k, v in json.loads(path.read_text()).items()}
    else:
        skills = measure()
        atomic_write_text(path, json.dumps({k: asdict(v) for k, v in skills.items()}, indent=2))
    for name, s in skills.items():
        log.info("toy world %s: %s %.3f (chance %.3f, needs ≥ %.2f)", root.name, s.what, s.accuracy, s.chance,
                 s.minimum)
    failed = [s for s in skills.values() if s.accuracy < s.minimum]
    if failed:
        said = "; ".join(f"{s.what}: {s.accuracy:.3f} (chance {s.chance:.2f}, needs ≥ {s.minimum:.2f})"
                         for s in failed)
        raise W2SError(f"the toy world in {root} did not learn what it needs ({said}): its pretraining did not "
                       "converge on this machine; try another world seed, or a spec with more pretraining steps")
    return skills
