"""What ``compare`` and ``chain`` share: their command line, one ``fit`` run (in its own process or in this one),
the stamp that keeps one output directory to one setting, and the table cells."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np

from w2s.cache import atomic_write_text, stable_hash
from w2s.errors import W2SError


def command_parser(prog: str, description: str, seeds: list[int], config_help: str) -> argparse.ArgumentParser:
    """The options every multi-run command has: ``--config``, ``--seeds``, ``--output_dir``, ``--in_process``."""
    parser = argparse.ArgumentParser(
        prog=f"main.py {prog}", description=description,
        epilog="Any other --key value pair (e.g. --trainer.max_steps 300) is passed to every fit run.")
    parser.add_argument("--config", required=True, type=Path, help=config_help)
    parser.add_argument("--seeds", nargs="+", type=int, default=seeds, help="seed_everything of each run")
    parser.add_argument("--output_dir", type=Path, default=None, help=f"default: runs/{prog}/<config name>")
    parser.add_argument("--in_process", action="store_true",
                        help="run every fit in this process, one after another (no interpreter start-up per run; "
                             "a debugger can step into a run)")
    return parser


def parse_command(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parsed options and the overrides left for the fit runs; the config must exist."""
    args, extra = parser.parse_known_args(argv)
    if not args.config.is_file():
        parser.error(f"config file {args.config} does not exist")
    args.output_dir = args.output_dir or Path("runs") / parser.prog.split()[-1] / args.config.stem
    return args, extra


def logger_args(save_dir: Path, name: str, version: str) -> list[str]:
    """``fit`` arguments that log a run into ``save_dir/name/version`` with TensorBoard."""
    return ["--trainer.logger.class_path", "lightning.pytorch.loggers.TensorBoardLogger",
            "--trainer.logger.init_args.save_dir", str(save_dir), "--trainer.logger.init_args.name", name,
            "--trainer.logger.init_args.version", version, "--trainer.logger.init_args.default_hp_metric", "false"]


def stamp_output_dir(out: Path, stamp: str, setting: dict, what: str) -> None:
    """Refuse to mix results of different settings in one output directory (resuming needs the same ones)."""
    path = out / stamp
    if path.is_file() and json.loads(path.read_text())["hash"] != stable_hash(setting):
        raise W2SError(f"{out} holds a {what} with a different config or overrides; give another --output_dir "
                       "(or delete that directory) to start afresh")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"hash": stable_hash(setting), **setting}, indent=2, default=str))


def cores() -> int:
    """CPU cores this process may use (respects ``taskset`` and container limits, unlike ``os.cpu_count``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fit_in_subprocess(fit_args: list[str], log: Path, threads: int) -> int:
    root = str(Path(__file__).resolve().parents[1])  # the checkout, also when it is not pip-installed
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as f:
        return subprocess.run([sys.executable, "-m", "w2s.cli", *fit_args], stdout=f, stderr=subprocess.STDOUT,
                              env=env).returncode


def fit_here(fit_args: list[str], log: Path, threads: int) -> int:
    import torch

    from w2s.cli import run_here

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    with open(log, "w") as f:
        try:
            return run_here(fit_args, f, f)
        except Exception:  # noqa: BLE001  (the run's own failure, as its process would report it)
            traceback.print_exc(file=f)
            return 1
        finally:
            torch.set_num_threads(before)


def run_fit(fit_args: list[str], run_dir: Path, threads: int, what: str, in_process: bool = False) -> dict:
    """One ``fit``, logging into ``run_dir`` (its output in ``run_dir``.log); returns its results.json. It runs in
    its own process, or with ``in_process`` in this one (no interpreter start-up; a debugger can step into it). An
    interrupted run restarts clean; a failure raises its ``error:`` line (or its last line)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    log = run_dir.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    returncode = fit_here(fit_args, log, threads) if in_process else fit_in_subprocess(fit_args, log, threads)
    if returncode != 0 or not (run_dir / "results.json").is_file():
        lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
        raise W2SError(f"{what} failed ({last.removeprefix('error: ')}); log: {log}")
    return json.loads((run_dir / "results.json").read_text())


def fmt(values: list[float], column: str) -> str:
    """A table cell: the mean over seeds ± their sample std ("–" where the column does not apply)."""
    v = np.asarray(values, dtype=float)
    if np.isnan(v).all():
        return "–"
    if column == "n":
        v = v[~np.isnan(v)]
        return str(int(v[0])) if (v == v[0]).all() else f"{v.mean():.0f} ± {v.std(ddof=1):.0f}"
    digits = 1 if column == "recovery %" else 3
    mean, finite = np.nanmean(v), int((~np.isnan(v)).sum())
    return f"{mean:.{digits}f}" if finite == 1 else f"{mean:.{digits}f} ± {np.nanstd(v, ddof=1):.{digits}f}"


def json_safe(obj):
    """``obj`` with NaN as ``null`` and every key a string (strict JSON)."""
    if isinstance(obj, float) and np.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
