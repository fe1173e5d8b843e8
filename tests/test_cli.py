"""End to end through ``main.py`` on the tiny toy world, and the bad inputs that must give one clear line."""

import json
import re

import datasets
import pytest
import torch
import yaml

from conftest import ROOT, error_message, run_cli, run_main, tiny_args

REQUIRED = ["teacher.accuracy.source", "teacher.accuracy.target", "trust.auc", "trust.ece", "trust.brier",
            "trust.purity", "selection.n", "student.accuracy.base", "student.accuracy.final"]


def _get(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


def _results(run_dir):
    (log_dir,) = sorted(run_dir.glob("runs/toy/version_*"))
    return log_dir, json.loads((log_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def ntf_run(tiny_world, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("ntf")
    proc = run_main(*tiny_args(tiny_world), cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_fit_writes_results_config_and_tensorboard(ntf_run, tiny_world):
    cwd, proc = ntf_run
    log_dir, results = _results(cwd)
    for key in REQUIRED:
        value = _get(results, key)
        assert isinstance(value, (int, float)), key
    assert 0 <= results["trust"]["purity"] <= 1 and results["selection"]["labels"] == "weak"
    n_target = len(datasets.load_from_disk(tiny_world / "data")["target"])
    config = yaml.safe_load((log_dir / "config.yaml").read_text())  # the resolved config saved beside the run
    assert results["selection"]["n"] == round(config["data"]["selection"]["init_args"]["fraction"] * n_target)
    assert config["trust"]["class_path"].endswith("NeuralTrustFunction")
    assert list(log_dir.glob("events.out.tfevents.*"))
    assert (log_dir / "student_adapter" / "adapter_config.json").exists()
    per_example = (log_dir / "student_test.csv").read_text().splitlines()  # id,correct per test example
    n_test = len(datasets.load_from_disk(tiny_world / "data")["test"])
    assert per_example[0] == "id,correct" and len(per_example) == n_test + 1
    assert sum(int(line.rsplit(",", 1)[1]) for line in per_example[1:]) / n_test == pytest.approx(
        results["student"]["accuracy"]["final"], abs=1e-6)
    assert "student accuracy" in proc.stdout and "purity" in proc.stdout


def test_tensorboard_tags(ntf_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir, _ = _results(ntf_run[0])
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0}).Reload()
    assert {"trust/auc", "trust/ece", "trust/brier", "trust/purity", "student/accuracy",
            "teacher/accuracy/target", "student/accuracy/final"} <= set(events.Tags()["scalars"])
    figures = {"trust/reliability", "trust/roc", "trust/score_histogram", "trust/purity_vs_n"}
    assert figures <= set(events.Tags()["images"])
    for tag in figures:
        (image,) = events.Images(tag)
        assert image.width > 100 and image.height > 100 and image.encoded_image_string.startswith(b"\x89PNG")


@pytest.mark.parametrize("trust,labels,keep_all", [("Naive", "weak", True), ("Random", "weak", False),
                                                   ("GroundTruth", "gold", True), ("Entropy", "weak", False),
                                                   ("LinearProbe", "weak", False), ("ICLConfidence", "weak", False)])
def test_rows_share_the_protocol(ntf_run, tiny_world, tmp_path, cache_root, trust, labels, keep_all):
    _, ntf = _results(ntf_run[0])
    teacher_caches = sorted((cache_root / "teacher").iterdir())
    proc = run_cli(*tiny_args(tiny_world, "--trust", trust), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = sorted((cache_root / "teacher").iterdir())
    if trust == "ICLConfidence":  # the same cached teacher pass, plus its own few-shot pass over the target
        assert set(teacher_caches) < set(after) and len(after) == len(teacher_caches) + 1
    else:
        assert after == teacher_caches  # the same cached teacher pass
    _, results = _results(tmp_path)
    assert results["teacher"] == ntf["teacher"]
    assert results["student"]["accuracy"]["base"] == ntf["student"]["accuracy"]["base"]
    bases = [json.loads(p.read_text())["value"][0] for p in (cache_root / "base").glob("*.json")]
    assert ntf["student"]["accuracy"]["base"] in bases  # measured by the first run, read by the others
    assert results["selection"]["labels"] == labels
    n_target = len(datasets.load_from_disk(tiny_world / "data")["target"])
    assert results["selection"]["n"] == (n_target if keep_all else ntf["selection"]["n"])
    if trust == "GroundTruth":
        assert results["trust"]["purity"] == pytest.approx(results["teacher"]["accuracy"]["target"], abs=1e-6)


def test_a_cached_value_is_computed_once_and_a_corrupt_entry_again(cache_root):
    from w2s.cache import cached_json

    calls = []
    compute = lambda: calls.append(1) or [0.5, {"arc": 0.5}]  # noqa: E731
    assert cached_json("probe", {"k": 1}, compute) == ([0.5, {"arc": 0.5}], False)
    assert cached_json("probe", {"k": 1}, compute) == ([0.5, {"arc": 0.5}], True) and len(calls) == 1
    (entry,) = (cache_root / "probe").glob("*.json")
    entry.write_text('{"value": [0.5')  # cut short
    assert cached_json("probe", {"k": 1}, compute) == ([0.5, {"arc": 0.5}], False) and len(calls) == 2


def test_print_config_shows_trust_block(tiny_world, tmp_path):
    proc = run_cli(*tiny_args(tiny_world, "--trust", "Random", "--print_config"), cwd=tmp_path)
    assert proc.returncode == 0
    assert yaml.safe_load(proc.stdout)["trust"]["class_path"] == "trust_functions.Random"


def _always_right_source(tiny_world, tmp_path, keep_right: bool = True) -> str:
    from w2s.tasks import LocalMultipleChoice
    from w2s.teacher import Teacher

    task = LocalMultipleChoice(str(tiny_world / "data"))
    splits = task.load()
    outputs = Teacher(str(tiny_world / "teacher"), batch_size=64).label(task, {"source": splits["source"]})
    right = [i for i, c in enumerate(outputs["source"].correct) if bool(c) == keep_right]
    datasets.DatasetDict({"source": splits["source"].select(right), "target": splits["target"],
                          "test": splits["test"]}).save_to_disk(tmp_path / "one_class")
    return str(tmp_path / "one_class")


def _dataset(tiny_world, tmp_path, name: str, edit) -> str:
    """A copy of the tiny world's splits changed by ``edit`` (a function of the DatasetDict)."""
    splits = datasets.load_from_disk(str(tiny_world / "data"))
    edit(splits).save_to_disk(tmp_path / name)
    return str(tmp_path / name)


def _nan_teacher(tiny_world, tmp_path) -> str:
    """The tiny teacher with a NaN in its final norm: every hidden state it returns is NaN."""
    from w2s.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(str(tiny_world / "teacher"))
    with torch.no_grad():
        model.model.norm.weight[0] = float("nan")
    model.save_pretrained(tmp_path / "nan_teacher")
    load_tokenizer(str(tiny_world / "teacher")).save_pretrained(tmp_path / "nan_teacher")
    return str(tmp_path / "nan_teacher")


def _damaged_cache(tiny_world, tmp_path, damage) -> list[str]:
    """Run once on a private copy of the data (so the teacher-cache entries are this test's own), then
    ``damage`` each new cache entry; the rerun must refuse it."""
    from w2s.cache import cache_root

    path = _dataset(tiny_world, tmp_path, "copy", lambda d: d)
    before = set((cache_root() / "teacher").glob("*"))
    proc = run_cli(*tiny_args(tiny_world, "--data.task.path", path), cwd=tmp_path / "first")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for entry in set((cache_root() / "teacher").glob("*")) - before:
        damage(entry)
    return ["--data.task.path", path]


def _truncate(entry):
    (entry / "hidden.npy").write_bytes((entry / "hidden.npy").read_bytes()[:100])


def _rekey(entry):
    manifest = json.loads((entry / "manifest.json").read_text())
    (entry / "manifest.json").write_text(json.dumps({**manifest, "key": "another-teacher-0000"}))


@pytest.mark.parametrize("case,expected", [
    ("unknown_trust", "NoSuchTrust"),
    ("misspelt_init_arg", "widht"),
    ("missing_model", "model path 'no/such/dir/model' does not exist"),
    ("n_too_large", "selection.n = 100000 is larger than the target set"),
    ("always_right", "teacher is right on all"),
    ("missing_dataset", "dataset path"),
    ("hub_id_offline", "model 'Qwen/Qwen3-1.7B' (model.model): not in the local Hugging Face cache"),
    ("missing_field", "lacks field(s) ['answer']"),
    ("empty_source", "the 'source' split"),
    ("empty_target", "the 'target' split"),
    ("n_not_positive", "selection.n must be a positive integer"),
    ("fraction_outside", "selection.fraction must be in (0, 1]"),
    ("always_wrong", "teacher is wrong on all"),
    ("nan_hidden_states", "contain NaN/Inf"),
    ("corrupt_cache", "is corrupt"),
    ("cache_of_another_teacher", "another teacher pass"),
    ("yaml_wrong_type", 'Parser key "data.batch_size"'),
    ("unknown_toy_world", "unknown toy world 'nosuch'"),
])
def test_bad_input_gives_one_clear_line(tiny_world, tmp_path, case, expected):
    extra = {
        "unknown_trust": ["--trust", "NoSuchTrust"],
        "misspelt_init_arg": ["--trust.init_args.widht", "3"],
        "missing_model": ["--model.model", "no/such/dir/model"],
        "n_too_large": ["--data.selection.mode", "top_n", "--data.selection.n", "100000"],
        "always_right": lambda: ["--data.task.path", _always_right_source(tiny_world, tmp_path)],
        "missing_dataset": ["--data.task.path", str(tmp_path / "nowhere")],
        "hub_id_offline": ["--model.model", "Qwen/Qwen3-1.7B"],  # HF_HUB_OFFLINE=1 in conftest
        "missing_field": lambda: ["--data.task.path", _dataset(tiny_world, tmp_path, "no_answer", lambda d: (
            datasets.DatasetDict({k: v.remove_columns("answer") for k, v in d.items()})))],
        "empty_source": lambda: ["--data.task.path", _dataset(tiny_world, tmp_path, "empty_source", lambda d: (
            datasets.DatasetDict({**d, "source": d["source"].select([])})))],
        "empty_target": lambda: ["--data.task.path", _dataset(tiny_world, tmp_path, "empty_target", lambda d: (
            datasets.DatasetDict({**d, "target": d["target"].select([])})))],
        "n_not_positive": ["--data.selection.mode", "top_n", "--data.selection.n", "0"],
        "fraction_outside": ["--data.selection.fraction", "1.5"],
        "always_wrong": lambda: ["--data.task.path", _always_right_source(tiny_world, tmp_path, keep_right=False)],
        "nan_hidden_states": lambda: ["--data.teacher.model", _nan_teacher(tiny_world, tmp_path)],
        "corrupt_cache": lambda: _damaged_cache(tiny_world, tmp_path, _truncate),
        "cache_of_another_teacher": lambda: _damaged_cache(tiny_world, tmp_path, _rekey),
        "yaml_wrong_type": ["--data.batch_size", "sixteen"],
        "unknown_toy_world": ["--data.task", "w2s.toy.ToyKnowledge", "--data.task.world", "nosuch"],
    }[case]
    extra = extra() if callable(extra) else extra
    proc = run_cli(*tiny_args(tiny_world, *extra), cwd=tmp_path)
    assert proc.returncode != 0
    assert expected in error_message(proc.stderr)  # not the usage text, which names every option
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("runs/toy/version_*/results.json"))


# what jsonargparse's message says of an init_args name the class does not take, and of a value of the wrong type
PROBLEMS = {"unknown": "Option '{arg}' is not accepted", "type": 'Parser key "{arg}":'}


@pytest.mark.parametrize("trust,arg,value,problem", [
    ("NeuralTrustFunction", "widht", "3", "unknown"), ("NeuralTrustFunction", "depth", "deep", "type"),
    ("LinearProbe", "l2", "strong", "type"), ("LinearProbe", "lambda", "1", "unknown"),
    ("Random", "seed", "x", "type"), ("Entropy", "temperature", "2", "unknown"),
    ("InternalConfidence", "k", "1", "unknown"), ("ICLConfidence", "k", "many", "type"),
    ("ICLConfidence", "shots", "2", "unknown"), ("RewardModel", "fine_tune_steps", "many", "type"),
    ("RewardModel", "modle", "x", "unknown"),
])
def test_wrong_trust_init_args_fail_at_parse_time(tmp_path, trust, arg, value, problem):
    """A wrong init_args name or type is jsonargparse's message, before any model is loaded or world built: the
    message (not the usage text, which names every option) names the trust function and the argument."""
    proc = run_cli("fit", "--config", str(ROOT / "configs" / "toy.yaml"), "--trust", trust,
                   f"--trust.init_args.{arg}", value, "--data.teacher.model", str(tmp_path / "never_loaded"),
                   cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    message = error_message(proc.stderr)
    assert f"class_path 'trust_functions.{trust}'" in message
    assert PROBLEMS[problem].format(arg=arg) in message, message
    if problem == "type":  # "Got value: x", or "Given value: x" where the type is a union such as int | None
        assert re.search(rf"(Got|Given) value: {re.escape(value)}$", message, re.MULTILINE), message
    assert not (tmp_path / "runs").exists()


def test_a_certified_selection_runs_through_fit_and_reports_its_guarantee(tiny_world, tmp_path):
    """selection.mode certified: the trust function is fitted on part of the source set, the rest calibrates the
    threshold, and results.json holds the guarantee beside the realised target purity."""
    proc = run_cli(*tiny_args(tiny_world, "--data.selection.init_args.mode", "certified",
                              "--data.selection.init_args.purity", "0.15", "--data.selection.init_args.delta", "0.2",
                              "--data.selection.init_args.calibration_fraction", "0.5"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, results = _results(tmp_path)
    selection = results["selection"]
    # (the tiny world's teacher is weak: 0.15 is what its 60 calibration examples can certify)
    assert selection["mode"] == "certified" and selection["purity_target"] == 0.15 and selection["delta"] == 0.2
    # (the whole calibration set is certified at 0.15 here: threshold null, every target example kept)
    assert selection["n_calibration"] >= 20 and (selection["threshold"] is None or 0 <= selection["threshold"] <= 1)
    assert selection["threshold"] is not None or selection["n"] == 84  # the tiny world's whole target set
    assert selection["realised_target_purity"] == pytest.approx(results["trust"]["purity"], abs=1e-6)
