"""Small copies of the world-knowledge benchmarks in their exact hub layout, schema and splits.

Each is written where ``huggingface-cli download <org>/<name> --repo-type dataset --local-dir <root>/<org>/<name>``
would put the real one: a README whose YAML ``configs`` map splits to parquet files, and the parquet files
(``<config>/<split>-00000-of-00001.parquet`` or ``data/<split>-...``) with the hub's features.
"""

from __future__ import annotations

from pathlib import Path

import datasets
from datasets import ClassLabel, Features, Sequence, Value

CHOICE_STRUCT = Sequence({"text": Value("string"), "label": Value("string")})
WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "granite", "harbor", "iris", "juniper"]


def _options(i: int, k: int) -> list[str]:
    return [f"{WORDS[(i + j) % len(WORDS)]} {j}" for j in range(k)]


def _question(i: int, name: str) -> str:
    return f"In {name} question {i}, which of these is the {WORDS[i % len(WORDS)]} one?"


def mmlu_rows(n: int, split: str) -> dict:
    return {"question": [_question(i, f"mmlu {split}") for i in range(n)],
            "subject": [["anatomy", "astronomy", "virology"][i % 3] for i in range(n)],
            "choices": [_options(i, 4) for i in range(n)], "answer": [i % 4 for i in range(n)]}


def arc_rows(n: int, split: str, name: str) -> dict:
    rows = {"id": [], "question": [], "choices": [], "answerKey": []}
    for i in range(n):
        k = [4, 4, 3, 5][i % 4]  # ARC has 3- and 5-option questions, and some with digit labels
        labels = list("12345"[:k]) if i % 5 == 4 else list("ABCDE"[:k])
        rows["id"].append(f"{name}_{split}_{i}")
        rows["question"].append(_question(i, f"{name} {split}"))
        rows["choices"].append({"text": _options(i, k), "label": labels})
        rows["answerKey"].append(labels[i % k])
    return rows


def openbookqa_rows(n: int, split: str) -> dict:
    rows = arc_rows(n, split, "obqa")
    return {"id": rows["id"], "question_stem": rows["question"],
            "choices": [{"text": _options(i, 4), "label": list("ABCD")} for i in range(n)],
            "answerKey": ["ABCD"[i % 4] for i in range(n)]}


def commonsense_qa_rows(n: int, split: str) -> dict:
    return {"id": [f"csqa{split}{i:04d}" for i in range(n)],
            "question": [_question(i, f"csqa {split}") for i in range(n)],
            "question_concept": [WORDS[i % len(WORDS)] for i in range(n)],
            "choices": [{"label": list("ABCDE"), "text": _options(i, 5)} for i in range(n)],
            "answerKey": ["" if split == "test" else "ABCDE"[i % 5] for i in range(n)]}  # the hub's test is unlabeled


def sciq_rows(n: int, split: str) -> dict:
    return {"question": [_question(i, f"sciq {split}") for i in range(n)],
            "distractor3": [f"{WORDS[i % 10]} three" for i in range(n)],
            "distractor1": [f"{WORDS[i % 10]} one" for i in range(n)],
            "distractor2": [f"{WORDS[i % 10]} two" for i in range(n)],
            "correct_answer": [f"{WORDS[i % 10]} right" for i in range(n)],
            "support": [f"Support text {i}." for i in range(n)]}


ARC = Features({"id": Value("string"), "question": Value("string"), "choices": CHOICE_STRUCT,
                "answerKey": Value("string")})
# hub id → (config → data directory, features, split → (rows function, row count))
HUB = {
    "cais/mmlu": ({"all": "all"}, Features({"question": Value("string"), "subject": Value("string"),
                                            "choices": Sequence(Value("string")),
                                            "answer": ClassLabel(names=["A", "B", "C", "D"])}),
                  {"test": 20, "validation": 12, "dev": 10, "auxiliary_train": 10}),
    "allenai/ai2_arc": ({"ARC-Easy": "ARC-Easy", "ARC-Challenge": "ARC-Challenge"}, ARC,
                        {"train": 20, "validation": 10, "test": 16}),
    "allenai/openbookqa": ({"main": "main"}, Features({"id": Value("string"), "question_stem": Value("string"),
                                                       "choices": CHOICE_STRUCT, "answerKey": Value("string")}),
                           {"train": 16, "validation": 10, "test": 12}),
    "tau/commonsense_qa": ({"default": "data"}, Features({
        "id": Value("string"), "question": Value("string"), "question_concept": Value("string"),
        "choices": Sequence({"label": Value("string"), "text": Value("string")}), "answerKey": Value("string")}),
        {"train": 15, "validation": 12, "test": 10}),
    "allenai/sciq": ({"default": "data"}, Features({
        "question": Value("string"), "distractor3": Value("string"), "distractor1": Value("string"),
        "distractor2": Value("string"), "correct_answer": Value("string"), "support": Value("string")}),
        {"train": 15, "validation": 10, "test": 12}),
}


