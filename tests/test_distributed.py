"""Scale-out through Lightning: the teacher pass and the student under DDP on 2 CPU processes (gloo)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT

from w2s.tasks import LocalMultipleChoice
from w2s.teacher import Teacher, load_outputs


def run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow(minutes=1)  # two processes (~25 s)
def test_teacher_pass_under_ddp_equals_the_single_process_cache(tiny_world, tmp_path):
    teacher_args = {"model": str(tiny_world / "teacher"), "batch_size": 16}  # the trust function's features cached
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"trust": {"class_path": "trust_functions.NeuralTrustFunction",
                                                "init_args": {"features": ["0:prompt_mean"]}},
                                      "model": {"model": str(tiny_world / "student")}, "data": {
        "task": {"class_path": "w2s.tasks.LocalMultipleChoice", "init_args": {"path": str(tiny_world / "data")}},
        "teacher": teacher_args}}))
    ddp_cache = tmp_path / "ddp_cache"
    proc = run(["-m", "w2s.label", "--config", str(config), "--devices", "2", "--accelerator", "cpu",
                "--strategy", "ddp"], {"W2S_CACHE": str(ddp_cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "source:" in proc.stdout and "target:" in proc.stdout

    task, teacher = LocalMultipleChoice(str(tiny_world / "data")), Teacher(**teacher_args, features=["0:prompt_mean"])
    splits = task.load()
    single = teacher.label(task, {"source": splits["source"], "target": splits["target"]})  # one process
    for name, expected in single.items():
        key = teacher.cache_key(task, splits[name])
        merged = load_outputs(ddp_cache / "teacher" / key, key)
        assert merged.ids == expected.ids  # same order
        assert merged.weak_labels == expected.weak_labels and merged.generations == expected.generations
        np.testing.assert_allclose(merged.hidden, expected.hidden, atol=1e-5)
        np.testing.assert_allclose(merged.features["0:prompt_mean"], expected.features["0:prompt_mean"], atol=1e-5)
        np.testing.assert_allclose(merged.option_logprobs, expected.option_logprobs, atol=1e-5)
    assert not list((ddp_cache / "teacher").glob("*.ranks"))  # the per-rank parts are gone


@pytest.mark.slow(minutes=1)  # two processes (~27 s)
def test_student_under_ddp_keeps_identical_adapters_on_both_ranks(tiny_world, tmp_path):
    proc = run([str(ROOT / "tests" / "scripts" / "ddp_student.py"), str(tiny_world), str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{k}.pt") for k in (0, 1)]
    assert ranks[0]["changed"] == ranks[0]["n"] > 0  # every LoRA weight trained
    for name, weight in ranks[0]["weights"].items():
        assert torch.equal(weight, ranks[1]["weights"][name]), name
