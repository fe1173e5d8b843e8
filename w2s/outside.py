"""Teacher outputs produced elsewhere (another cluster, vLLM, an API with log-probs), read instead of running the
teacher, and this library's own passes written in the same format.

A directory of outside outputs holds, for each split (``source``, ``target``):

- ``<split>.jsonl``: one JSON object per example, in any order —
  ``id`` (required, the task's example id), ``generation`` (required, the teacher's text), ``weak_label``
  (optional: parsed from ``generation`` by the task when absent or null), ``option_logprobs`` (optional: one
  score per option of a multiple-choice question, e.g. each letter's log-prob), ``token_logprob`` and
  ``token_entropy`` (optional: mean log-prob and mean next-token entropy over the generated tokens).
- ``<split>.hidden.npy``: ``[N, d]`` float array, row ``i`` the teacher state g(x, ŷ) of line ``i``.
- ``<split>.<layer>_<pooling>.npy`` (optional): any extra feature a trust function reads, e.g. ``0_prompt_mean``
  for ``0:prompt_mean``, rows as in ``hidden``.

Correctness is never read from the files: it is the task's judgement of each weak label against the split's gold.
Outputs are matched to the split by id; the split's ids must all be present (extra lines are ignored).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from w2s.cache import atomic_path
from w2s.errors import W2SError
from w2s.outputs import TeacherOutputs, parse_feature


def _feature_stem(name: str) -> str:
    layer, pooling = parse_feature(name)
    return f"{layer}_{pooling}"


def export_outputs(outputs: TeacherOutputs, directory: Path, split: str) -> None:
    """Write one split's pass as outside outputs (``<split>.jsonl``, ``<split>.hidden.npy``, one ``.npy`` per
    feature), each file atomically."""
    directory = Path(directory)
    lines = []
    for i in range(len(outputs)):
        line = {"id": outputs.ids[i], "generation": outputs.generations[i], "weak_label": outputs.weak_labels[i],
                "token_logprob": float(outputs.token_logprobs[i]), "token_entropy": float(outputs.token_entropy[i])}
        if outputs.option_logprobs is not None:  # -inf (an option the question does not offer) as null
            line["option_logprobs"] = [float(v) if np.isfinite(v) else None for v in outputs.option_logprobs[i]]
        lines.append(json.dumps(line))
    with atomic_path(directory / f"{split}.jsonl") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    for stem, values in {"hidden": outputs.hidden,
                         **{_feature_stem(n): v for n, v in outputs.features.items()}}.items():
        with atomic_path(directory / f"{split}.{stem}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(values))


def _array(path: Path, n: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise W2SError(f"outside teacher outputs: {path} does not exist ({what})")
    try:
        values = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise W2SError(f"outside teacher outputs: {path} is not a readable .npy array ({e})") from None
    if values.ndim != 2 or len(values) != n:
        raise W2SError(f"outside teacher outputs: {path} has shape {values.shape}, but its .jsonl has {n} lines: "
                       f"it needs one row per line ([{n}, d])")
    return values


def read_outside(directory: Path, split: str, task, examples, features: list[str]) -> TeacherOutputs:
    """The pass over ``examples`` (a split of ``task``) from outside outputs in ``directory``, in the split's
    order, with correctness judged by the task. Missing ids, duplicate ids, row counts that differ, malformed
    lines and features without a file each give one line naming the file."""
    path = Path(directory) / f"{split}.jsonl"
    if not path.is_file():
        raise W2SError(f"outside teacher outputs: {path} does not exist (data.teacher.outputs_dir must hold "
                       f"{split}.jsonl and {split}.hidden.npy; see w2s/outside.py for the format)")
    rows = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
            assert isinstance(row, dict) and "id" in row and isinstance(row.get("generation"), str)
        except (ValueError, AssertionError):
            raise W2SError(f"outside teacher outputs: line {number} of {path} is not a JSON object with an id and a "
                           "generation (string)") from None
        rows.append(row)
    position = {}
    for i, row in enumerate(rows):
        if str(row["id"]) in position:
            raise W2SError(f"outside teacher outputs: id {row['id']} appears twice in {path}")
        position[str(row["id"])] = i
    ids = [str(ex["id"]) for ex in examples]
    missing = [i for i in ids if i not in position]
    if missing:
        raise W2SError(f"outside teacher outputs: {path} lacks {len(missing)} of the {len(ids)} {split} ids (first: "
                       f"{missing[0]}); every example of the split needs a line")
    order = np.array([position[i] for i in ids], dtype=np.int64)
    hidden = _array(Path(directory) / f"{split}.hidden.npy", len(rows), "the teacher states")
    extra = {name: _array(Path(directory) / f"{split}.{_feature_stem(name)}.npy", len(rows), f"feature {name}")
             for name in features}
    chosen = [rows[i] for i in order]
    weak = [r["weak_label"] if r.get("weak_label") is not None else task.parse(r["generation"], ex)
            for r, ex in zip(chosen, examples)]
    option_logprobs = None
    if all("option_logprobs" in r for r in chosen):
        width = max(len(r["option_logprobs"]) for r in chosen)
        option_logprobs = np.full((len(chosen), width), -np.inf, dtype=np.float32)
        for i, r in enumerate(chosen):
            values = r["option_logprobs"]
            option_logprobs[i, : len(values)] = [-np.inf if v is None else v for v in values]
    signal = lambda key: np.array([r.get(key, np.nan) for r in chosen], dtype=np.float32)  # noqa: E731
    return TeacherOutputs(
        ids=ids, generations=[r["generation"] for r in chosen], weak_labels=weak,
        hidden=np.asarray(hidden[order], dtype=np.float32), option_logprobs=option_logprobs,
        token_logprobs=signal("token_logprob"), token_entropy=signal("token_entropy"),
        correct=np.array([task.is_correct(w, task.gold(ex)) for w, ex in zip(weak, examples)], dtype=bool),
        features={name: np.asarray(v[order], dtype=np.float32) for name, v in extra.items()})
