"""``python main.py chain``: the weak-to-strong chain, where each generation's student becomes the next teacher.

The config is a ``fit`` config with a top-level ``chain:`` block::

    chain:
      students: [toy:chain-0/student_s, toy:chain-0/student, toy:chain-0/student_l]   # one per generation
      fractions: [0.45, 0.45, 0.45]   # optional: selection.fraction per generation (same or growing n)
      ground_truth: true              # also train each generation on gold labels: its recovery ceiling
      collapse_margin: 0.1            # stop when purity or student accuracy falls by more than this
      trust: refit                    # or reuse: generation 1's fitted trust function scores every generation
      features: [[0:prompt_mean], [hidden], [hidden]]   # optional: the trust function's features per generation

Generation 1's teacher is the config's ``data.teacher.model``; generation k's student, its LoRA adapter merged
into a full checkpoint (``save_pretrained``), is generation k+1's teacher. With ``trust: refit`` every generation
refits the config's trust function on its own teacher's source outputs (with that generation's ``features``, if
given: what separates a small teacher's errors need not separate a trained student's); with ``trust: reuse``
generation 1's fitted NeuralTrustFunction (``trust_function.pt``) scores every later generation as is, the
paper's setting, which needs teachers of one hidden size. Runs land in
``<output_dir>/seed<s>/gen<k>/{trust,gt,merged}``; a finished generation (results and merged checkpoint
present) is never recomputed, so an interrupted chain resumes at the generation it was in. The per-generation
table is written as chain.md, chain.csv and results.json, and TensorBoard scalars ``chain/*`` are indexed by
generation.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
from jsonargparse.typing import import_object

from w2s.cache import atomic_dir, atomic_write_text, is_complete
from w2s.config import resolve_config
from w2s.errors import W2SError
from w2s.metrics import recovery
from w2s.runs import command_parser, cores, fmt, logger_args, parse_command, run_fit, stamp_output_dir

COLUMNS = ["teacher accuracy", "trust AUC", "purity@n", "n", "student accuracy", "ground truth", "recovery %"]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = command_parser("chain", "Run a weak-to-strong chain: each student becomes the next teacher.", [0],
                            "a fit config with a chain: block")
    return parse_command(parser, argv)


def read_config(path: Path, extra: list[str]) -> tuple[dict, dict]:
    """The config resolved with the overrides ``extra`` (as ``fit`` reads it), and its ``chain:`` block (checked;
    ``fit`` itself ignores the block)."""
    resolved = resolve_config(["--config", str(path), *extra])
    chain = resolved.pop("chain", None)
    if not isinstance(chain, dict) or not chain.get("students"):
        raise W2SError(f"{path} has no chain: block with a students: list (one student model per generation)")
    students = list(chain["students"])
    fractions = chain.get("fractions")
    if fractions is not None and len(fractions) != len(students):
        raise W2SError(f"chain.fractions has {len(fractions)} entries for {len(students)} generations")
    features = chain.get("features")
    if features is not None and (len(features) != len(students)
                                 or not all(isinstance(f, list) and f for f in features)):
        raise W2SError(f"chain.features must hold one non-empty list of feature names per generation "
                       f"({len(students)}), e.g. [[0:prompt_mean], [hidden]]")
    trust = chain.get("trust", "refit")
    if trust not in ("refit", "reuse"):
        raise W2SError(f"chain.trust is {trust!r}; use refit (fit per generation) or reuse (generation 1's)")
    trust_class = import_object(resolved["trust"]["class_path"])
    if trust == "reuse" and not trust_class.reusable:
        raise W2SError(f"chain.trust: reuse needs a trust function that saves and reloads its fitted state "
                       f"(such as NeuralTrustFunction), not {trust_class.__name__}")
    if trust == "reuse" and features is not None:
        raise W2SError("chain.features and chain.trust: reuse do not go together: a reused trust function reads "
                       "generation 1's features")
    unknown = set(chain) - {"students", "fractions", "ground_truth", "collapse_margin", "trust", "features"}
    if unknown:
        raise W2SError(f"unknown chain option(s) {sorted(unknown)}; use students, fractions, ground_truth, "
                       "collapse_margin, trust, features")
    return resolved, {"students": students, "fractions": fractions, "ground_truth": chain.get("ground_truth", True),
                    "collapse_margin": float(chain.get("collapse_margin", 0.1)), "trust": trust,
                    "features": features}


def trust_overrides(chain: dict, k: int, first: Path) -> list[str]:
    """The ``fit`` arguments that set generation ``k``'s trust function: its features (the teacher caches what
    it reads), or generation 1's fitted network (``first``: generation 1's run directory) when reused."""
    if chain["trust"] == "reuse" and k > 1:
        return ["--trust.init_args.checkpoint", str(first / "trust" / "trust_function.pt")]
    return ["--trust.init_args.features", json.dumps(chain["features"][k - 1])] if chain["features"] else []


def merge_student(student: str, adapter: Path, target: Path) -> Path:
    """The student with its LoRA adapter merged into its weights, saved (atomically) as a full checkpoint with
    its tokenizer: the next generation's teacher."""
    from peft import PeftModel

    from w2s.models import load_causal_lm, load_tokenizer

    if not is_complete(target):
        merged = PeftModel.from_pretrained(load_causal_lm(student, "float32"), adapter).merge_and_unload()
        with atomic_dir(target, {"student": student, "adapter": str(adapter)}) as tmp:
            merged.save_pretrained(tmp)
            load_tokenizer(student).save_pretrained(tmp)
    return target


