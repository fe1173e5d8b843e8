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
import inspect
import io
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
from jsonargparse.typing import import_object

from trust_functions import ROWS
from trust_functions.base import TrustFunction
from w2s.cache import atomic_write_text
from w2s.config import resolve_config
from w2s.errors import W2SError
from w2s.metrics import recovery
from w2s.runs import command_parser, cores, fmt, json_safe, logger_args, parse_command, run_fit, stamp_output_dir

BASE = "base"  # the student before training: measured inside every run, not a run of its own


def student_has_loss(config: dict) -> str | None:
    """Why the config's student cannot take a ``loss`` option (``None`` when it can)."""
    student = import_object(config["model"]["class_path"])
    if "loss" in inspect.signature(student.__init__).parameters:
        return None
    return f"the student {student.__name__} has no loss option"


@dataclass(frozen=True)
class Variant:
    """A row that runs a trust function with a few overrides (another selection, another student loss): the
    overrides, a function of the resolved config giving its label, the row whose trust function it runs (the
    config's own when ``None``), whether it differs on the student side only (``compare --trust_only`` leaves it
    out) and why it cannot run on a config (``None``: it can)."""

    overrides: tuple[str, ...]
    title: Callable[[dict], str]
    trust: str | None = None
    student_side: bool = False
    unsupported: Callable[[dict], str | None] = lambda config: None


LOGCONF = ("--model.init_args.loss=logconf",)
VARIANTS = {
    # the certified selection of the config's own trust function, n chosen at the config's purity and delta
    "certified": Variant(("--data.selection.mode=certified",), lambda c: (
        f"certified: purity ≥ {c['data']['selection']['init_args']['purity']:g} w.p. ≥ "
        f"{1 - c['data']['selection']['init_args']['delta']:g}")),
    # Burns et al.'s auxiliary confidence loss on every weak label, and on the NTF's trusted subset
    "logconf": Variant(LOGCONF, lambda c: "aux. confidence loss", "naive", True, student_has_loss),
    "ntf+logconf": Variant(LOGCONF, lambda c: "aux. confidence loss", "ntf", True, student_has_loss),
}
COLUMNS = ["row", "trust AUC", "PRR", "AURC", "ECE", "Brier", "purity@n", "n", "student accuracy", "recovery %"]


