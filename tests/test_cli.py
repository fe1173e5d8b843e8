"""End to end through ``main.py`` on the tiny toy world, and the bad inputs that must give one clear line."""

import json

import datasets
import pytest
import yaml

from conftest import ROOT, run_main, tiny_args

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
    proc = run_main(*tiny_args(tiny_world, "--trust", trust), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = sorted((cache_root / "teacher").iterdir())
    if trust == "ICLConfidence":  # the same cached teacher pass, plus its own few-shot pass over the target
        assert set(teacher_caches) < set(after) and len(after) == len(teacher_caches) + 1
    else:
        assert after == teacher_caches  # the same cached teacher pass
    _, results = _results(tmp_path)
    assert results["teacher"] == ntf["teacher"]
    assert results["student"]["accuracy"]["base"] == ntf["student"]["accuracy"]["base"]
    assert results["selection"]["labels"] == labels
    n_target = len(datasets.load_from_disk(tiny_world / "data")["target"])
    assert results["selection"]["n"] == (n_target if keep_all else ntf["selection"]["n"])
    if trust == "GroundTruth":
        assert results["trust"]["purity"] == pytest.approx(results["teacher"]["accuracy"]["target"], abs=1e-6)


def test_print_config_shows_trust_block(tiny_world):
    proc = run_main(*tiny_args(tiny_world, "--trust", "Random", "--print_config"))
    assert proc.returncode == 0
    assert yaml.safe_load(proc.stdout)["trust"]["class_path"] == "trust_functions.Random"


def _always_right_source(tiny_world, tmp_path) -> str:
    from w2s.tasks import LocalMultipleChoice
    from w2s.teacher import Teacher

    task = LocalMultipleChoice(str(tiny_world / "data"))
    splits = task.load()
    outputs = Teacher(str(tiny_world / "teacher"), batch_size=64).label(task, {"source": splits["source"]})
    right = [i for i, c in enumerate(outputs["source"].correct) if c]
    datasets.DatasetDict({"source": splits["source"].select(right), "target": splits["target"],
                          "test": splits["test"]}).save_to_disk(tmp_path / "always_right")
    return str(tmp_path / "always_right")


@pytest.mark.parametrize("case,expected", [
    ("unknown_trust", "NoSuchTrust"),
    ("misspelt_init_arg", "widht"),
    ("missing_model", "model path 'no/such/dir/model' does not exist"),
    ("n_too_large", "selection.n = 100000 is larger than the target set"),
    ("always_right", "teacher is right on all"),
    ("missing_dataset", "dataset path"),
    ("hub_id_offline", "could not load model 'Qwen/Qwen3-1.7B'"),
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
    }[case]
    extra = extra() if callable(extra) else extra
    proc = run_main(*tiny_args(tiny_world, *extra), cwd=tmp_path)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("runs/toy/version_*/results.json"))


@pytest.mark.parametrize("trust,arg,value", [
    ("NeuralTrustFunction", "widht", "3"), ("NeuralTrustFunction", "depth", "deep"),
    ("LinearProbe", "l2", "strong"), ("LinearProbe", "lambda", "1"),
    ("Random", "seed", "x"), ("Entropy", "temperature", "2"), ("InternalConfidence", "k", "1"),
    ("ICLConfidence", "k", "many"), ("ICLConfidence", "shots", "2"),
    ("RewardModel", "fine_tune_steps", "many"), ("RewardModel", "modle", "x"),
])
def test_wrong_trust_init_args_fail_at_parse_time(tmp_path, trust, arg, value):
    """A wrong init_args name or type is jsonargparse's message, before any model is loaded or world built."""
    proc = run_main("fit", "--config", str(ROOT / "configs" / "toy.yaml"), "--trust", trust,
                    f"--trust.init_args.{arg}", value, "--data.teacher.model", str(tmp_path / "never_loaded"),
                    cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert arg in proc.stderr or value in proc.stderr
    assert not (tmp_path / "runs").exists()