def run_generation(fit_config: Path, extra: list[str], seed: int, gen_dir: Path, teacher: str, student: str,
                   fraction: float | None, ground_truth: bool, label: str, trust_args: list[str],
                   in_process: bool = False) -> dict:
    """One generation: the trust-filtered student (and the ground-truth ceiling), then the merged student."""
    def fit(name: str, trust: list[str]) -> dict:
        args = ["fit", "--config", str(fit_config), *trust, "--seed_everything", str(seed),
                "--data.teacher.model", teacher, "--model.model", student,
                *(["--data.selection.fraction", str(fraction)] if fraction is not None else []),
                *logger_args(gen_dir, "", name), *extra]
        done = gen_dir / name / "results.json"
        if done.is_file():
            return json.loads(done.read_text())
        print(f"[chain] {label}: {name} run (teacher {teacher}, student {student})", flush=True)
        return run_fit(args, gen_dir / name, cores(), f"chain {label}, {name} run", in_process)

    results = {"teacher": teacher, "student": student, "trust": fit("trust", trust_args)}
    if ground_truth:
        results["gt"] = fit("gt", ["--trust", "GroundTruth"])
    results["merged"] = str(merge_student(student, gen_dir / "trust" / "student_adapter", gen_dir / "merged"))
    return results


def row(gen: dict) -> dict:
    """One generation's table values."""
    trust, gt = gen["trust"], gen.get("gt")
    base, final = trust["student"]["accuracy"]["base"], trust["student"]["accuracy"]["final"]
    ceiling = gt["student"]["accuracy"]["final"] if gt else float("nan")
    return {"teacher accuracy": trust["teacher"]["accuracy"]["target"], "trust AUC": trust["trust"]["auc"],
            "purity@n": trust["trust"]["purity"], "n": trust["selection"]["n"], "student accuracy": final,
            "ground truth": ceiling, "recovery %": recovery(final, base, ceiling) if gt else float("nan")}


def collapsed(previous: dict, current: dict, margin: float) -> str | None:
    """Why the chain stops after ``current``, or ``None``: purity or student accuracy fell by more than ``margin``."""
    for column in ("purity@n", "student accuracy"):
        if previous[column] - current[column] > margin:
            return (f"{column} fell from {previous[column]:.3f} to {current[column]:.3f} (more than the "
                    f"collapse margin {margin})")
    return None


def generation_deltas(out: Path, table: dict[int, list[dict]]) -> dict[int, tuple[float, float, float]]:
    """Per generation that every seed reached with a ground-truth run: its trust-filtered student's accuracy minus
    the ground-truth student's, averaged over seeds, with a 95 % paired bootstrap interval over test examples."""
    from w2s.intervals import accuracy_statistics, correctness_matrix

    deltas = {}
    for g in range(1, min(len(rows) for rows in table.values()) + 1):
        runs = {name: correctness_matrix([out / f"seed{s}" / f"gen{g}" / name for s in table])
                for name in ("trust", "gt")}
        if all(m is not None for m in runs.values()) and runs["trust"][0] == runs["gt"][0]:
            _, d = accuracy_statistics({name: m for name, (_, m) in runs.items()}, ["gt"])
            deltas[g] = d["trust"]["gt"]
    return deltas


