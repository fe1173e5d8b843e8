"""The teacher pass: batched greedy generation of weak labels with hidden-state capture, cached on disk."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from w2s.batching import pad_batch
from w2s.cache import cache_root, cached_json, is_complete, read_manifest, stable_hash
from w2s.errors import W2SError, check_ranges
from w2s.models import load_causal_lm, load_tokenizer, resolve
from w2s.outputs import BUILT_IN_FEATURES, TeacherOutputs, load_outputs, parse_feature, save_outputs
from w2s.scoring import greedy_one_token, plain_greedy, position_ids
from w2s.tasks.base import Task

CACHE_VERSION = "1"


@dataclass
class PassPlan:
    """A teacher pass over one split, planned: the examples, their rendered prompts and token ids, batches of
    example indices of similar prompt length, the option token ids of lettered multiple-choice tasks, and each
    option's completion (text and token ids) where options are scored by likelihood."""

    examples: list[dict]
    prompts: list[str]
    token_ids: list[list[int]]
    batches: list[np.ndarray]
    option_ids: np.ndarray | None
    option_texts: list[list[str]] | None = None
    option_tokens: list[list[list[int]]] | None = None
    normalize: str = "sum"


class Teacher:
    """The weak teacher: greedy generation of a weak label for every example, with hidden-state capture.

    Args:
        model: ``toy:<seed>/teacher``, a local ``save_pretrained`` directory, or a hub id.
        batch_size: prompts per generation batch (left padding, prompts bucketed by length).
        max_new_tokens: generation length limit (1 suffices for a single-token answer letter).
        layer: hidden-state layer (``-1`` = last layer, after the final norm; ``0`` = embeddings).
        position: ``produced`` = the state that produced the final generated token (last input position of
            the final generation step); ``appended`` = the state at the final generated token itself.
        dtype: model dtype (``auto``, ``float32``, ``bfloat16``, or ``fast``: bfloat16 where the hardware has it).
        trust_remote_code: allow code shipped with the checkpoint to run (off by default).
        features: extra hidden-state features to cache for trust functions, each ``"<layer>:<pooling>"`` with
            pooling ``produced`` (the state that produced the final generated token; with the likelihood
            interface, the position ``position`` names in the chosen option), ``prompt_mean`` (the mean over the
            prompt tokens) or ``prompt_last`` (the prompt's final token, before any answer), e.g.
            ``["1:produced", "-1:prompt_mean"]``.
        shard_size: examples per shard of the pass; each finished shard is saved at once, so a pass that is
            interrupted resumes from its last finished shard.
        cache_dtype: how hidden states are stored: ``float32``, or ``float16`` (half the disk and memory; trust
            functions read them back as float32, block by block).
        outputs_dir: read the pass from outside teacher outputs in this directory (``w2s/outside.py``: a pass
            produced elsewhere, e.g. with vLLM, or exported by ``python -m w2s.label --export``) instead of running
            ``model``; extra passes of trust functions (ICL, P(True), samples) still run ``model``.
        share_prompt: by likelihood, run each prompt once and score its options from its key/value cache (the
            same scores and states as full sequences up to float rounding, and about K times less prompt
            compute); off: one full sequence per option. Not part of the cache key.
    """

    def __init__(
        self,
        model: str,
        batch_size: int = 32,
        max_new_tokens: int = 1,
        layer: int = -1,
        position: Literal["produced", "appended"] = "produced",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        features: list[str] | None = None,
        shard_size: int = 1024,
        cache_dtype: Literal["float32", "float16"] = "float32",
        outputs_dir: str | None = None,
        share_prompt: bool = True,
    ) -> None:
        check_ranges("Teacher", batch_size=(batch_size, "int >= 1"), max_new_tokens=(max_new_tokens, "int >= 1"),
                     shard_size=(shard_size, "int >= 1"))
        self.shard_size, self.cache_dtype, self.outputs_dir = shard_size, cache_dtype, outputs_dir
        self.share_prompt = share_prompt
        self.model, self.batch_size, self.max_new_tokens = model, batch_size, max_new_tokens
        self.layer, self.position, self.dtype, self.trust_remote_code = layer, position, dtype, trust_remote_code
        self.features = sorted(set(features or []))
        self._feature_specs = {name: parse_feature(name) for name in self.features}

    def with_features(self, features: list[str]) -> "Teacher":
        """This teacher, also caching ``features`` (what a trust function reads besides ``hidden``)."""
        wanted = sorted(set(self.features) | {f for f in features if f not in BUILT_IN_FEATURES})
        if wanted == self.features:
            return self
        teacher = copy.copy(self)
        teacher.features = wanted
        teacher._feature_specs = {name: parse_feature(name) for name in wanted}
        return teacher

    # ---- cache -------------------------------------------------------------------------------------------
    def cache_key(self, task: Task, split: datasets.Dataset) -> str:
        data = hashlib.sha256()
        for example in split:
            texts = task.option_texts(example)  # by likelihood the prompt does not show the options
            data.update(json.dumps([task.prompt(example), task.gold(example), *([texts] if texts else [])]).encode())
        settings = {k: getattr(self, k) for k in ("max_new_tokens", "layer", "position", "dtype", "features")}
        if self.cache_dtype != "float32":  # (keeps the keys of float32 caches written before the option)
            settings["cache_dtype"] = self.cache_dtype
        return stable_hash([CACHE_VERSION, model_fingerprint(self.model), task.fingerprint(), data.hexdigest(),
                            settings])

    def label(self, task: Task, splits: dict[str, datasets.Dataset]) -> dict[str, TeacherOutputs]:
        """Teacher outputs for each split, from the cache when present, else by running the model once (or from
        ``outputs_dir``, for the task's own prompts)."""
        if self.outputs_dir is not None and not task.derived:
            from w2s.outside import read_outside

            return {name: read_outside(Path(self.outputs_dir), name, task, split, self.features)
                    for name, split in splits.items()}
        keys = {name: self.cache_key(task, split) for name, split in splits.items()}
        dirs = {name: cache_root() / "teacher" / key for name, key in keys.items()}
        missing = [name for name, d in dirs.items() if not is_complete(d)]
        if missing:
            model = load_causal_lm(self.model, self.dtype, self.trust_remote_code)
            tokenizer = load_tokenizer(self.model, self.trust_remote_code)
            for name in missing:
                outputs = self._run_sharded(model, tokenizer, task, splits[name], dirs[name], keys[name], name)
                save_outputs(outputs, dirs[name], {"key": keys[name], "split": name, "teacher": self.model})
                shutil.rmtree(_partial_dir(dirs[name]), ignore_errors=True)
            del model
        return {name: load_outputs(d, keys[name]) for name, d in dirs.items()}

    def _run_sharded(self, model, tokenizer, task: Task, split: datasets.Dataset, target: Path, key: str,
                     name: str) -> TeacherOutputs:
        """The pass over ``split`` in shards saved as they finish (``<key>.partial/shard-k``); shards finished
        by an interrupted pass with the same key and shard size are read back instead of recomputed."""
        parts, reused = [], 0
        starts = range(0, len(split), self.shard_size)
        for k, start in enumerate(starts):
            shard_dir = _partial_dir(target) / f"shard-{k:05d}"
            stamp = {"key": key, "shard": k, "shard_size": self.shard_size}
            if is_complete(shard_dir) and all(read_manifest(shard_dir).get(f) == v for f, v in stamp.items()):
                parts.append(load_outputs(shard_dir, key))
                reused += 1
                continue
            shard = split.select(range(start, min(len(split), start + self.shard_size)))
            desc = f"teacher pass ({name}{f', shard {k + 1}/{len(starts)}' if len(starts) > 1 else ''})"
            parts.append(self.run(model, tokenizer, task, shard, desc=desc))
            save_outputs(parts[-1], shard_dir, stamp)
        if reused:
            print(f"teacher pass ({name}): {reused} of {len(starts)} shards read back from an interrupted pass",
                  file=sys.stderr)
        return TeacherOutputs.concat(parts)

    def sample(self, task: Task, split: datasets.Dataset, k: int, temperature: float, seed: int) -> list[list[str]]:
        """``k`` generations per example sampled at ``temperature`` (seeded; in split order), cached under
        ``$W2S_CACHE/samples`` by the pass's key and these settings. For trust functions that compare samples
        (``SamplingAgreement``); a task answered by likelihood has no generations to sample."""
        if not task.generates:
            raise W2SError("sampled generations need a task the teacher answers by generating; this one is scored by "
                           "likelihood (interface: likelihood), whose option distribution I-Confidence reads directly")
        key = {"pass": self.cache_key(task, split), "k": k, "temperature": temperature, "seed": seed}

        def draw() -> list[list[str]]:
            model = load_causal_lm(self.model, self.dtype, self.trust_remote_code)
            tokenizer = load_tokenizer(self.model, self.trust_remote_code)
            plan = self.plan(model, tokenizer, task, split)
            samples: list[list[str]] = [[] for _ in plan.examples]
            torch.manual_seed(seed)
            for idx in tqdm(plan.batches, desc=f"teacher samples (k={k})", unit="batch"):
                ids, mask = pad_batch([plan.token_ids[i] for i in idx], tokenizer.pad_token_id, left=True)
                with torch.no_grad():
                    out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                         max_new_tokens=self.max_new_tokens, do_sample=True, temperature=temperature,
                                         top_k=0, top_p=1.0, num_return_sequences=k,
                                         pad_token_id=tokenizer.pad_token_id)
                texts = tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)  # [B * k]
                for j, i in enumerate(idx):
                    samples[int(i)] = texts[j * k : (j + 1) * k]
            return samples

        return cached_json("samples", key, draw)[0]

    # ---- the pass ----------------------------------------------------------------------------------------
    def plan(self, model, tokenizer, task: Task, split: datasets.Dataset) -> "PassPlan":
        """Render the prompts and cut them into batches of similar length (the unit of work of a pass)."""
        examples = split.to_list()  # one Arrow → Python conversion (row by row is several times slower)
        prompts = [task.render(tokenizer, ex) for ex in examples]
        special = task.add_special_tokens
        token_ids = tokenizer(prompts, add_special_tokens=special).input_ids  # once: for bucketing and generation
        order = np.argsort([len(ids) for ids in token_ids], kind="stable")
        n_states = model.config.get_text_config().num_hidden_layers + 1
        layers = [(f"layer {self.layer}", self.layer), *((n, l) for n, (l, _) in self._feature_specs.items())]
        for name, layer in layers:
            if not -n_states <= layer < n_states:
                raise W2SError(f"teacher feature {name!r}: layer {layer} does not exist (the teacher has "
                               f"{n_states} hidden states: 0 = embeddings ... {n_states - 1} = last layer, or -1)")
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        texts = [task.option_texts(ex) for ex in examples]
        if texts[0] is None:
            return PassPlan(examples, prompts, token_ids, batches, _option_token_ids(task, tokenizer, examples))
        tokens = [tokenizer(options, add_special_tokens=False).input_ids for options in texts]
        return PassPlan(examples, prompts, token_ids, batches, None, texts, tokens, task.normalize)

    @torch.no_grad()
    def run_batch(self, model, tokenizer, plan: "PassPlan", b: int) -> dict[int, dict]:
        """Generate batch ``b`` of a plan: one row of outputs per example index."""
        idx = plan.batches[b]
        if plan.option_texts is not None:
            batch = self._likelihood(model, tokenizer, plan, idx)
        else:
            batch = self._generate(model, tokenizer, [plan.token_ids[i] for i in idx],
                                   None if plan.option_ids is None else plan.option_ids[idx])
        return {int(i): {k: v[j] for k, v in batch.items()} for j, i in enumerate(idx)}

    def assemble(self, task: Task, plan: "PassPlan", rows: dict[int, dict],
                 index: list[int] | None = None) -> TeacherOutputs:
        """The outputs of the examples at ``index`` (default: all, in split order) from their generated rows."""
        index = list(range(len(plan.examples))) if index is None else index
        examples = [plan.examples[i] for i in index]
        rows_ = [rows[i] for i in index]
        weak = [task.parse(r["generation"], ex) for r, ex in zip(rows_, examples)]
        gold = [task.gold(ex) for ex in examples]
        hidden = np.stack([r["hidden"] for r in rows_]).astype(self.cache_dtype)
        features = {name: np.stack([r[f"feature:{name}"] for r in rows_]).astype(self.cache_dtype)
                    for name in self.features}
        for name, values in {"hidden": hidden, **features}.items():
            bad = ~np.isfinite(values).all(axis=1)
            if bad.any():
                first = examples[int(np.argmax(bad))]["id"]
                raise W2SError(f"teacher hidden states ({name}) contain NaN/Inf for {int(bad.sum())} examples "
                               f"(first: {first}); run the teacher in float32 (teacher.dtype: float32) and keep "
                               "teacher.cache_dtype float32 (float16 overflows past 65504)")
        return TeacherOutputs(
            ids=[str(ex["id"]) for ex in examples],
            generations=[r["generation"] for r in rows_],
            weak_labels=weak,
            hidden=hidden,
            option_logprobs=None if plan.option_ids is None and plan.option_texts is None else _offered_only(
                np.stack([r["option_logprobs"] for r in rows_]), [len(task.options(ex)) for ex in examples]),
            token_logprobs=np.array([r["token_logprob"] for r in rows_], dtype=np.float32),
            token_entropy=np.array([r["token_entropy"] for r in rows_], dtype=np.float32),
            correct=np.array([task.is_correct(w, g) for w, g in zip(weak, gold)], dtype=bool),
            features=features,
        )

    def run(self, model, tokenizer, task: Task, split: datasets.Dataset, desc: str = "teacher pass") -> TeacherOutputs:
        """Label ``split`` with ``model``; examples are bucketed by prompt length, results kept in split order."""
        plan = self.plan(model, tokenizer, task, split)
        rows: dict[int, dict] = {}
        for b in tqdm(range(len(plan.batches)), desc=desc, unit="batch"):
            rows.update(self.run_batch(model, tokenizer, plan, b))
        return self.assemble(task, plan, rows)

    def _generate(self, model, tokenizer, token_ids: list[list[int]], option_ids: np.ndarray | None) -> dict[str, list]:
        input_ids, attention_mask = pad_batch(token_ids, tokenizer.pad_token_id, left=True)  # as generation needs
        enc = {"input_ids": input_ids.to(model.device), "attention_mask": attention_mask.to(model.device)}
        if self.max_new_tokens == 1 and plain_greedy(model):  # the lettered pass: one forward is generate's result
            out = greedy_one_token(model, enc["input_ids"], enc["attention_mask"])
        else:
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 return_dict_in_generate=True, output_hidden_states=True, output_logits=True,
                                 pad_token_id=tokenizer.pad_token_id)
        prompt_len = enc["input_ids"].shape[1]
        generated = out.sequences[:, prompt_len:]
        stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        is_stop = torch.isin(generated, torch.tensor(sorted(stops), device=generated.device))
        n_tokens = (~is_stop).long().cumprod(1).sum(1)  # generated tokens before the first EOS/pad
        final = (n_tokens - 1).clamp(min=0)  # index of the final generated (answer) token
        rows = torch.arange(len(token_ids), device=generated.device)

        def produced(layer: int) -> torch.Tensor:  # the state at the last input position of the final step
            return torch.stack([h[layer][:, -1] for h in out.hidden_states], 1)[rows, final]

        if self.position == "produced":
            hidden = produced(self.layer)
        else:
            hidden = self._appended_state(model, out.sequences, enc["attention_mask"], prompt_len + final)
        extra = {}
        for name, (layer, pooling) in self._feature_specs.items():
            if pooling == "produced":
                extra[name] = produced(layer)
            elif pooling == "prompt_last":  # the first step's last position: the prompt's final token
                extra[name] = out.hidden_states[0][layer][:, -1]
            else:  # prompt_mean: the first step's states cover the (left-padded) prompt
                mask = enc["attention_mask"].unsqueeze(-1).to(out.hidden_states[0][layer].dtype)
                extra[name] = (out.hidden_states[0][layer] * mask).sum(1) / mask.sum(1)

        logprobs = torch.stack(out.logits, 1).float().log_softmax(-1)  # [B, T, V]
        chosen = logprobs.gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        entropy = -(logprobs.exp() * logprobs).sum(-1)
        keep = torch.arange(generated.shape[1], device=generated.device)[None] <= final[:, None]
        result = {
            "generation": tokenizer.batch_decode([g[:n] for g, n in zip(generated.tolist(), n_tokens.tolist())],
                                                 skip_special_tokens=True),  # lists: tensors decode slowly
            "hidden": list(hidden.float().cpu().numpy()),
            "token_logprob": ((chosen * keep).sum(1) / keep.sum(1)).cpu().tolist(),
            "token_entropy": ((entropy * keep).sum(1) / keep.sum(1)).cpu().tolist(),
        }
        for name, values in extra.items():
            result[f"feature:{name}"] = list(values.float().cpu().numpy())
        if option_ids is not None:
            ids = torch.as_tensor(option_ids, device=logprobs.device)
            result["option_logprobs"] = list(logprobs[:, 0].gather(-1, ids).cpu().numpy())
        return result

    def _likelihood(self, model, tokenizer, plan: PassPlan, idx: np.ndarray) -> dict[str, list]:
        """Score every option of examples ``idx`` as the continuation of its prompt (``share_prompt``: each
        prompt once, its options from its key/value cache); the weak label is the most likely option, g(x, ŷ)
        the state at its final token."""
        from w2s.scoring import score_options

        pairs = [(j, k) for j, i in enumerate(idx) for k in range(len(plan.option_tokens[i]))]
        question = [j for j, _ in pairs]
        scored = score_options(model, [plan.token_ids[i] for i in idx],
                               [plan.option_tokens[idx[j]][k] for j, k in pairs], question, tokenizer.pad_token_id,
                               hidden_states=True, shared=self.share_prompt)
        total, n_tokens = scored.total.cpu(), scored.tokens.cpu()  # [S]
        chars = torch.tensor([len(plan.option_texts[idx[j]][k]) for j, k in pairs], dtype=torch.float32)
        score = total / chars.clamp(min=1) if plan.normalize == "chars" else total
        width = max(len(t) for t in plan.option_tokens)
        table = torch.full((len(idx), width), float("-inf"))
        table[question, [k for _, k in pairs]] = score  # [B, K] option scores
        seq = torch.full((len(idx), width), -1, dtype=torch.long)
        seq[question, [k for _, k in pairs]] = torch.arange(len(pairs))
        chosen = seq[torch.arange(len(idx)), table.argmax(1)]  # [B] the chosen option's sequence
        last = torch.tensor([len(plan.token_ids[idx[j]]) for j in question])[chosen] + n_tokens[chosen] - 1
        at = (last - (1 if self.position == "produced" else 0)).to(model.device)  # produced: the state predicting it
        result = {
            "generation": [plan.option_texts[i][int(k)] for i, k in zip(idx, table.argmax(1))],
            "token_logprob": (total[chosen] / n_tokens[chosen]).tolist(),
            "token_entropy": (scored.entropy.cpu()[chosen] / n_tokens[chosen]).tolist(),
            "option_logprobs": list(table.numpy()),
        }
        chosen = chosen.to(model.device)  # the states live on the model's device
        result["hidden"] = list(scored.state(self.layer, chosen, at).float().cpu().numpy())
        for name, (layer, pooling) in self._feature_specs.items():
            values = (scored.state(layer, chosen, at) if pooling == "produced"
                      else scored.prompt_last(layer, chosen) if pooling == "prompt_last"  # before any option
                      else scored.prompt_mean(layer, chosen))  # the prompt's tokens (the same for every option)
            result[f"feature:{name}"] = list(values.float().cpu().numpy())
        return result

    def _appended_state(self, model, sequences, prompt_mask, positions) -> torch.Tensor:
        mask = torch.cat([prompt_mask, torch.ones_like(sequences[:, prompt_mask.shape[1]:])], 1)
        states = model(input_ids=sequences, attention_mask=mask, position_ids=position_ids(mask),
                       output_hidden_states=True).hidden_states[self.layer]
        return states[torch.arange(len(sequences)), positions]


