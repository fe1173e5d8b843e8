"""``main.py compare`` on the tiny toy world: the table, resuming, the feature sweep and the HParams rows."""

import json

import numpy as np
import pytest
import yaml

from conftest import ROOT, error_message, run_cli, run_main

ROWS = ["base", "naive", "entropy", "reward", "ntf", "gt", "certified"]  # the linear probe row runs in test_cli
# what the tiny world's weak teacher can certify on half its source set (tests/test_cli.py)
CERTIFIABLE = ["--data.selection.init_args.purity", "0.15", "--data.selection.init_args.delta", "0.2",
               "--data.selection.init_args.calibration_fraction", "0.5"]


@pytest.fixture(scope="module")
def tiny_config(tiny_world, tmp_path_factory):
    config = yaml.safe_load((ROOT / "configs" / "toy.yaml").read_text())
    config["data"]["task"] = {"class_path": "w2s.tasks.LocalMultipleChoice",
                              "init_args": {"path": str(tiny_world / "data")}}
    config["data"]["teacher"]["model"] = str(tiny_world / "teacher")
    config["model"]["model"] = str(tiny_world / "student")
    config["trust"].setdefault("init_args", {})["max_epochs"] = 3
    config["trainer"]["max_steps"] = 6
    config["trainer"]["enable_progress_bar"] = False
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def compared(tiny_config, tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    args = ["compare", "--config", str(tiny_config), "--seeds", "0", "1", "--rows", *ROWS, "--output_dir", str(out),
            "--in_process", "--trust_args", json.dumps({"reward": {"model": str(tiny_world / "reward")}}),
            *CERTIFIABLE, "--sweep_features", "0:prompt_mean", "-1:prompt_last", "--sweep_group", "family"]
    proc = run_main(*args, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, args, proc


def test_compare_writes_the_table(compared):
    out, _, proc = compared
    report = json.loads((out / "results.json").read_text())
    table = report["table"]
    assert list(table) == ROWS
    for seed_index in range(2):
        assert table["gt"]["recovery %"][seed_index] == pytest.approx(100.0)
        assert table["base"]["recovery %"][seed_index] == 0.0
        base, gt = table["base"]["student accuracy"][seed_index], table["gt"]["student accuracy"][seed_index]
        naive = table["naive"]["student accuracy"][seed_index]
        assert table["naive"]["recovery %"][seed_index] == pytest.approx((naive - base) / (gt - base) * 100)
    assert all(a is not None and 0 <= a <= 1 for a in table["entropy"]["trust AUC"])
    assert table["naive"]["trust AUC"] == [None, None]  # Naive ranks nothing
    markdown = (out / "table.md").read_text()
    for label in ("Base student", "Naive", "Entropy", "Reward model", "NTF", "Ground truth",
                  "NTF, certified: purity ≥ 0.15 w.p. ≥ 0.8"):
        assert label in markdown and label in proc.stdout
    assert " ± " in markdown
    assert (out / "table.csv").read_text().splitlines()[0].startswith("row,trust AUC mean,trust AUC std")
    for row in ROWS[1:]:
        for seed in (0, 1):
            run = json.loads((out / row / f"seed{seed}" / "results.json").read_text())
            assert run["seed"] == seed
            assert (out / row / f"seed{seed}" / "config.yaml").is_file()



def test_every_row_is_compared_with_ground_truth_and_naive_example_by_example(compared):
    out, _, _ = compared
    report = json.loads((out / "results.json").read_text())
    table, deltas = report["table"], report["deltas"]
    assert set(deltas) == set(ROWS[1:]) and "gt" not in deltas["gt"] and "naive" not in deltas["naive"]
    for row in ROWS[1:]:
        for reference in ("gt", "naive"):
            if row == reference:
                continue
            d = deltas[row][reference]
            mean_difference = np.mean(np.subtract(table[row]["student accuracy"], table[reference]["student accuracy"]))
            assert d["difference"] == pytest.approx(mean_difference, abs=1e-6)  # the per-example files agree
            assert d["low"] <= d["difference"] <= d["high"]
    for row in ROWS[1:]:
        interval = report["intervals"][row]
        (low, high), over_seeds = interval["examples"], interval["seeds"]
        assert low <= np.mean(table[row]["student accuracy"]) <= high and over_seeds is None  # 2 seeds: no t interval
    markdown = (out / "table.md").read_text()
    assert "accuracy 95 % CI: examples; seeds" in markdown
    assert "Δ vs ground truth [95 % CI]" in markdown and "Δ vs Naive [95 % CI]" in markdown
    assert any(mark in markdown for mark in (" ≈ |", " ↑ |", " ↓ |"))


def test_the_certified_row_chooses_n_by_its_guarantee_and_reports_the_realised_purity(compared):
    out, _, _ = compared
    for seed in (0, 1):
        run = json.loads((out / "certified" / f"seed{seed}" / "results.json").read_text())
        selection = run["selection"]
        assert selection["mode"] == "certified" and selection["purity_target"] == 0.15 and selection["delta"] == 0.2
        assert selection["realised_target_purity"] == pytest.approx(run["trust"]["purity"], abs=1e-6)
        config = yaml.safe_load((out / "certified" / f"seed{seed}" / "config.yaml").read_text())
        assert config["trust"]["class_path"] == "trust_functions.NeuralTrustFunction"  # the config's own


def test_every_run_exports_its_trust_scores_and_compare_bootstraps_the_auc(compared):
    from w2s.trust_scores import EVALUATION_COLUMN, read_trust_scores

    out, _, _ = compared
    report = json.loads((out / "results.json").read_text())
    for row in ROWS[1:]:
        run = json.loads((out / row / "seed0" / "results.json").read_text())
        scores = read_trust_scores(out / row / "seed0")
        n_target = len(scores["id"])
        assert sorted(scores["rank"]) == list(range(1, n_target + 1))
        assert scores["selected"].sum() == run["selection"]["n"] - run["selection"]["skipped_unparsed"]
        assert scores[EVALUATION_COLUMN].mean() == pytest.approx(run["teacher"]["accuracy"]["target"])
        if run["trust"]["ranks"]:
            from w2s.metrics import auc

            assert auc(scores["trust_score"], scores[EVALUATION_COLUMN]) == pytest.approx(run["trust"]["auc"], abs=1e-5)
            most_trusted = scores["trust_score"][scores["rank"] == 1][0]
            assert most_trusted == scores["trust_score"].max()
            low, high = report["intervals"][row]["trust_auc"]
            assert low <= np.mean(report["table"][row]["trust AUC"]) <= high
        else:
            assert "trust_auc" not in report["intervals"].get(row, {})
    assert "trust AUC 95 % CI" in (out / "table.md").read_text()


def test_the_feature_sweep_reports_auc_per_feature(compared):
    out, _, _ = compared
    sweep = json.loads((out / "results.json").read_text())["sweep"]
    assert [r["features"] for r in sweep] == [["hidden"], ["0:prompt_mean"], ["-1:prompt_last"],
                                              ["hidden", "0:prompt_mean"], ["hidden", "-1:prompt_last"]]
    assert sum(r["best_on_source"] for r in sweep) == 1
    best = max(sweep, key=lambda r: sum(r["source_val_auc"]))
    assert best["best_on_source"]
    assert all(len(r["target_auc"]) == 2 for r in sweep)
    assert "leave-one-family-out" in (out / "sweep.md").read_text()


def test_compare_resumes_without_rerunning_and_refuses_other_settings(compared, tiny_config):
    out, args, _ = compared
    before = (out / "table.md").read_text()
    sweep = ("--sweep_features", "0:prompt_mean", "-1:prompt_last", "--sweep_group", "family")
    proc = run_cli(*[a for a in args if a not in sweep], cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "12 runs, 12 already finished" in proc.stdout and "done:" not in proc.stdout  # nothing ran again
    assert (out / "table.md").read_text() == before
    proc = run_cli(*args[:-4], "--trainer.max_steps", "7", cwd=out.parent)
    assert proc.returncode == 2
    message = error_message(proc.stderr)  # "--output_dir" alone would be found in the usage text
    assert "holds a compare run with a different config or overrides; give another --output_dir" in message


def test_hparams_and_recovery_reach_tensorboard(compared):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _, _ = compared
    events = EventAccumulator(str(out / "reward" / "seed1")).Reload()
    assert {"hp/student_accuracy", "hp/trust_auc", "hp/recovery"} <= set(events.Tags()["scalars"])
    report = json.loads((out / "results.json").read_text())
    recovery = report["table"]["reward"]["recovery %"][1]
    assert events.Scalars("hp/recovery")[-1].value == pytest.approx(recovery, abs=1e-4)
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugins


def test_unknown_row_fails_at_once(tiny_config):
    proc = run_cli("compare", "--config", str(tiny_config), "--rows", "ntf", "bogus", cwd=tiny_config.parent)
    assert proc.returncode == 2 and "unknown row(s) ['bogus']" in error_message(proc.stderr)


def test_a_failing_run_names_its_row_and_log(tiny_config, tmp_path):
    proc = run_cli("compare", "--config", str(tiny_config), "--seeds", "0", "--rows", "entropy",
                   "--output_dir", str(tmp_path / "out"), "--trust_args", '{"entropy": {"bogus": 1}}', cwd=tmp_path)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: compare run entropy, seed 0 failed") and "seed0.log" in last


def test_a_failed_run_leaves_the_others_and_their_table(tiny_config, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("compare", "--config", str(tiny_config), "--seeds", "0", "--rows", "base", "naive", "entropy",
                   "--output_dir", str(out), "--in_process", "--trust_args", '{"entropy": {"bogus": 1}}', cwd=tmp_path)
    assert proc.returncode == 2 and "compare run entropy, seed 0 failed" in error_message(proc.stderr)
    assert "the table of the finished runs is in" in error_message(proc.stderr)
    markdown = (out / "table.md").read_text()
    assert "| Naive" in markdown and "Failed runs (their cells are left out):\n- Entropy, seed 0: compare run" in markdown
    report = json.loads((out / "results.json").read_text())
    assert list(report["failed"]) == ["entropy/seed0"] and report["table"]["entropy"]["student accuracy"] == [None]


def test_table_has_one_accuracy_column_per_benchmark():
    from w2s.compare import render, table_values

    def result(final: float, by: dict[str, float], mode: str = "fraction") -> dict:
        return {"student": {"accuracy": {"base": 0.2, "final": final},
                            "accuracy_by_benchmark": {b: {"base": 0.1, "final": v} for b, v in by.items()}},
                "trust": {"auc": 0.8, "ece": 0.1, "brier": 0.2, "purity": 0.9, "ranks": mode != "all"},
                "selection": {"mode": mode, "n": 5, "labels": "gold" if mode == "all" else "weak"}}

    results = {"ntf": {0: result(0.5, {"mmlu": 0.4, "arc_easy": 0.6})},
               "gt": {0: result(0.6, {"mmlu": 0.5, "arc_easy": 0.7}, mode="all")}}
    values = table_values(results, ["base", "ntf", "gt"], [0])
    assert values["ntf"]["acc mmlu"] == [0.4] and values["base"]["acc arc_easy"] == [0.1]
    assert values["ntf"]["recovery %"] == [pytest.approx(75.0)]
    markdown, csv_text = render(values, [0], {"base": "Base", "ntf": "NTF", "gt": "Ground truth"})
    assert "| acc arc_easy | acc mmlu | student accuracy |" in markdown and "| Ground truth | – |" in markdown
    assert values["gt"]["trust AUC"] == [pytest.approx(float("nan"), nan_ok=True)]  # a row that ranks nothing
    assert "acc mmlu mean" in csv_text


@pytest.mark.parametrize("name", ["toy.yaml", "toy_math.yaml", "toy_plain.yaml"])
def test_world_seeds_move_every_toy_name_and_the_task_seed(name):
    from w2s.config import resolve_config
    from w2s.worlds import reward_model, world_overrides

    config = resolve_config(["--config", str(ROOT / "configs" / name)])
    overrides = world_overrides(config, 7)
    assert overrides[-2:] == ["--data.task.init_args.seed", "7"]
    names = dict(zip(overrides[::2], overrides[1::2]))
    assert {"--model.init_args.model", "--data.teacher.init_args.model"} <= set(names)
    assert all(v.startswith("toy:") and ("7/" in v) for k, v in names.items() if k != "--data.task.init_args.seed")
    moved = resolve_config(["--config", str(ROOT / "configs" / name), *overrides])
    assert moved["data"]["task"]["init_args"]["seed"] == 7 and "7/" in moved["model"]["init_args"]["model"]
    assert (reward_model(config, 2) is None) == (name == "toy_math.yaml")


def test_world_seeds_need_a_toy_world():
    from w2s.config import resolve_config
    from w2s.errors import W2SError
    from w2s.worlds import reward_model, world_overrides

    plain = resolve_config(["--config", str(ROOT / "configs" / "toy_plain.yaml")])
    assert reward_model(plain, 2) == "toy:plain-2/reward"
    with pytest.raises(W2SError, match="--world_seeds needs a toy-world config"):
        world_overrides(resolve_config(["--config", str(ROOT / "configs" / "ntf_mmlu.yaml")]), 1)


def test_world_summary_has_one_line_per_world_seed_and_their_mean():
    from w2s.worlds import render_worlds

    def report(teacher: float, ntf: float, auc: float) -> dict:
        nan = float("nan")
        return {"teacher_accuracy": {"source": 0.5, "target": teacher},
                "table": {"base": {"student accuracy": [0.2, 0.2], "trust AUC": [nan, nan], "recovery %": [0, 0]},
                          "ntf": {"student accuracy": [ntf, ntf], "trust AUC": [auc, auc], "recovery %": [80, 90]},
                          "gt": {"student accuracy": [0.9, 0.9], "trust AUC": [nan, nan], "recovery %": [100, 100]}}}

    markdown, csv_text, summary = render_worlds({0: report(0.6, 0.8, 0.9), 1: report(0.5, 0.7, 0.8)},
                                                ["base", "ntf", "gt"], {"base": "B", "ntf": "N", "gt": "G"})
    lines = markdown.splitlines()
    assert lines[0] == ("| world seed | teacher (target) | base | ntf | gt | ntf AUC | ntf rec. % | gt rec. % |")
    assert lines[2].startswith("| 0 | 0.600 | 0.200 | 0.800 | 0.900 | 0.900 | 85.0 | 100.0 |")
    assert lines[4].startswith("| mean ± std | 0.550 ± 0.071 | 0.200 ± 0.000 | 0.750 ± 0.071 |")
    assert summary["lines"]["1"]["ntf AUC"] == pytest.approx(0.8) and csv_text.startswith("world seed,")


def test_trust_only_ranks_every_row_without_students(tiny_config, tmp_path):
    """--trust_only: the rows' trust functions on the teacher pass, a paired-bootstrap AUC difference to the
    config's own, and no student run; a row that fails (nothing certifiable at purity 0.999) is listed and the
    others are still tabled."""
    out = tmp_path / "out"
    proc = run_cli("compare", "--config", str(tiny_config), "--seeds", "0", "1", "--rows", "naive", "entropy",
                   "ntf", "certified", "--output_dir", str(out), "--trust_only",
                   "--data.selection.init_args.purity", "0.999", cwd=tmp_path)
    assert proc.returncode == 2 and "row certified, seed 0 failed (no threshold is certified at purity 0.999" in \
        error_message(proc.stderr)
    report = json.loads((out / "trust_table.json").read_text())
    assert report["reference"] == "ntf" and set(report["table"]) == {"naive", "entropy", "ntf", "certified"}
    assert list(report["failed"]) == ["certified/seed0", "certified/seed1"]
    assert report["table"]["certified"]["trust AUC"] == [None, None] and "certified" not in \
        report["auc_difference_vs_reference"]
    assert "Failed runs" in (out / "trust_table.md").read_text()
    assert report["table"]["naive"]["trust AUC"] == [None, None]  # Naive ranks nothing
    entropy = report["table"]["entropy"]["trust AUC"]
    assert entropy[0] == entropy[1] and 0 <= entropy[0] <= 1  # deterministic: the same on both seeds
    interval = report["auc_difference_vs_reference"]["entropy"]
    assert interval["low"] <= interval["difference"] <= interval["high"]
    assert interval["difference"] == pytest.approx(entropy[0] - report["table"]["ntf"]["trust AUC"][0])
    assert not list(out.glob("*/seed*/results.json")) and "| Entropy |" in (out / "trust_table.md").read_text()


def test_the_paired_bootstrap_interval_covers_a_known_difference():
    import torch

    from w2s.trust_only import paired_auc_difference

    generator = torch.Generator().manual_seed(0)
    correct = torch.rand(400, generator=generator) < 0.5
    perfect = correct.float() + 0.01 * torch.rand(400, generator=generator)
    noise = torch.rand(400, generator=generator)
    difference, low, high = paired_auc_difference(perfect, noise, correct, resamples=300)
    assert low < difference < high and 0.35 < low and high <= 0.6  # AUC 1.0 against ~0.5
    same, low, high = paired_auc_difference(noise, noise, correct, resamples=50)
    assert same == low == high == 0.0


def test_default_rows_leave_out_what_cannot_run_on_the_task(capsys):
    """A teacher that answers by likelihood generates nothing to sample: the default rows leave the sampling row
    out and say why; a generating task keeps it."""
    from w2s.compare import parse_args, row_config_args

    args, _ = parse_args(["--config", str(ROOT / "configs" / "real_arc.yaml")])
    assert "sampling" not in args.rows and {"ptrue", "knn", "ntf", "certified"} <= set(args.rows)
    assert "row sampling left out: the teacher scores options by likelihood" in capsys.readouterr().out
    args, _ = parse_args(["--config", str(ROOT / "configs" / "toy.yaml")])
    assert "sampling" in args.rows and args.rows[-2:] == ["logconf", "ntf+logconf"]
    assert args.titles["ntf+logconf"] == "NTF, aux. confidence loss"
    assert row_config_args(args, "logconf")[2:] == ["--trust", "Naive", "--model.init_args.loss=logconf"]
    assert row_config_args(args, "ntf+logconf")[2:] == ["--model.init_args.loss=logconf"]  # the config's own NTF


def test_the_loss_rows_need_a_student_with_a_loss_option(capsys):
    """The GRPO student has no cross-entropy to change: the default rows leave logconf out and say why, asking for
    it is one line, and --trust_only leaves the student-side rows out."""
    from w2s.compare import parse_args

    args, _ = parse_args(["--config", str(ROOT / "configs" / "toy_math.yaml")])
    assert "logconf" not in args.rows and "ntf+logconf" not in args.rows
    assert "row logconf left out: the student GRPOStudent has no loss option" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse_args(["--config", str(ROOT / "configs" / "toy_math.yaml"), "--rows", "base", "logconf"])
    assert "row logconf cannot run on this config: the student GRPOStudent has no loss option" in \
        capsys.readouterr().err
    args, _ = parse_args(["--config", str(ROOT / "configs" / "toy.yaml"), "--trust_only"])
    assert "logconf" not in args.rows and "certified" in args.rows
    capsys.readouterr()
    args, _ = parse_args(["--config", str(ROOT / "configs" / "toy.yaml"), "--trust_only", "--rows", "naive",
                          "ntf+logconf", "ntf"])  # asked for by name: left out the same way, saying so
    assert args.rows == ["naive", "ntf"]
    assert "row ntf+logconf left out: it differs from its trust function's row on the student side only" in \
        capsys.readouterr().out