def table_rows(own: type[TrustFunction]) -> dict[str, type[TrustFunction]]:
    """The rows a compare can run: every registered trust function, and the config's own when it declares a row
    of its own (a trust function of yours joins the table by declaring ``row`` and ``title``)."""
    return {**ROWS, **({own.row: own} if own.row and own.row not in ROWS else {})}


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = command_parser("compare", "Run the comparison table (rows × seeds) of one config.", [0, 1, 2],
                            "the fit config (e.g. configs/toy.yaml)")
    parser.add_argument("--rows", nargs="*", default=None,
                        help=f"rows to run (default: all): {BASE} {' '.join(ROWS)}, the config's own trust "
                             f"function's row, and the variant rows certified (the config's own trust function with "
                             "a certified selection at the config's selection.purity and delta), logconf and "
                             "ntf+logconf (Naive and NTF with Burns et al.'s auxiliary confidence loss)")
    parser.add_argument("--workers", type=int, default=None,
                        help="runs in parallel, each in its own process with cores/workers threads (default: "
                             "2 when the config trains on CPU and the machine has ≥ 2 cores, else 1)")
    parser.add_argument("--trust_args", type=json.loads, default={},
                        help='init_args per row as JSON, e.g. \'{"reward": {"model": "org/rm"}}\'')
    parser.add_argument("--sweep_features", nargs="*", default=None,
                        help="sweep these teacher features (e.g. 0:prompt_mean 1:produced) for the config's "
                             "trust function: AUC on source validation and target, written to sweep.md")
    parser.add_argument("--world_seeds", nargs="+", type=int, default=None,
                        help="toy worlds only: run the table once per world seed (the task's seed and every toy:<seed> "
                             "model name), into <output_dir>/world<w>/, and summarise them in worlds.md")
    parser.add_argument("--trust_only", action="store_true",
                        help="only the trust functions: every row's teacher pass, trust fit and selection, no "
                             "student (AUC, ECE, Brier, purity; a paired-bootstrap AUC difference to the config's "
                             "own trust function), into trust_table.md")
    parser.add_argument("--sweep_group", default=None,
                        help="example field whose values are held out one at a time for the sweep's source "
                             "validation (e.g. family, subject); default: the trust function's random split")
    # a feature of a layer counted from the end ("-1:prompt_last") is a value, not an option (argparse reads a
    # token that starts with "-" as an option unless it looks like a negative number)
    parser._negative_number_matcher = re.compile(r"^-\d+(:\w+)?$|^-\d*\.\d+$")
    args, extra = parse_command(parser, argv)
    args.resolved = resolve_config(["--config", str(args.config), *extra])
    args.own = import_object(args.resolved["trust"]["class_path"])
    args.table = table_rows(args.own)
    args.titles = {BASE: "Base student (no training)", **{r: c.title or c.__name__ for r, c in args.table.items()}}
    args.titles |= {r: f"{args.titles[v.trust] if v.trust else args.own.title or args.own.__name__}, "
                       f"{v.title(args.resolved)}" for r, v in VARIANTS.items()}
    if args.rows is None:  # every row that can run on the config's task and student
        from w2s.config import instantiate

        task = instantiate(args.resolved["data"]["task"])
        left_out = {r: why for r, c in args.table.items() if (why := c.unsupported(task))}
        for row, variant in VARIANTS.items():
            if why := variant.unsupported(args.resolved):
                left_out[row] = why
        for row, why in left_out.items():
            print(f"[compare] row {row} left out: {why}", flush=True)
        args.rows = [BASE, *(r for r in [*args.table, *VARIANTS] if r not in left_out)]
    unknown = [r for r in args.rows if r != BASE and r not in args.table and r not in VARIANTS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; choose from {BASE} {' '.join(args.table)} {' '.join(VARIANTS)}")
    for row in args.rows:
        if row in VARIANTS and (why := VARIANTS[row].unsupported(args.resolved)):
            parser.error(f"row {row} cannot run on this config: {why}")
    if args.trust_only:  # default or asked for: such a row has the same trust scores as its trust function's row
        for row in [r for r in args.rows if r in VARIANTS and VARIANTS[r].student_side]:
            print(f"[compare] row {row} left out: it differs from its trust function's row on the student side only",
                  flush=True)
        args.rows = [r for r in args.rows if not (r in VARIANTS and VARIANTS[r].student_side)]
    if args.in_process and args.workers not in (None, 1):
        parser.error("--in_process runs one fit at a time; drop --workers")
    if args.in_process:
        args.workers = 1
    elif args.workers is None:
        on_cpu = args.resolved["trainer"].get("accelerator") == "cpu"
        args.workers = 2 if on_cpu and cores() >= 2 else 1
    if args.workers < 1:
        parser.error("--workers must be ≥ 1")
    return args, extra


def row_config_args(args: argparse.Namespace, row: str) -> list[str]:
    """The config of one row: the compare's config, its trust function swapped for the row's (the config's own
    trust function keeps its settings; a variant row runs it with the variant's overrides) and the row's
    init_args."""
    variant = VARIANTS.get(row)
    cls = args.table[variant.trust] if variant and variant.trust else args.own if variant else args.table[row]
    trust = [] if cls is args.own else ["--trust", cls.__name__]
    init = [f"--trust.init_args.{k}={v if isinstance(v, str) else json.dumps(v)}"
            for k, v in args.trust_args.get(row, {}).items()]
    return ["--config", str(args.config), *trust, *init, *(variant.overrides if variant else ())]


def run_args(args: argparse.Namespace, extra: list[str], row: str, seed: int) -> list[str]:
    """The ``fit`` command line of one row and seed: the row's config, the seed and where it logs."""
    return ["fit", *row_config_args(args, row), "--seed_everything", str(seed),
            *logger_args(args.output_dir, row, f"seed{seed}"), *extra]


def run_one(args: argparse.Namespace, extra: list[str], row: str, seed: int, threads: int) -> None:
    """One fit run of the table (``<row>/seed<k>/``, its output in ``<row>/seed<k>.log``)."""
    run_fit(run_args(args, extra, row, seed), args.output_dir / row / f"seed{seed}", threads,
            f"compare run {row}, seed {seed}", args.in_process)


def run_rows(args: argparse.Namespace, extra: list[str]) -> tuple[dict[str, dict[int, dict]], dict]:
    """Run (or reuse) every trained row for every seed, ``--workers`` at a time; returns results[row][seed] of the
    finished runs and, per failed run, its error. A failed run does not stop the others (e.g. a certified selection
    that certifies no target example on one seed is a result): the table is made of what finished, and compare
    fails at the end, naming every failed run."""
    trained = [r for r in args.rows if r != BASE] or ["naive"]  # base is measured inside every run
    jobs = [(r, s) for s in args.seeds for r in trained]
    todo = [(r, s) for r, s in jobs if not (args.output_dir / r / f"seed{s}" / "results.json").is_file()]
    threads = max(1, cores() // args.workers)
    done = len(jobs) - len(todo)
    print(f"[compare] {len(jobs)} runs, {done} already finished, {args.workers} at a time", flush=True)

    failed: dict[tuple[str, int], str] = {}

    def run(job: tuple[str, int], threads: int = threads) -> tuple[str, int]:
        try:
            run_one(args, extra, *job, threads=threads)
        except W2SError as e:
            failed[job] = str(e)
        return job

    def finished(row: str, seed: int) -> None:
        nonlocal done
        done += 1
        state = "failed" if (row, seed) in failed else "done"
        print(f"[compare] {done}/{len(jobs)} {state}: {row}, seed {seed}", flush=True)

    # the first run alone, on every core: it fills the teacher cache every later run reads. With one worker every
    # run goes in this thread (an in-process run owns stdout while it runs).
    alone, rest = (todo, []) if args.workers == 1 else (todo[:1], todo[1:])
    for job in alone:
        finished(*run(job, threads=cores()))
    with ThreadPoolExecutor(args.workers) as pool:
        for job in pool.map(run, rest):
            finished(*job)
    results = {r: {s: json.loads((args.output_dir / r / f"seed{s}" / "results.json").read_text())
                   for s in args.seeds if (r, s) not in failed} for r in trained}
    return {r: per for r, per in results.items() if per}, failed


def table_values(results: dict[str, dict[int, dict]], rows: list[str], seeds: list[int]) -> dict[str, dict]:
    """Per row: each column's value per seed (NaN where it does not apply)."""
    nan = float("nan")
    base = {s: next(r[s] for r in results.values() if s in r)["student"]["accuracy"]["base"] for s in seeds}
    gt = {s: x["student"]["accuracy"]["final"] for s, x in results.get("gt", {}).items()}
    # a test split of several benchmarks: one accuracy column each ("student accuracy" is their mean)
    benchmarks = sorted({b for r in results.values() for x in r.values()
                         for b in x["student"].get("accuracy_by_benchmark", {})})
    by = {s: next(r[s] for r in results.values() if s in r)["student"].get("accuracy_by_benchmark", {})
          for s in seeds}
    columns = [*COLUMNS[1:-2], *(f"acc {b}" for b in benchmarks), *COLUMNS[-2:]]
    values: dict[str, dict] = {}
    for row in rows:
        if row == BASE:
            per = [{"student accuracy": base[s], "recovery %": 0.0 if gt else nan,
                    **{f"acc {b}": by[s][b]["base"] for b in by[s]}} for s in seeds]
        else:
            per = []
            for s in seeds:
                if s not in results.get(row, {}):  # a failed run: NaN in every column
                    per.append({})
                    continue
                r = results[row][s]
                acc = r["student"]["accuracy"]["final"]
                scored = r["trust"]["ranks"]  # Naive and GT train on every example: they rank nothing
                per.append({
                    "trust AUC": r["trust"]["auc"] if scored else nan,
                    "PRR": r["trust"].get("prr", nan) if scored else nan,  # (runs before PRR/AURC lack them)
                    "AURC": r["trust"].get("aurc", nan) if scored else nan,
                    "ECE": r["trust"]["ece"] if scored else nan,
                    "Brier": r["trust"]["brier"] if scored else nan,
                    "purity@n": r["trust"]["purity"] if r["selection"]["labels"] == "weak" else nan,
                    "n": r["selection"]["n"],
                    "student accuracy": acc,
                    "recovery %": recovery(acc, base[s], gt[s]) if s in gt else nan,
                    **{f"acc {b}": v["final"] for b, v in r["student"].get("accuracy_by_benchmark", {}).items()},
                })
        values[row] = {c: [p.get(c, nan) for p in per] for c in columns}
    return values


DELTA_REFERENCES = {"gt": "Δ vs ground truth", "naive": "Δ vs Naive"}


def example_statistics(args: argparse.Namespace, results: dict[str, dict[int, dict]]) -> tuple[dict, dict]:
    """From each run's per-example files (rows without them are left out): per row, 95 % intervals of its accuracy
    (``student_test.csv``: over test examples by bootstrap, the same resamples for every row, and with ≥ 3 seeds
    over seeds) and of its trust AUC (``trust_scores.parquet``: over target examples), and its accuracy minus
    ground truth's and Naive's, averaged over seeds, with a 95 % paired bootstrap interval."""
    from w2s.intervals import accuracy_statistics, auc_interval, correctness_matrix
    from w2s.trust_scores import EVALUATION_COLUMN, read_trust_scores

    runs = {row: [args.output_dir / row / f"seed{s}" for s in args.seeds] for row in results}
    tested = {row: m for row, dirs in runs.items() if (m := correctness_matrix(dirs)) is not None}
    ids = next(iter(tested.values()))[0] if tested else None
    intervals, deltas = accuracy_statistics({row: m for row, (i, m) in tested.items() if i == ids},
                                            list(DELTA_REFERENCES))
    for row, dirs in runs.items():
        scored = [read_trust_scores(d) for d in dirs]
        if next(iter(results[row].values()))["trust"]["ranks"] and all(t is not None for t in scored):
            correct = scored[0][EVALUATION_COLUMN].astype(bool)
            if correct.any() and not correct.all():
                interval = auc_interval(np.stack([t["trust_score"] for t in scored]), correct)
                intervals.setdefault(row, {})["trust_auc"] = interval
    return intervals, deltas


def render(values: dict[str, dict], seeds: list[int], titles: dict[str, str], intervals: dict | None = None,
           deltas: dict[str, dict[str, tuple]] | None = None) -> tuple[str, str]:
    """Markdown and CSV of the table (mean ± sample std over seeds; each row's accuracy intervals and its paired
    difference to ground truth and Naive where ``intervals`` / ``deltas`` have them); ``titles``: row labels."""
    from w2s.intervals import verdict

    intervals, deltas = intervals or {}, deltas or {}
    columns = list(next(iter(values.values())))
    shown = [r for r in DELTA_REFERENCES if any(r in d for d in deltas.values())]
    accuracy = any("examples" in i for i in intervals.values())
    auc = any("trust_auc" in i for i in intervals.values())
    headers = [*columns, *(["trust AUC 95 % CI"] if auc else []),
               *(["accuracy 95 % CI: examples; seeds"] if accuracy else []),
               *(f"{DELTA_REFERENCES[r]} [95 % CI]" for r in shown)]
    lines = [f"| row | {' | '.join(headers)} |", "|" + "---|" * (len(headers) + 1)]
    out = io.StringIO()
    writer = csv.writer(out)
    bounds = [name for name, shown_ in (("trust_auc", auc), ("examples", accuracy), ("seeds", accuracy)) if shown_]
    writer.writerow(["row", *(f"{c} {k}" for c in columns for k in ("mean", "std")),
                     *(f"{name} 95% {k}" for name in bounds for k in ("low", "high")),
                     *(f"delta vs {r} {k}" for r in shown for k in ("mean", "low", "high"))])
    for row, cols in values.items():
        cells = [fmt(cols[c], c) for c in columns]
        i = intervals.get(row, {})
        if auc:
            cells.append(f"[{i['trust_auc'][0]:.3f}, {i['trust_auc'][1]:.3f}]" if "trust_auc" in i else "–")
        if accuracy:
            cells.append("–" if "examples" not in i else f"[{i['examples'][0]:.3f}, {i['examples'][1]:.3f}]" + (
                f"; [{i['seeds'][0]:.3f}, {i['seeds'][1]:.3f}]" if i["seeds"] else ""))
        for r in shown:
            d = deltas.get(row, {}).get(r)
            cells.append("–" if d is None else f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
                                                + (f" {verdict(d[1], d[2])}" if r == "gt" else ""))
        lines.append(f"| {titles[row]} | " + " | ".join(cells) + " |")
        stats = []
        for c in columns:
            v = np.asarray(cols[c], dtype=float)
            stats += ["", ""] if np.isnan(v).all() else [f"{np.nanmean(v):.6g}",
                                                         f"{np.nanstd(v, ddof=1):.6g}" if len(v) > 1 else ""]
        for name in bounds:
            stats += [f"{x:.6g}" for x in i[name]] if i.get(name) else ["", ""]
        for r in shown:
            d = deltas.get(row, {}).get(r)
            stats += ["", "", ""] if d is None else [f"{x:.6g}" for x in d]
        writer.writerow([row, *stats])
    lines.append(f"\nseeds {', '.join(map(str, seeds))}; mean ± sample std over seeds; accuracy on the test "
                 "split (the mean over its benchmarks when it has several); recovery = (row − base) / "
                 "(ground truth − base) × 100 per seed." + (
                     " Trust AUC interval: bootstrap over target examples of the AUC averaged over seeds." if auc
                     else "") + (
                     " Accuracy intervals: bootstrap over test examples (the same resamples for every row) and, "
                     "with ≥ 3 seeds, Student-t over seeds." if accuracy else "") + (
                     " Δ: the row's accuracy minus the reference's, averaged over seeds, with a 95 % paired bootstrap "
                     "interval over test examples (1,000 resamples); ≈ the interval contains 0 (indistinguishable "
                     "from ground truth), ↑ above it (super-recovery), ↓ below." if shown else ""))
    return "\n".join(lines), out.getvalue()


def log_recovery(args: argparse.Namespace, values: dict[str, dict]) -> None:
    """Write each run's recovery into its TensorBoard directory (the HParams dashboard's ``hp/recovery``)."""
    from torch.utils.tensorboard import SummaryWriter

    for row, cols in values.items():
        for seed, rec in zip(args.seeds, cols["recovery %"]):
            if row != BASE and not np.isnan(rec):
                with SummaryWriter(args.output_dir / row / f"seed{seed}") as writer:
                    writer.add_scalar("hp/recovery", rec, 0)


def run_sweep(args: argparse.Namespace) -> list[dict]:
    """Sweep the teacher features of the config's trust function (source-validation and target AUC)."""
    from w2s.config import instantiate
    from w2s.sweep import candidate_features, feature_sweep

    data, trust = args.resolved["data"], args.resolved["trust"]
    init = dict(trust.get("init_args") or {})
    if "features" not in init:
        raise W2SError(f"the config's trust function {args.own.__name__} takes no features; nothing to sweep")
    task, teacher = instantiate(data["task"]), instantiate(data["teacher"]).with_features(args.sweep_features)
    splits = task.load()
    outputs = teacher.label(task, {"source": splits["source"], "target": splits["target"]})
    groups = None
    if args.sweep_group:
        if args.sweep_group not in splits["source"].column_names:
            raise W2SError(f"--sweep_group {args.sweep_group!r} is not a field of the source split "
                           f"(fields: {splits['source'].column_names})")
        groups = [str(g) for g in splits["source"][args.sweep_group]]
    make = lambda features: args.own(**{**init, "features": features})  # noqa: E731
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


def compare_one(args: argparse.Namespace, extra: list[str]) -> dict:
    """The sweep and/or the table of one config into ``args.output_dir``; returns its report."""
    stamp_output_dir(args.output_dir, "compare.json", {"config": args.resolved, "trust_args": args.trust_args},
                     "compare run")
    out = args.output_dir
    report: dict = {"config": str(args.config), "seeds": args.seeds, "rows": args.rows, "overrides": extra}
    if args.sweep_features is not None:
        report["sweep"] = run_sweep(args)
        report["sweep_group"] = args.sweep_group
        text = render_sweep(report["sweep"], args.sweep_group)
        atomic_write_text(out / "sweep.md", text + "\n")
        print("\n" + text, flush=True)
    if args.rows and args.trust_only:
        from w2s.trust_only import trust_table

        report["trust_table"] = trust_table(args, extra)
        if "failed" in report["trust_table"]:
            report["failed"] = report["trust_table"]["failed"]
    elif args.rows:
        results, failed = run_rows(args, extra)
        if not results:
            raise W2SError(next(iter(failed.values())))
        values = table_values(results, args.rows, args.seeds)
        intervals, deltas = example_statistics(args, results)
        markdown, table_csv = render(values, args.seeds, args.titles, intervals, deltas)
        if failed:
            markdown += "\n\nFailed runs (their cells are left out):\n" + "\n".join(
                f"- {args.titles[row]}, seed {seed}: {error}" for (row, seed), error in failed.items())
            report["failed"] = {f"{row}/seed{seed}": error for (row, seed), error in failed.items()}
        report["table"] = values
        report["intervals"] = intervals
        report["deltas"] = {row: {r: dict(zip(("difference", "low", "high"), d)) for r, d in per.items()}
                            for row, per in deltas.items()}
        first_row = next(iter(results.values()))  # every row reads the same cached teacher pass
        report["teacher_accuracy"] = next(iter(first_row.values()))["teacher"]["accuracy"]
        report["runs"] = {row: {s: str(out / row / f"seed{s}") for s in args.seeds} for row in results}
        atomic_write_text(out / "table.md", markdown + "\n")
        atomic_write_text(out / "table.csv", table_csv)
        log_recovery(args, values)
        print(f"\n{markdown}\n\n(table.md, table.csv and results.json in {out})")
    # a trust-only report never replaces the student table's results.json in the same directory
    name = "trust_only.json" if args.trust_only else "results.json"
    atomic_write_text(out / name, json.dumps(json_safe(report), indent=2))
    sys.stdout.flush()
    if report.get("failed"):
        raise W2SError("; ".join(report["failed"].values()) + f" (the table of the finished runs is in {out})")
    return report


def main(argv: list[str]) -> None:
    """Entry point of ``main.py compare``."""
    args, extra = parse_args(argv)
    if args.world_seeds is None:
        compare_one(args, extra)
        return
    from w2s.worlds import compare_worlds

    compare_worlds(args, extra, compare_one)
