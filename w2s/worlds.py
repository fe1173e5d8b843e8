"""``compare --world_seeds``: the comparison table on several builds of one toy world, so that a claim about the
world is checked across the worlds its seed draws, not only across training seeds.

Each world seed gets the config's own runs with the task's ``seed`` and every ``toy:<seed>/...`` model name
overridden on the command line, in its own resumable compare under ``<output_dir>/world<w>/``. The summary
(``worlds.md``, ``worlds.csv``, ``worlds.json``) has one line per world seed — teacher accuracy, each row's
student accuracy, trust AUC and recovery, each a mean over the training seeds — and their mean.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import re
from typing import Callable

import numpy as np

from w2s.cache import atomic_write_text
from w2s.config import resolve_config
from w2s.errors import W2SError
from w2s.runs import json_safe

TOY_NAME = re.compile(r"^toy:(?:([a-z]+)-)?(\d+)/(\w+)$")


def world_overrides(config: dict, seed: int) -> list[str]:
    """``fit`` arguments that move a resolved toy-world ``config`` to world seed ``seed``: the task's ``seed`` and
    every ``toy:[<world>-]<k>/<role>`` model name (the trust function's are left to ``--trust_args``: they would
    not apply to every row)."""
    found: list[str] = []

    def visit(node, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                visit(v, f"{key}.{k}" if key else k)
        elif isinstance(node, str) and (match := TOY_NAME.match(node)) and not key.startswith("trust."):
            world = f"{match.group(1)}-" if match.group(1) else ""
            found.extend([f"--{key}", f"toy:{world}{seed}/{match.group(3)}"])

    visit(config, "")
    task_args = config.get("data", {}).get("task", {}).get("init_args") or {}
    if not found or "seed" not in task_args:
        raise W2SError("--world_seeds needs a toy-world config: a task with init_args.seed and toy:<seed>/... "
                       "models (e.g. configs/toy.yaml)")
    return [*found, "--data.task.init_args.seed", str(seed)]


def reward_model(config: dict, seed: int) -> str | None:
    """The world's own reward model for the reward row (knowledge worlds have one), from the teacher's name."""
    match = TOY_NAME.match(str(config["data"]["teacher"]["init_args"]["model"]))
    if match is None or match.group(1) not in (None, "plain", "chain"):
        return None
    return f"toy:{match.group(1) + '-' if match.group(1) else ''}{seed}/reward"


def compare_worlds(args: argparse.Namespace, extra: list[str], compare_one: Callable) -> None:
    """Run the compare of ``args`` once per world seed, then write and print the summary."""
    reports = {}
    for seed in args.world_seeds:
        sub = copy.copy(args)
        sub.output_dir = args.output_dir / f"world{seed}"
        world_extra = [*extra, *world_overrides(args.resolved, seed)]
        sub.resolved = resolve_config(["--config", str(args.config), *world_extra])
        sub.trust_args = copy.deepcopy(args.trust_args)
        reward = reward_model(args.resolved, seed)
        if "reward" in args.rows and reward and "model" not in sub.trust_args.get("reward", {}):
            sub.trust_args.setdefault("reward", {})["model"] = reward
        print(f"[compare] world seed {seed}", flush=True)
        reports[seed] = compare_one(sub, world_extra)
    if not args.rows:
        return
    markdown, table_csv, summary = render_worlds(reports, args.rows, args.titles)
    atomic_write_text(args.output_dir / "worlds.md", markdown + "\n")
    atomic_write_text(args.output_dir / "worlds.csv", table_csv)
    atomic_write_text(args.output_dir / "worlds.json", json.dumps(json_safe(summary), indent=2))
    print(f"\n{markdown}\n\n(worlds.md, worlds.csv and worlds.json in {args.output_dir})")


def render_worlds(reports: dict[int, dict], rows: list[str], titles: dict[str, str]) -> tuple[str, str, dict]:
    """One line per world seed (means over its training seeds) and their mean ± std: markdown, CSV, JSON;
    ``titles``: each row's label."""
    def mean(values) -> float:
        v = np.asarray(values, dtype=float)
        return float(np.nanmean(v)) if not np.isnan(v).all() else float("nan")

    scored = [r for r in rows if r not in ("base", "naive", "gt")]
    columns = (["teacher accuracy (target)"] + [f"{r} accuracy" for r in rows] + [f"{r} AUC" for r in scored]
               + [f"{r} recovery %" for r in rows if r != "base"])
    lines: dict[int, dict[str, float]] = {}
    for seed, report in reports.items():
        table = report["table"]
        line = {"teacher accuracy (target)": report["teacher_accuracy"]["target"]}
        line |= {f"{r} accuracy": mean(table[r]["student accuracy"]) for r in rows}
        line |= {f"{r} AUC": mean(table[r]["trust AUC"]) for r in scored}
        line |= {f"{r} recovery %": mean(table[r]["recovery %"]) for r in rows if r != "base"}
        lines[seed] = line

    def cell(value: float, column: str) -> str:
        return "–" if np.isnan(value) else f"{value:.1f}" if column.endswith("%") else f"{value:.3f}"

    short = {c: c.replace(" accuracy", "").replace(" recovery %", " rec. %") for c in columns}
    header = "| world seed | " + " | ".join(short[c] for c in columns) + " |"
    md = [header, "|" + "---|" * (len(columns) + 1)]
    for seed, line in lines.items():
        md.append(f"| {seed} | " + " | ".join(cell(line[c], c) for c in columns) + " |")
    stats = {c: [line[c] for line in lines.values()] for c in columns}
    md.append("| mean ± std | " + " | ".join(
        "–" if np.isnan(stats[c]).all() else
        f"{cell(mean(stats[c]), c)} ± {cell(float(np.nanstd(stats[c], ddof=1)) if len(stats[c]) > 1 else 0.0, c)}"
        for c in columns) + " |")
    names = ", ".join(f"{r} = {titles[r]}" for r in rows)
    md.append(f"\nOne line per world seed; each value is the mean over the training seeds of that world's table "
              f"(world<w>/table.md). Rows: {names}. Accuracy: the student on the target test split; "
              "AUC: the trust function on the target pool; recovery = (row − base) / (ground truth − base) × 100.")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["world seed", *columns])
    for seed, line in lines.items():
        writer.writerow([seed, *(f"{line[c]:.6g}" for c in columns)])
    return "\n".join(md), out.getvalue(), {"world_seeds": list(lines), "columns": columns,
                                           "lines": {str(k): v for k, v in lines.items()}}