def rows_for(hub_id: str, config: str, split: str, n: int) -> dict:
    if hub_id == "cais/mmlu":
        return mmlu_rows(n, split)
    if hub_id == "allenai/ai2_arc":
        return arc_rows(n, split, config)
    return {"allenai/openbookqa": openbookqa_rows, "tau/commonsense_qa": commonsense_qa_rows,
            "allenai/sciq": sciq_rows}[hub_id](n, split)


def write_hub_fixtures(root: Path) -> Path:
    """Write every benchmark under ``root/<org>/<name>`` in its hub layout; return ``root``."""
    for hub_id, (configs, features, sizes) in HUB.items():
        repo = root / hub_id
        yaml = ["---", "configs:"]
        for config, folder in configs.items():
            yaml += [f"- config_name: {config}", "  data_files:"]
            for split, n in sizes.items():
                path = f"{folder}/{split}-00000-of-00001.parquet"
                (repo / folder).mkdir(parents=True, exist_ok=True)
                datasets.Dataset.from_dict(rows_for(hub_id, config, split, n), features=features).to_parquet(
                    str(repo / path))
                yaml += [f"  - split: {split}", f"    path: {folder}/{split}-*"]
        (repo / "README.md").write_text("\n".join(yaml + ["---", f"# {hub_id} (test fixture)", ""]))
    return root


def fixture_texts(root: Path) -> list[str]:
    """Every question and option in the fixtures (the tiny tokenizer's training text)."""
    texts = []
    for hub_id, (configs, _, sizes) in HUB.items():
        for config in configs:
            for split, n in sizes.items():
                rows = rows_for(hub_id, config, split, n)
                texts += rows.get("question", rows.get("question_stem", []))
                texts += [str(v) for values in rows.values() for v in values if isinstance(v, str)]
    return texts


def save_tiny_lm(directory: Path, arch: str, texts: list[str], seed: int = 0,
                 answers: list[tuple[str, str]] = (), completions: list[tuple[str, str]] = ()) -> Path:
    """A tiny Qwen3 or OLMo2 with a byte-level BPE tokenizer trained on ``texts`` (every answer letter with its
    leading space is one token, as in the real tokenizers), saved with save_pretrained. Given ``answers``
    ((prompt, letter) pairs), it is first trained briefly to give those letters: a weak teacher that emits
    letters and is right where its letters are. Given ``completions`` ((prompt, text) pairs), it is trained on
    each text, then EOS, after its prompt (loss on those tokens only): a free-form teacher."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, Olmo2Config, PreTrainedTokenizerFast, Qwen3Config

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    letters = [f"Answer: {letter}" for letter in "ABCDEFGHIJ"] * 20
    bpe.train_from_iterator(texts + letters, trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    assert all(len(tokenizer(f" {c}", add_special_tokens=False).input_ids) == 1 for c in "ABCDE")
    special = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   bos_token_id=tokenizer.eos_token_id)
    shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=256)
    config = (Qwen3Config(head_dim=8, tie_word_embeddings=True, **shape, **special) if arch == "qwen3"
              else Olmo2Config(**shape, **special))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if answers:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        batch = tokenizer([f"{prompt} {letter}" for prompt, letter in answers], return_tensors="pt", padding=True,
                          padding_side="left")
        position_ids = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)  # as generation numbers left-padded rows
        for _ in range(400):
            logits = model(**batch, position_ids=position_ids).logits[:, -2]  # the position that predicts the letter
            loss = torch.nn.functional.cross_entropy(logits, batch.input_ids[:, -1])
            loss.backward()
            opt.step()
            opt.zero_grad()
    if completions:
        _train_completions(model, tokenizer, completions)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _train_completions(model, tokenizer, pairs: list[tuple[str, str]], steps: int = 300) -> None:
    import torch

    rows = [(tokenizer(p).input_ids, tokenizer(c, add_special_tokens=False).input_ids + [tokenizer.eos_token_id])
            for p, c in pairs]
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, c) in enumerate(rows):  # left padding, as the teacher pass generates
        start = width - len(p) - len(c)
        ids[i, start:] = torch.tensor(p + c)
        labels[i, width - len(c):] = torch.tensor(c)
        mask[i, start:] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        model(input_ids=ids, attention_mask=mask, position_ids=position_ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