def render(table: dict[int, list[dict]], deltas: dict[int, tuple[float, float, float]] | None = None
           ) -> tuple[str, str]:
    """Markdown and CSV of the per-generation table, per seed and as mean ± std over seeds, with each generation's
    paired difference to its ground-truth student where ``deltas`` has it."""
    from w2s.intervals import verdict

    deltas = deltas or {}
    extra = ["Δ vs ground truth [95 % CI]"] if deltas else []
    lines = ["| generation | " + " | ".join([*COLUMNS, *extra]) + " |", "|" + "---|" * (len(COLUMNS) + len(extra) + 1)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seed", "generation", *COLUMNS])
    depth = max(len(rows) for rows in table.values())
    for g in range(depth):
        values = {c: [rows[g][c] for rows in table.values() if len(rows) > g] for c in COLUMNS}
        d = deltas.get(g + 1)
        cells = [fmt(values[c], c) for c in COLUMNS] + (
            [] if not deltas else ["–" if d is None else f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] {verdict(*d[1:])}"])
        lines.append(f"| {g + 1} | " + " | ".join(cells) + " |")
    for seed, rows in table.items():
        for g, r in enumerate(rows):
            writer.writerow([seed, g + 1, *(f"{r[c]:.6g}" for c in COLUMNS)])
    lines.append(f"\nseeds {', '.join(map(str, table))}; mean ± sample std over seeds; generation k's teacher is "
                 "generation k-1's merged student; recovery against each generation's ground-truth run." + (
                     " Δ: trust-filtered minus ground-truth student accuracy, averaged over seeds, 95 % paired "
                     "bootstrap interval over test examples; ≈ contains 0, ↑ above, ↓ below." if deltas else ""))
    return "\n".join(lines), out.getvalue()


def log_generations(out: Path, table: dict[int, list[dict]]) -> None:
    """TensorBoard scalars ``chain/<column>`` per seed, with the generation as the step."""
    from torch.utils.tensorboard import SummaryWriter

    for seed, rows in table.items():
        with SummaryWriter(out / f"seed{seed}" / "tensorboard") as writer:
            for g, r in enumerate(rows, 1):
                for column, value in r.items():
                    if not np.isnan(value):
                        writer.add_scalar(f"chain/{column.replace(' ', '_').replace('%', 'pct')}", value, g)


def main(argv: list[str]) -> None:
    """Entry point of ``main.py chain``."""
    args, extra = parse_args(argv)
    if any(a.startswith("--data.teacher.model") for a in extra):
        raise W2SError("the chain sets each generation's teacher itself; set generation 1's in the config")
    resolved, chain = read_config(args.config, extra)
    out = args.output_dir
    stamp_output_dir(out, "chain.json", {"config": resolved, "chain": chain}, "chain")
    teacher0 = resolved["data"]["teacher"]["init_args"]["model"]

    report: dict = {"config": str(args.config), "chain": chain, "seeds": args.seeds, "generations": {}}
    table: dict[int, list[dict]] = {}
    for seed in args.seeds:
        teacher, rows, gens = teacher0, [], []
        for k, student in enumerate(chain["students"], 1):
            fraction = chain["fractions"][k - 1] if chain["fractions"] else None
            trust_args = trust_overrides(chain, k, out / f"seed{seed}" / "gen1")
            gen = run_generation(args.config, extra, seed, out / f"seed{seed}" / f"gen{k}", teacher, student,
                                 fraction, chain["ground_truth"], f"seed {seed}, generation {k}", trust_args,
                                 args.in_process)
            rows.append(row(gen))
            gens.append(gen)
            reason = collapsed(rows[-2], rows[-1], chain["collapse_margin"]) if k > 1 else None
            if reason:
                print(f"[chain] seed {seed}: stopped after generation {k}: {reason}", flush=True)
                report.setdefault("stopped", {})[seed] = {"generation": k, "reason": reason}
                break
            teacher = gen["merged"]
        table[seed], report["generations"][seed] = rows, gens
    deltas = generation_deltas(out, table)
    markdown, table_csv = render(table, deltas)
    report["table"] = table
    report["delta_vs_ground_truth"] = {g: dict(zip(("difference", "low", "high"), d)) for g, d in deltas.items()}
    atomic_write_text(out / "chain.md", markdown + "\n")
    atomic_write_text(out / "chain.csv", table_csv)
    atomic_write_text(out / "results.json", json.dumps(report, indent=2, default=float))
    log_generations(out, table)
    print(f"\n{markdown}\n\n(chain.md, chain.csv and results.json in {out})", flush=True)
