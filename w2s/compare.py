"""``python main.py compare``: every row of the paper's table under one protocol, over seeds, resumable.

Each row is one ``fit`` run of the same config with only the trust function swapped (same teacher cache, same
selection size, same student and steps, same seed). Runs land in ``<output_dir>/<row>/seed<k>/`` (results.json,
config.yaml, TensorBoard events); a run whose results.json exists is skipped, so an interrupted compare
resumes where it stopped. The table (mean ± std over seeds, recovery against each seed's ground-truth row) is
written as table.md, table.csv and results.json and printed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from w2s.cache import atomic_write_text, stable_hash
from w2s.errors import W2SError
from w2s.metrics import recovery

# row name -> (table label, trust function; None = the config's own trust function, the method under test)
ROWS: dict[str, tuple[str, str | None]] = {
    "base": ("Base student (no training)", None),
    "naive": ("Naive (all weak labels)", "Naive"),
    "random": ("Random n", "Random"),
    "entropy": ("Entropy", "Entropy"),
    "iconf": ("I-Confidence", "InternalConfidence"),
    "icl": ("ICL + I-Confidence", "ICLConfidence"),
    "reward": ("Reward model", "RewardModel"),
    "probe": ("Linear probe", "LinearProbe"),
    "ntf": ("NTF (config's trust function)", None),
    "gt": ("Ground truth (ceiling)", "GroundTruth"),
}
COLUMNS = ["row", "trust AUC", "ECE", "Brier", "purity@n", "n", "student accuracy", "recovery %"]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="main.py compare", description="Run the comparison table (rows × seeds) of one config.",
        epilog="Any other --key value pair (e.g. --trainer.max_steps 300) is passed to every fit run.")
    parser.add_argument("--config", required=True, type=Path, help="the fit config (e.g. configs/toy.yaml)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seed_everything of each run")
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help=f"rows to run, from: {' '.join(ROWS)}")
    parser.add_argument("--output_dir", type=Path, default=None, help="default: runs/compare/<config name>")
    parser.add_argument("--workers", type=int, default=None,
                        help="runs in parallel, each in its own process with cores/workers threads (default: "
                             "2 when the config trains on CPU and the machine has ≥ 2 cores, else 1)")
    parser.add_argument("--in_process", action="store_true",
                        help="run every fit in this process, one after another (no interpreter start-up per run; "
                             "a debugger can step into a run)")
    parser.add_argument("--trust_args", type=json.loads, default={},
                        help='init_args per row as JSON, e.g. \'{"reward": {"model": "org/rm"}}\'')
    parser.add_argument("--sweep_features", nargs="*", default=None,
                        help="sweep these teacher features (e.g. 0:prompt_mean 1:produced) for the config's "
                             "trust function: AUC on source validation and target, written to sweep.md")
    parser.add_argument("--world_seeds", nargs="+", type=int, default=None,
                        help="toy worlds only: run the table once per world seed (the task's seed and every toy:<seed> "
                             "model name), into <output_dir>/world<w>/, and summarise them in worlds.md")
    parser.add_argument("--sweep_group", default=None,
                        help="example field whose values are held out one at a time for the sweep's source "
                             "validation (e.g. family, subject); default: the trust function's random split")
    args, extra = parser.parse_known_args(argv)
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; choose from {' '.join(ROWS)}")
    if not args.config.is_file():
        parser.error(f"config file {args.config} does not exist")
    args.output_dir = args.output_dir or Path("runs") / "compare" / args.config.stem
    if args.in_process and args.workers not in (None, 1):
        parser.error("--in_process runs one fit at a time; drop --workers")
    if args.in_process:
        args.workers = 1
    elif args.workers is None:
        on_cpu = (yaml.safe_load(args.config.read_text()) or {}).get("trainer", {}).get("accelerator") == "cpu"
        args.workers = 2 if on_cpu and cores() >= 2 and "--trainer.accelerator" not in extra else 1
    if args.workers < 1:
        parser.error("--workers must be ≥ 1")
    return args, extra


def run_args(args: argparse.Namespace, extra: list[str], row: str, seed: int) -> list[str]:
    """The ``fit`` command line of one row and seed."""
    trust = ROWS[row][1]
    init = [f"--trust.init_args.{k}={v if isinstance(v, str) else json.dumps(v)}"
            for k, v in args.trust_args.get(row, {}).items()]
    return ["fit", "--config", str(args.config), *(["--trust", trust] if trust else []), *init,
            "--seed_everything", str(seed),
            "--trainer.logger.class_path", "lightning.pytorch.loggers.TensorBoardLogger",
            "--trainer.logger.init_args.save_dir", str(args.output_dir),
            "--trainer.logger.init_args.name", row, "--trainer.logger.init_args.version", f"seed{seed}",
            "--trainer.logger.init_args.default_hp_metric", "false", *extra]


def check_output_dir(args: argparse.Namespace, extra: list[str]) -> None:
    """Refuse to mix results of different settings in one output directory (resuming needs the same ones)."""
    setting = {"config": args.config.read_text(), "extra": extra, "trust_args": args.trust_args}
    stamp = args.output_dir / "compare.json"
    if stamp.is_file() and json.loads(stamp.read_text())["hash"] != stable_hash(setting):
        raise W2SError(f"{args.output_dir} holds a compare run with a different config or overrides; "
                       "give another --output_dir (or delete that directory) to start afresh")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps({"hash": stable_hash(setting), "config": str(args.config),
                                         "extra": extra, "trust_args": args.trust_args}, indent=2))


def cores() -> int:
    """CPU cores this process may use (respects ``taskset`` and container limits, unlike ``os.cpu_count``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_one(args: argparse.Namespace, extra: list[str], row: str, seed: int, threads: int) -> None:
    """One fit run of the table (``<row>/seed<k>/``, its output in ``<row>/seed<k>.log``)."""
    run_fit(run_args(args, extra, row, seed), args.output_dir / row / f"seed{seed}", threads,
            f"compare run {row}, seed {seed}", args.in_process)


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


def run_rows(args: argparse.Namespace, extra: list[str]) -> dict[str, dict[int, dict]]:
    """Run (or reuse) every trained row for every seed, ``--workers`` at a time; returns results[row][seed]."""
    trained = [r for r in args.rows if r != "base"] or ["naive"]  # base is measured inside every run
    jobs = [(r, s) for s in args.seeds for r in trained]
    todo = [(r, s) for r, s in jobs if not (args.output_dir / r / f"seed{s}" / "results.json").is_file()]
    threads = max(1, cores() // args.workers)
    done = len(jobs) - len(todo)
    print(f"[compare] {len(jobs)} runs, {done} already finished, {args.workers} at a time", flush=True)

    def run(job: tuple[str, int], threads: int = threads) -> tuple[str, int]:
        run_one(args, extra, *job, threads=threads)
        return job

    def finished(row: str, seed: int) -> None:
        nonlocal done
        done += 1
        print(f"[compare] {done}/{len(jobs)} done: {row}, seed {seed}", flush=True)

    # the first run alone, on every core: it fills the teacher cache every later run reads. With one worker every
    # run goes in this thread (an in-process run owns stdout while it runs).
    alone, rest = (todo, []) if args.workers == 1 else (todo[:1], todo[1:])
    for job in alone:
        finished(*run(job, threads=cores()))
    with ThreadPoolExecutor(args.workers) as pool:
        for job in pool.map(run, rest):
            finished(*job)
    return {r: {s: json.loads((args.output_dir / r / f"seed{s}" / "results.json").read_text()) for s in args.seeds}
            for r in trained}


def table_values(results: dict[str, dict[int, dict]], rows: list[str], seeds: list[int]) -> dict[str, dict]:
    """Per row: each column's value per seed (NaN where it does not apply)."""
    nan = float("nan")
    base = {s: next(r[s] for r in results.values() if s in r)["student"]["accuracy"]["base"] for s in seeds}
    gt = {s: results["gt"][s]["student"]["accuracy"]["final"] for s in seeds} if "gt" in results else {}
    # a test split of several benchmarks: one accuracy column each ("student accuracy" is their mean)
    benchmarks = sorted({b for r in results.values() for x in r.values()
                         for b in x["student"].get("accuracy_by_benchmark", {})})
    by = {s: next(r[s] for r in results.values() if s in r)["student"].get("accuracy_by_benchmark", {})
          for s in seeds}
    columns = [*COLUMNS[1:-2], *(f"acc {b}" for b in benchmarks), *COLUMNS[-2:]]
    values: dict[str, dict] = {}
    for row in rows:
        if row == "base":
            per = [{"student accuracy": base[s], "recovery %": 0.0 if gt else nan,
                    **{f"acc {b}": by[s][b]["base"] for b in by[s]}} for s in seeds]
        else:
            per = []
            for s in seeds:
                r = results[row][s]
                acc = r["student"]["accuracy"]["final"]
                scored = r["selection"]["mode"] != "all"  # Naive and GT train on every example: no ranking
                per.append({
                    "trust AUC": r["trust"]["auc"] if scored else nan,
                    "ECE": r["trust"]["ece"] if scored else nan,
                    "Brier": r["trust"]["brier"] if scored else nan,
                    "purity@n": r["trust"]["purity"] if r["selection"]["labels"] == "weak" else nan,
                    "n": r["selection"]["n"],
                    "student accuracy": acc,
                    "recovery %": recovery(acc, base[s], gt[s]) if gt else nan,
                    **{f"acc {b}": v["final"] for b, v in r["student"].get("accuracy_by_benchmark", {}).items()},
                })
        values[row] = {c: [p.get(c, nan) for p in per] for c in columns}
    return values


def fmt(values: list[float], column: str) -> str:
    v = np.asarray(values, dtype=float)
    if np.isnan(v).all():
        return "–"
    if column == "n":
        return str(int(v[0])) if (v == v[0]).all() else f"{v.mean():.0f}"
    digits = 1 if column == "recovery %" else 3
    mean = np.nanmean(v)
    return f"{mean:.{digits}f}" if len(v) == 1 else f"{mean:.{digits}f} ± {np.nanstd(v, ddof=1):.{digits}f}"


def render(values: dict[str, dict], seeds: list[int]) -> tuple[str, str]:
    """Markdown and CSV of the table (mean ± sample std over seeds)."""
    columns = list(next(iter(values.values())))
    lines = [f"| row | {' | '.join(columns)} |", "|" + "---|" * (len(columns) + 1)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", *(f"{c} {k}" for c in columns for k in ("mean", "std"))])
    for row, cols in values.items():
        lines.append(f"| {ROWS[row][0]} | " + " | ".join(fmt(cols[c], c) for c in columns) + " |")
        stats = []
        for c in columns:
            v = np.asarray(cols[c], dtype=float)
            stats += ["", ""] if np.isnan(v).all() else [f"{np.nanmean(v):.6g}",
                                                         f"{np.nanstd(v, ddof=1):.6g}" if len(v) > 1 else ""]
        writer.writerow([row, *stats])
    lines.append(f"\nseeds {', '.join(map(str, seeds))}; mean ± sample std over seeds; accuracy on the test "
                 "split (the mean over its benchmarks when it has several); recovery = (row − base) / (ground truth − base) × 100 per seed.")
    return "\n".join(lines), out.getvalue()


def log_recovery(args: argparse.Namespace, values: dict[str, dict]) -> None:
    """Write each run's recovery into its TensorBoard directory (the HParams dashboard's ``hp/recovery``)."""
    from torch.utils.tensorboard import SummaryWriter

    for row, cols in values.items():
        for seed, rec in zip(args.seeds, cols["recovery %"]):
            if row != "base" and not np.isnan(rec):
                with SummaryWriter(args.output_dir / row / f"seed{seed}") as writer:
                    writer.add_scalar("hp/recovery", rec, 0)


def run_sweep(args: argparse.Namespace) -> list[dict]:
    """Sweep the teacher features of the config's trust function (source-validation and target AUC)."""
    from jsonargparse import ArgumentParser
    from jsonargparse.typing import import_object

    from trust_functions.base import TrustFunction
    from w2s.data import W2SDataModule
    from w2s.sweep import candidate_features, feature_sweep

    config = yaml.safe_load(args.config.read_text())
    teacher = config.setdefault("data", {}).setdefault("teacher", {})
    teacher["features"] = sorted(set(teacher.get("features") or []) | set(args.sweep_features))
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(W2SDataModule, "data", skip={"trust", "student"})
    parser.add_subclass_arguments(TrustFunction, "trust", instantiate=False)
    try:
        cfg = parser.parse_object({"data": config["data"], "trust": config.get("trust")})
    except Exception as e:  # jsonargparse's message names the offending key
        raise W2SError(f"sweep: cannot read {args.config}: {str(e).splitlines()[0]}") from None
    data = parser.instantiate_classes(cfg).data
    outputs = data.teacher_outputs()
    trust_cls = import_object(cfg.trust.class_path)
    init = dict(vars(cfg.trust.init_args or {}))
    if "features" not in init:
        raise W2SError(f"the config's trust function {trust_cls.__name__} takes no features; nothing to sweep")
    groups = None
    if args.sweep_group:
        source = data.splits["source"]
        if args.sweep_group not in source.column_names:
            raise W2SError(f"--sweep_group {args.sweep_group!r} is not a field of the source split "
                           f"(fields: {source.column_names})")
        groups = [str(g) for g in source[args.sweep_group]]
    make = lambda features: trust_cls(**{**init, "features": features})  # noqa: E731
    return feature_sweep(make, outputs["source"], outputs["target"], candidate_features(args.sweep_features),
                         args.seeds, groups)


def render_sweep(sweep: list[dict], group: str | None) -> str:
    validation = f"leave-one-{group}-out" if group else "random split"
    lines = [f"| features | source validation AUC ({validation}) | target AUC (evaluation only) |", "|---|---|---|"]
    for r in sweep:
        mark = " ← best on source" if r["best_on_source"] else ""
        lines.append(f"| {' + '.join(r['features'])}{mark} | {fmt(r['source_val_auc'], 'auc')} | "
                     f"{fmt(r['target_auc'], 'auc')} |")
    return "\n".join(lines)


def _json_safe(obj):
    if isinstance(obj, float) and np.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def compare_one(args: argparse.Namespace, extra: list[str]) -> dict:
    """The sweep and/or the table of one config into ``args.output_dir``; returns its report."""
    check_output_dir(args, extra)
    out = args.output_dir
    report: dict = {"config": str(args.config), "seeds": args.seeds, "rows": args.rows, "overrides": extra}
    if args.sweep_features is not None:
        report["sweep"] = run_sweep(args)
        report["sweep_group"] = args.sweep_group
        text = render_sweep(report["sweep"], args.sweep_group)
        atomic_write_text(out / "sweep.md", text + "\n")
        print("\n" + text, flush=True)
    if args.rows:
        results = run_rows(args, extra)
        values = table_values(results, args.rows, args.seeds)
        markdown, table_csv = render(values, args.seeds)
        report["table"] = values
        first_row = next(iter(results.values()))  # every row reads the same cached teacher pass
        report["teacher_accuracy"] = first_row[args.seeds[0]]["teacher"]["accuracy"]
        report["runs"] = {row: {s: str(out / row / f"seed{s}") for s in args.seeds} for row in results}
        atomic_write_text(out / "table.md", markdown + "\n")
        atomic_write_text(out / "table.csv", table_csv)
        log_recovery(args, values)
        print(f"\n{markdown}\n\n(table.md, table.csv and results.json in {out})")
    atomic_write_text(out / "results.json", json.dumps(_json_safe(report), indent=2))
    sys.stdout.flush()
    return report


def main(argv: list[str]) -> None:
    """Entry point of ``main.py compare``."""
    args, extra = parse_args(argv)
    if args.world_seeds is None:
        compare_one(args, extra)
        return
    from w2s.worlds import compare_worlds

    compare_worlds(args, extra, compare_one)
