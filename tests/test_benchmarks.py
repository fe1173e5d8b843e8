"""World-knowledge benchmarks through the hub adapter code, on small files in each benchmark's hub layout."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import ROOT, run_main
from hub_fixtures import HUB, fixture_texts, rows_for, save_tiny_lm, write_hub_fixtures

from w2s.errors import W2SError
from w2s.tasks import MultipleChoice

LETTERS = "ABCDEFGHIJ"


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory) -> Path:
    return write_hub_fixtures(tmp_path_factory.mktemp("hub"))


def load(hub_root: Path, source, target="mmlu:dev", test="mmlu:validation", **kwargs) -> datasets.DatasetDict:
    return MultipleChoice(source=source, target=target, test=test, data_dir=str(hub_root), **kwargs).load()


@pytest.mark.parametrize("name,hub_id,config,split", [
    ("mmlu", "cais/mmlu", "all", "test"),
    ("mmlu", "cais/mmlu", "all", "auxiliary_train"),
    ("arc_easy", "allenai/ai2_arc", "ARC-Easy", "train"),
    ("arc_challenge", "allenai/ai2_arc", "ARC-Challenge", "test"),
    ("openbookqa", "allenai/openbookqa", "main", "validation"),
    ("commonsense_qa", "tau/commonsense_qa", "default", "train"),
    ("sciq", "allenai/sciq", "default", "test"),
])
def test_benchmark_adapter_reads_the_hub_schema(hub_root, name, hub_id, config, split):
    examples = load(hub_root, f"{name}:{split}")["source"]
    raw = rows_for(hub_id, config, split, HUB[hub_id][2][split])
    assert len(examples) == HUB[hub_id][2][split]
    assert set(examples["benchmark"]) == {name}
    assert len(set(examples["id"])) == len(examples)
    for i, ex in enumerate(examples):
        if name == "sciq":  # distractors and the right answer are shuffled, with the gold letter following it
            assert sorted(ex["choices"]) == sorted([raw[f"distractor{k}"][i] for k in (1, 2, 3)] +
                                                   [raw["correct_answer"][i]])
            assert ex["choices"][LETTERS.index(ex["answer"])] == raw["correct_answer"][i]
            continue
        if name == "mmlu":
            options, gold = raw["choices"][i], LETTERS[raw["answer"][i]]
        else:  # ARC-style struct; labels may be digits ("1".."5"), the gold letter is the position
            options, labels = raw["choices"][i]["text"], raw["choices"][i]["label"]
            gold = LETTERS[labels.index(raw["answerKey"][i])]
        assert ex["choices"] == options  # hub order kept
        assert ex["answer"] == gold
        question = raw["question_stem"][i] if name == "openbookqa" else raw["question"][i]
        assert ex["question"] == question


def test_sciq_shuffle_is_fixed_and_spreads_the_gold_letter(hub_root):
    first, again = load(hub_root, "sciq:train")["source"], load(hub_root, "sciq:train")["source"]
    assert first["choices"] == again["choices"] and first["answer"] == again["answer"]
    assert len(set(first["answer"])) > 1  # not always the same position


def test_three_to_five_options_and_digit_labels(hub_root):
    arc = load(hub_root, "arc_easy:train")["source"]
    assert {len(c) for c in arc["choices"]} == {3, 4, 5}
    raw = rows_for("allenai/ai2_arc", "ARC-Easy", "train", 20)
    digit_rows = [i for i, c in enumerate(raw["choices"]) if c["label"][0] == "1"]
    assert digit_rows and all(arc[i]["answer"] in LETTERS[:5] for i in digit_rows)
    csqa = load(hub_root, "commonsense_qa:validation")["source"]
    assert {len(c) for c in csqa["choices"]} == {5}


def test_slices_are_seeded_random_and_disjoint(hub_root):
    splits = load(hub_root, "mmlu:test[:50%]", "mmlu:test[50%:80%]", "mmlu:test[80%:]")
    ids = [set(splits[s]["id"]) for s in ("source", "target", "test")]
    assert [len(i) for i in ids] == [10, 6, 4]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == {f"mmlu:test/{i}" for i in range(20)}
    assert ids[0] != {f"mmlu:test/{i}" for i in range(10)}  # shuffled, not the first rows (MMLU is sorted)
    other = load(hub_root, "mmlu:test[:50%]", "mmlu:test[50%:80%]", "mmlu:test[80%:]", shuffle_seed=1)
    assert set(other["source"]["id"]) != ids[0]
    assert set(load(hub_root, "mmlu:test[:5]")["source"]["id"]) < ids[0] | ids[1] | ids[2]


@pytest.mark.parametrize("source,target,message", [
    ("mmlu:test[:60%]", "mmlu:test[50%:]", "shares 2 rows"),
    ("mmlu:test", "mmlu:test", "shares 20 rows"),
    ("mmlu:nope", "mmlu:dev", "has no split 'nope'"),
    ("commonsense_qa:test", "mmlu:dev", "no gold answer"),
    ("squad", "mmlu:dev", "neither a benchmark"),
    ("mmlu:test[a:b]", "mmlu:dev", "not a row count or a percent"),
])
def test_bad_references_fail_with_one_clear_line(hub_root, source, target, message):
    with pytest.raises(W2SError, match=message):
        load(hub_root, source, target)


def test_missing_local_copy_names_the_download_command(tmp_path):
    with pytest.raises(W2SError, match="huggingface-cli download cais/mmlu --repo-type dataset"):
        MultipleChoice(source="mmlu:test", target="mmlu:dev", test="mmlu:validation", data_dir=str(tmp_path)).load()


def write_custom(path: Path, rows: list[dict]) -> Path:
    """Custom field names: ``q``, ``opts`` (a list), ``gold`` (the right option's text), ``key``."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".parquet":
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    else:
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


CUSTOM = [{"key": f"k{i}", "q": f"Which is number {i}?", "opts": [f"n{i}", f"n{i + 1}", f"n{i + 2}"],
           "gold": f"n{i + i % 3}"} for i in range(12)]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ""])
