"""``compare --world_seeds``: the comparison table on several builds of one toy world, so that a claim about the
world is checked across the worlds its seed draws, not only across training seeds.

Each world seed gets its own config (the task's ``seed`` and every ``toy:<seed>/...`` model name replaced),
written to ``<output_dir>/world<w>/config.yaml``, and its own resumable compare in that directory. The summary
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
import yaml

from w2s.cache import atomic_write_text
from w2s.errors import W2SError

TOY_NAME = re.compile(r"^toy:(?:([a-z]+)-)?(\d+)/(\w+)$")


def world_config(config: dict, seed: int) -> dict:
    """``config`` with the toy world seed ``seed``: the task's ``seed`` and every ``toy:[<world>-]<k>/<role>``."""
    out, found = copy.deepcopy(config), []

    def visit(node):
        if isinstance(node, dict):
            return {k: visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        match = TOY_NAME.match(node) if isinstance(node, str) else None
        if match:
            found.append(node)
            world = f"{match.group(1)}-" if match.group(1) else ""
            return f"toy:{world}{seed}/{match.group(3)}"
        return node

    out = visit(out)
    task_args = out.get("data", {}).get("task", {}).get("init_args", {})
    if not found or "seed" not in task_args:
        raise W2SError("--world_seeds needs a toy-world config: a task with init_args.seed and toy:<seed>/... "
                       "models (e.g. configs/toy.yaml)")
    task_args["seed"] = seed
    return out


def reward_model(config: dict, seed: int) -> str | None:
    """The world's own reward model for the reward row (knowledge worlds have one), from the teacher's name."""
    match = TOY_NAME.match(str(config.get("data", {}).get("teacher", {}).get("model", "")))
    if match is None or match.group(1) not in (None, "plain", "chain"):
        return None
    return f"toy:{match.group(1) + '-' if match.group(1) else ''}{seed}/reward"


def compare_worlds(args: argparse.Namespace, extra: list[str], compare_one: Callable) -> None:
    """Run the compare of ``args`` once per world seed, then write and print the summary."""
    config = yaml.safe_load(args.config.read_text()) or {}
    reports = {}
    for seed in args.world_seeds:
        sub = copy.copy(args)
        sub.output_dir = args.output_dir / f"world{seed}"
        sub.config = sub.output_dir / "config.yaml"
        world = world_config(config, seed)
        if not sub.config.is_file() or yaml.safe_load(sub.config.read_text()) != world:
            atomic_write_text(sub.config, f"# {args.config} with toy world seed {seed} (compare --world_seeds)\n"
                                          + yaml.safe_dump(world, sort_keys=False))
        sub.trust_args = copy.deepcopy(args.trust_args)
        if "reward" in args.rows and reward_model(config, seed) and "model" not in sub.trust_args.get("reward", {}):
            sub.trust_args.setdefault("reward", {})["model"] = reward_model(config, seed)
        print(f"[compare] world seed {seed}", flush=True)
        reports[seed] = compare_one(sub, extra)
    if not args.rows:
        return
    from w2s.compare import _json_safe

    markdown, table_csv, summary = render_worlds(reports, args.rows)
    atomic_write_text(args.output_dir / "worlds.md", markdown + "\n")
    atomic_write_text(args.output_dir / "worlds.csv", table_csv)
    atomic_write_text(args.output_dir / "worlds.json", json.dumps(_json_safe(summary), indent=2))
    print(f"\n{markdown}\n\n(worlds.md, worlds.csv and worlds.json in {args.output_dir})")


def render_worlds(reports: dict[int, dict], rows: list[str]) -> tuple[str, str, dict]:
    """One line per world seed (means over its training seeds) and their mean ± std: markdown, CSV, JSON."""
    from w2s.compare import ROWS

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
    names = ", ".join(f"{r} = {ROWS[r][0]}" for r in rows)
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
