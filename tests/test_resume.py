"""A run killed with SIGKILL during the teacher pass and again during student training resumes to the same
results as a run that was never interrupted, without redoing finished work."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, tiny_args

SLOW_PASS = ["--data.teacher.shard_size", "4", "--data.teacher.batch_size", "4", "--trainer.max_steps", "150"]


def _start(tiny_world, cwd: Path, data: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    args = tiny_args(tiny_world, *SLOW_PASS, "--data.task.path", str(data))
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd,
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _finish(tiny_world, cwd: Path, data: Path) -> tuple[str, dict]:
    proc = _start(tiny_world, cwd, data)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    (results,) = [p for p in cwd.glob("runs/toy/version_*/results.json")]
    return stderr, json.loads(results.read_text())


@pytest.mark.slow(minutes=1)  # two killed runs and a resume (~48 s)
def test_sigkill_during_teacher_pass_and_training_then_resume(tiny_world, cache_root, tmp_path):
    data = tmp_path / "data"  # a private copy: its teacher pass is this test's own, never cached by another test
    shutil.copytree(tiny_world / "data", data)
    teacher_cache = cache_root / "teacher"
    before = set(teacher_cache.glob("*")) if teacher_cache.exists() else set()

    def shards_done() -> int:
        return sum(len(list(p.glob("shard-*/manifest.json"))) for p in teacher_cache.glob("*.partial"))

    run = tmp_path / "interrupted"
    _kill_when(_start(tiny_world, run, data), lambda: shards_done() >= 2)
    assert not {p for p in teacher_cache.glob("*") if not p.name.endswith(".partial")} - before  # nothing half-done

    proc = _start(tiny_world, run, data)
    _kill_when(proc, lambda: any(run.glob("runs/toy/version_*/checkpoints/last.ckpt")))
    stderr = proc.stderr.read()
    assert "shards read back from an interrupted pass" in stderr
    (checkpoint,) = run.glob("runs/toy/version_*/checkpoints/last.ckpt")
    assert not list(run.glob("runs/toy/version_*/results.json"))
    passes = {p: (p / "manifest.json").stat().st_mtime for p in teacher_cache.glob("*") if p.is_dir()
              and not p.name.endswith(".partial") and p not in before}
    assert passes  # the teacher pass finished during the second attempt

    stderr, resumed = _finish(tiny_world, run, data)
    assert f"resuming the interrupted run in runs/toy/{checkpoint.parent.parent.name}" in stderr
    assert "teacher pass" not in stderr  # the finished teacher pass was read from the cache, not redone
    assert {p: (p / "manifest.json").stat().st_mtime for p in passes} == passes
    assert (checkpoint.parent.parent / "results.json").is_file()

    # the uninterrupted run goes in this process: the same results also say that in-process runs (compare and
    # chain --in_process) match the ones in a process of their own
    proc = run_cli(*tiny_args(tiny_world, *SLOW_PASS, "--data.task.path", str(data)), cwd=tmp_path / "uninterrupted")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "uninterrupted").glob("runs/toy/version_*/results.json")
    assert resumed == json.loads(results.read_text())