def test_local_file_with_a_field_mapping(tmp_path, suffix):
    path = write_custom(tmp_path / f"mine{suffix or '_dir'}", CUSTOM)
    splits = MultipleChoice(source=f"{path}[:50%]", target=f"{path}[50%:75%]", test=f"{path}[75%:]",
                            question_field="q", choices_field="opts", answer_field="gold", id_field="key").load()
    assert [len(splits[s]) for s in ("source", "target", "test")] == [6, 3, 3]
    for ex in splits["source"]:
        row = CUSTOM[int(ex["id"].split("/k")[-1])]
        assert ex["question"] == row["q"] and ex["choices"] == row["opts"]
        assert ex["choices"][LETTERS.index(ex["answer"])] == row["gold"]


def test_csv_with_one_column_per_option_and_letter_answers(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("question,A,B,C,D,answer\n" + "".join(f"Q{i}?,a{i},b{i},c{i},d{i},{'ABCD'[i % 4]}\n"
                                                         for i in range(8)))
    splits = MultipleChoice(source=f"{path}[:4]", target=f"{path}[4:6]", test=f"{path}[6:]",
                            choices_field=["A", "B", "C", "D"]).load()
    first = splits["source"][0]
    i = int(first["id"].split("/")[-1])
    assert first["choices"] == [f"a{i}", f"b{i}", f"c{i}", f"d{i}"] and first["answer"] == "ABCD"[i % 4]


def test_wrong_field_names_say_how_to_map_them(tmp_path):
    path = write_custom(tmp_path / "mine.jsonl", CUSTOM)
    with pytest.raises(W2SError, match=r"no field\(s\) \['question', 'answer', 'choices'\].*question_field"):
        MultipleChoice(source=f"{path}[:50%]", target=f"{path}[50%:]", test=f"{path}[50%:]").load()


@pytest.mark.parametrize("generation,label", [
    (" B", "B"), ("B)", "B"), ("(B)", "B"), ("B. Paris", "B"), ("The answer is B", "B"), ("b", "B"),
    ("the answer is c.", "C"), ("Answer: (D)", "D"), ("I think (C) is right", "C"), ("B\n\nQuestion: A", "B"),
    ("Paris", None), ("A dog", None), (" E", None),  # E is not an option of a 4-option question
])
def test_weak_label_extraction(generation, label):
    task = MultipleChoice(source="mmlu", target="mmlu:dev", test="mmlu:validation")
    assert task.parse(generation, {"choices": ["w", "x", "y", "z"]}) == label


# ---- the full pipeline on tiny random models ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models(hub_root, tmp_path_factory) -> dict[str, Path]:
    """A tiny Qwen3 and a tiny OLMo2, each briefly taught to answer the MMLU and ARC-Easy fixture questions with
    letters that are right on about half of them (so that the source set has both kinds of weak labels)."""
    task = MultipleChoice(source=["mmlu:test", "arc_easy:train"], target="arc_easy:test", test="mmlu:dev",
                          data_dir=str(hub_root))
    splits = task.load()
    examples = [*splits["source"], *splits["target"]]
    answers = [(task.prompt(ex), ex["answer"] if i % 2 else LETTERS[(LETTERS.index(ex["answer"]) + 1) % 3])
               for i, ex in enumerate(examples)]
    root = tmp_path_factory.mktemp("tiny_lms")
    texts = fixture_texts(hub_root)
    return {arch: save_tiny_lm(root / arch, arch, texts, answers=answers) for arch in ("qwen3", "olmo2")}


def fit_paper_config(config: str, model: Path | str, hub_root: Path, cwd: Path, *extra: str):
    return run_main("fit", "--config", str(ROOT / "configs" / config), "--data.task.init_args.data_dir",
                    str(hub_root), "--data.teacher.model", str(model), "--model.model", str(model),
                    "--data.teacher.dtype", "float32", "--model.dtype", "float32", "--trainer.precision", "32",
                    "--trainer.accelerator", "cpu", "--trainer.max_steps", "4", "--trust.init_args.max_epochs", "3",
                    "--trainer.enable_progress_bar", "false", *extra, cwd=cwd)


def put_in_hub_cache(model: Path, hf_home: Path, repo_id: str) -> str:
    """Place a saved model where ``huggingface-cli download repo_id`` would (``$HF_HOME/hub``)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo_id


@pytest.mark.slow(minutes=2)  # trains two tiny hub-architecture LMs first (~1 min)
@pytest.mark.parametrize("config,arch,target,from_cache", [
    ("ntf_mmlu.yaml", "qwen3", 6, True),  # ID: MMLU source, held-out MMLU target and test
    ("ntf_mmlu_to_arc.yaml", "olmo2", 20, False),  # OOD_dist: trust fitted on MMLU, applied to ARC-Easy
])
def test_paper_config_runs_on_tiny_models(hub_root, tiny_models, tmp_path, monkeypatch, config, arch, target,
                                          from_cache):
    model = tiny_models[arch]
    if from_cache:  # the model named by its hub id and served from the local hub cache, offline
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        model = put_in_hub_cache(model, tmp_path / "hf", f"tiny-org/tiny-{arch}")
    proc = fit_paper_config(config, model, hub_root, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(tmp_path.glob("runs/*/version_0/results.json")).read_text())
    assert results["trust"]["name"] == "NeuralTrustFunction"
    assert 0 <= results["trust"]["auc"] <= 1 and 0 <= results["teacher"]["accuracy"]["target"] <= 1
    assert results["selection"]["n"] == round(0.5 * target)
    assert results["teacher"]["unparsed"]["target"] >= 0
    assert 0 <= results["student"]["accuracy"]["final"] <= 1


@pytest.mark.slow(minutes=2)  # the same tiny LMs
def test_five_benchmark_config_reports_each_benchmark_and_the_mean(hub_root, tiny_models, tmp_path):
    proc = fit_paper_config("ntf_avg5.yaml", tiny_models["qwen3"], hub_root, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(tmp_path.glob("runs/*/version_0/results.json")).read_text())
    by = results["student"]["accuracy_by_benchmark"]
    assert set(by) == {"mmlu", "arc_easy", "arc_challenge", "openbookqa", "sciq"}
    for stage in ("base", "final"):
        assert results["student"]["accuracy"][stage] == pytest.approx(np.mean([v[stage] for v in by.values()]))


@pytest.mark.parametrize("config,names", [
    ("ntf_mmlu.yaml", ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "cais/mmlu")),
    ("ntf_math_to_omni.yaml", ("Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B", "DigitalLearningGmbH/MATH-lighteval",
                               "KbsdJames/Omni-MATH")),
])
def test_paper_config_offline_fails_fast_with_one_line(tmp_path, monkeypatch, config, names):
    """No hub (HF_HUB_OFFLINE, an empty HF_HOME): one line naming every missing model and dataset, no files."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.time()
    proc = run_main("fit", "--config", str(ROOT / "configs" / config), cwd=tmp_path / "run")
    assert proc.returncode == 2 and time.time() - start < 30
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in proc.stderr
    for name in (*names, "HF_HUB_OFFLINE", "data_dir", "HF_HOME"):
        assert name in error[0]
    assert list((tmp_path / "run").iterdir()) == []


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("ntf_*.yaml")))
def test_paper_configs_resolve(config, capsys, monkeypatch):
    from w2s.cli import main

    monkeypatch.setattr("sys.argv", ["main.py"])
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(ROOT / "configs" / config), "--print_config"])
    assert exit_.value.code in (0, None)
    printed = capsys.readouterr().out
    math = config.startswith("ntf_math")  # quantitative reasoning trains its student with GRPO
    assert ("w2s.tasks.MathReasoning" if math else "w2s.tasks.MultipleChoice") in printed
    assert ("students.GRPOStudent" if math else "students.LoRASFTStudent") in printed