def _option_token_ids(task: Task, tokenizer, examples: list[dict]) -> np.ndarray | None:
    """First token id of each option's completion (``" A"``, ``" B"``...) for multiple-choice tasks."""
    widest = max(examples, key=lambda ex: len(task.options(ex)))
    ids = task.option_token_ids(tokenizer, widest)
    return None if ids is None else np.tile(np.array(ids), (len(examples), 1))


def _offered_only(option_logprobs: np.ndarray, counts: list[int]) -> np.ndarray:
    """Log-prob -inf for the letters an example does not offer (a 3-option question among 5-option ones)."""
    offered = np.arange(option_logprobs.shape[1])[None] < np.asarray(counts)[:, None]
    return np.where(offered, option_logprobs, -np.inf).astype(np.float32)


def model_fingerprint(name: str) -> dict:
    """Identity of a checkpoint for cache keys: its path, config and the size/mtime of its weight files."""
    path = Path(resolve(name))
    if not path.is_dir():
        return {"hub_id": name, "revision": hub_revision(name)}
    files = sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".json"})
    return {"path": str(path.resolve()), "files": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]}


def hub_revision(name: str) -> str | None:
    """The commit of the locally cached snapshot of a hub id (no network), so that a checkpoint updated on the
    hub never serves stale cached outputs; ``None`` when it is not cached yet."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, local_files_only=True)).name
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def _partial_dir(target: Path) -> Path:
    return target.with_name(target.name + ".partial")
