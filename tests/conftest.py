"""Shared fixtures: an isolated cache root and a tiny toy world (built once per test session)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the hub, nor read the user's hub and datasets caches
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="w2s-test-hf-")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def cache_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("w2s_cache")
    os.environ["W2S_CACHE"] = str(root)
    return root


@pytest.fixture(scope="session")
def tiny_spec():
    from w2s.toy.world import WorldSpec

    return WorldSpec(
        seed=0, n_entities=40, test_fraction=0.3,
        teacher=dict(hidden=32, layers=1, steps=150, lr=1e-2, qa_fraction=0.5),
        student=dict(hidden=32, layers=1, steps=150, lr=1e-2, qa_fraction=0.25),
        reward=dict(hidden=32, layers=1, steps=150, lr=1e-2, coverage=0.5), min_skill=0.0,
    )


@pytest.fixture(scope="session")
def tiny_world(cache_root, tiny_spec) -> Path:
    from w2s.toy import ensure_world

    return ensure_world(spec=tiny_spec)


def run_main(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``main.py`` in a subprocess, as a user would."""
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=os.environ.copy(), timeout=timeout)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path) -> CliResult:
    """``main.py``'s command line in this process: the same code path as ``run_main`` without a new interpreter's
    ~10 s of imports. Each test file keeps at least one ``run_main`` run, as a user would start it."""
    from w2s.cli import run_here

    cwd.mkdir(parents=True, exist_ok=True)
    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_argv = os.getcwd(), sys.argv
    os.chdir(cwd)
    sys.argv = ["main.py"]
    try:
        code = run_here(list(args), out, err)
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    return CliResult(code, out.getvalue(), err.getvalue())


def error_message(stderr: str) -> str:
    """The one ``error:`` line of a failed run's stderr with the indented lines that continue it (jsonargparse's
    nested reasons), without the usage text before it: that names every option, so a test that looks for an
    option's name anywhere in stderr cannot fail."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"(\S[^:]*: )?error: ", line)]
    assert len(starts) == 1, f"expected one error line in:\n{stderr[-3000:]}"
    message = [lines[starts[0]]]
    for line in lines[starts[0] + 1:]:
        if line and not line[0].isspace():  # the message has ended (e.g. a log line printed after it)
            break
        message.append(line)
    return "\n".join(message).rstrip()


def synthetic_outputs(n: int, seed: int, d: int = 16, correct=None):
    """Synthetic teacher outputs whose correctness is a nonlinear function of the hidden state."""
    from w2s.teacher import TeacherOutputs

    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(n, d)).astype(np.float32)
    if correct is None:
        correct = (hidden[:, 0] * hidden[:, 1] > 0) | (hidden[:, 2] > 1.0)
    return TeacherOutputs(ids=[str(i) for i in range(n)], generations=["A"] * n, weak_labels=["A"] * n,
                          hidden=hidden, option_logprobs=None, token_logprobs=np.zeros(n, np.float32),
                          token_entropy=np.zeros(n, np.float32), correct=np.asarray(correct))


def tiny_args(world: Path, *extra: str) -> list[str]:
    """CLI arguments that run the whole protocol on the tiny world in a few seconds."""
    return [
        "fit", "--config", str(ROOT / "configs" / "toy.yaml"),
        "--data.task", "w2s.tasks.LocalMultipleChoice", "--data.task.path", str(world / "data"),
        "--data.teacher.model", str(world / "teacher"), "--model.model", str(world / "student"),
        "--trust.init_args.max_epochs", "3", "--trainer.max_steps", "6", "--trainer.enable_progress_bar", "false",
        *extra,
    ]


START = time.time()
CI_TEST_BUDGET_S = float(os.environ.get("W2S_CI_TEST_BUDGET_S", 17 * 60))  # CI's 20 minutes, less the install


def stockfish_missing() -> bool:
    from w2s.errors import W2SError
    from w2s.tasks.stockfish import find_stockfish

    try:
        find_stockfish()
    except W2SError:
        return True
    return False


def pytest_runtest_setup(item):
    """Tests marked ``engine`` need Stockfish: without it they skip, saying so (CI installs it). In CI a slow run
    starts only if it fits in what is left of the budget (``@pytest.mark.slow(minutes=M)``): the default suite
    always runs, the end-to-end runs when time allows."""
    if item.get_closest_marker("engine") is not None and stockfish_missing():
        pytest.skip("Stockfish not installed (apt-get install stockfish)")
    marker = item.get_closest_marker("slow")
    if marker is None or not os.environ.get("CI") or item.config.getoption("markexpr"):
        return
    needed = 60 * marker.kwargs.get("minutes", 10)
    left = CI_TEST_BUDGET_S - (time.time() - START)
    if needed > left:
        pytest.skip(f"slow run needs ~{needed / 60:.0f} min, {max(0.0, left) / 60:.1f} min of the CI budget left; "
                    "run it with: python -m pytest -m slow")


def pytest_collection_modifyitems(config, items):
    """Slow end-to-end runs happen in CI (``CI=true``, when its time allows) or when asked with ``-m slow``."""
    if os.environ.get("CI") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end run: use -m slow (CI runs it when its time allows)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_math_world(cache_root) -> Path:
    """A tiny toy math world (a few dozen problems, models trained for a few steps): plumbing, not skill."""
    from w2s.toy.arithmetic import ArithmeticSpec, ensure_world

    # one-step source problems and 150 teacher steps: the teacher is right on a few (a trust fit needs both)
    spec = ArithmeticSpec(n_source=60, n_target=32, source_steps=(1,),
                          teacher=dict(hidden=32, layers=1, steps=150, lr=1e-2),
                          student=dict(hidden=32, layers=1, steps=40, lr=1e-2), min_skill=0.0)
    return ensure_world(spec=spec)


@pytest.fixture(scope="session")
def tiny_chess_world(cache_root) -> Path:
    """A tiny toy chess world (80 positions labelled at depth 4, models trained for a few steps): plumbing."""
    from w2s.toy.chess_world import ChessSpec, ensure_world

    if stockfish_missing():
        pytest.skip("Stockfish not installed (apt-get install stockfish)")
    spec = ChessSpec(n_source=40, n_target=40, engine_depth=4, teacher_coverage=0.5,
                     teacher=dict(hidden=32, layers=1, steps=150, lr=1e-2, max_length=48),
                     student=dict(hidden=32, layers=1, steps=30, lr=1e-2, max_length=32), min_skill=0.0)
    return ensure_world(spec=spec)