def test_your_own_jsonl_through_data_overrides_alone(tiny_world, tmp_path):
    """The README's bring-your-own-data command: the toy world's splits as JSONL files with other field names
    (the answer given as the option's text) run through --data overrides, with the same weak labels."""
    from w2s.tasks import LocalMultipleChoice
    from w2s.teacher import Teacher

    stored = datasets.load_from_disk(str(tiny_world / "data"))
    files = {}
    for split in ("source", "target", "test"):
        rows = [{"uid": ex["id"], "prompt_text": ex["question"], "options": ex["choices"],
                 "right": ex["choices"][LETTERS.index(ex["answer"])]} for ex in stored[split]]
        files[split] = write_custom(tmp_path / f"{split}.jsonl", rows)
    fields = ["--data.task.question_field", "prompt_text", "--data.task.choices_field", "options",
              "--data.task.answer_field", "right", "--data.task.id_field", "uid"]
    proc = run_main("fit", "--config", str(ROOT / "configs" / "toy.yaml"), "--data.task", "MultipleChoice",
                    *[a for split, path in files.items() for a in (f"--data.task.{split}", str(path))], *fields,
                    "--data.teacher.model", str(tiny_world / "teacher"), "--model.model", str(tiny_world / "student"),
                    "--trust.init_args.max_epochs", "3", "--trainer.max_steps", "4",
                    "--trainer.enable_progress_bar", "false", cwd=tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next((tmp_path / "run").glob("runs/*/version_0/results.json")).read_text())

    mine = MultipleChoice(source=str(files["source"]), target=str(files["target"]), test=str(files["test"]),
                          question_field="prompt_text", choices_field="options", answer_field="right", id_field="uid")
    teacher = Teacher(str(tiny_world / "teacher"), features=["0:prompt_mean"])
    ours = teacher.label(mine, {"target": mine.load()["target"]})["target"]
    toy = LocalMultipleChoice(str(tiny_world / "data"))
    reference = teacher.label(toy, {"target": toy.load()["target"]})["target"]
    assert ours.weak_labels == reference.weak_labels
    assert results["teacher"]["accuracy"]["target"] == pytest.approx(reference.accuracy)


def test_chat_template_wraps_prompts_for_instruct_models(hub_root, tiny_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from w2s.teacher import Teacher

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["qwen3"])
    task = MultipleChoice(source="mmlu:test", target="mmlu:dev", test="mmlu:validation", data_dir=str(hub_root),
                          chat_template=True)
    split = task.load()["source"].select(range(4))
    with pytest.raises(W2SError, match="has no chat template"):
        task.render(tokenizer, split[0])
    tokenizer.chat_template = ("{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    assert task.render(tokenizer, split[0]) == f"<|user|>{task.prompt(split[0])}<|assistant|>"
    assert not task.add_special_tokens
    model = AutoModelForCausalLM.from_pretrained(tiny_models["qwen3"])
    outputs = Teacher(str(tiny_models["qwen3"]), max_new_tokens=3).run(model, tokenizer, task, split)
    assert len(outputs) == 4 and outputs.hidden.shape[0] == 4
    plain = MultipleChoice(source="mmlu:test", target="mmlu:dev", test="mmlu:validation", data_dir=str(hub_root))
    assert task.fingerprint() != plain.fingerprint()  # a separate teacher cache entry


def test_gradient_checkpointing_student_trains_its_lora_weights(tiny_world):
    """The large-student setting of the paper configs (model.gradient_checkpointing) still trains the adapter."""
    import torch

    from students.sft import LoRASFTStudent

    student = LoRASFTStudent(str(tiny_world / "student"), gradient_checkpointing=True)
    assert student.model.base_model.model.is_gradient_checkpointing
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    loss = student.model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
    loss.backward()
    grads = [p.grad for n, p in student.named_parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("opts,message", [(["only one"], "has 1 options; 2 to"), (["a", " ", "c"], "has an empty option")])
def test_an_option_list_that_cannot_be_asked_is_one_line(tmp_path, opts, message):
    path = write_custom(tmp_path / "mine.jsonl", [{**row, "opts": opts, "gold": opts[0]} for row in CUSTOM])
    with pytest.raises(W2SError, match=message):
        MultipleChoice(source=f"{path}[:50%]", target=f"{path}[50%:75%]", test=f"{path}[75%:]", question_field="q",
                       choices_field="opts", answer_field="gold", id_field="key").load()
