"""NTF fit + score on large cached hidden states: throughput and peak memory, against the toy teacher pass.

    python benchmarks/ntf.py [--sizes 100000 1000000] [--dim 1024]

Writes a synthetic float16 cache ([N, dim], memory-mapped, as ``teacher.cache_dtype: float16`` stores it),
fits the NTF on 80 % as the source set and scores the rest, in a fresh process per size so that peak memory
is that size's. The ratio is the NTF's time over the time the toy teacher would take to label the same N
examples (its throughput measured in the same run); goals: ratio ≤ 0.05, peak RSS < 2 GB at 1M × 1024.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np


def write_cache(path: Path, n: int, dim: int, seed: int) -> np.ndarray:
    """A [n, dim] float16 .npy written in chunks with plain file writes (never whole in memory, no mapped pages
    left resident); correctness depends on 8 dimensions."""
    rng = np.random.default_rng(seed)
    correct = np.empty(n, dtype=bool)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
                                                 "fortran_order": False, "shape": (n, dim)})
        for start in range(0, n, 8192):
            x = rng.standard_normal((min(8192, n - start), dim), dtype=np.float32)
            f.write(x.astype(np.float16).tobytes())
            correct[start : start + len(x)] = x[:, :8].sum(1) + rng.standard_normal(len(x), dtype=np.float32) * 2 > 0
    return correct


def fit_and_score(n: int, dim: int, epochs: int, batch_size: int) -> dict:
    """In this process: build source (80 %) and target (20 %) caches, fit the NTF, score; time and peak memory."""
    import lightning as L

    from trust_functions import NeuralTrustFunction
    from w2s import metrics
    from w2s.teacher import TeacherOutputs

    root = Path(tempfile.mkdtemp(prefix="w2s-ntf-bench-"))
    sizes = {"source": int(0.8 * n), "target": n - int(0.8 * n)}
    splits = {}
    for seed, (name, k) in enumerate(sizes.items()):
        correct = write_cache(root / f"{name}.npy", k, dim, seed)
        splits[name] = TeacherOutputs([str(i) for i in range(k)], [""] * k, ["A"] * k,
                                      np.load(root / f"{name}.npy", mmap_mode="r"), None, np.zeros(k, np.float32),
                                      np.zeros(k, np.float32), correct)
    rss_before = common.peak_rss_mb()
    L.seed_everything(0, verbose=False)
    start = time.perf_counter()
    ntf = NeuralTrustFunction(max_epochs=epochs, batch_size=batch_size)
    ntf.fit(splits["source"])
    scores = ntf.score(splits["target"].without_labels())
    seconds = time.perf_counter() - start
    auc = metrics.auc(scores, splits["target"].correct)
    for f in root.iterdir():
        f.unlink()
    root.rmdir()
    return {"n": n, "seconds": seconds, "peak_rss_mb": common.peak_rss_mb(), "rss_before_fit_mb": rss_before,
            "auc": float(auc)}


def toy_teacher_rate(n: int = 2048) -> float:
    """Examples per second of the toy teacher pass (generation, capture and all) on ``n`` target examples."""
    import datasets

    from w2s.models import load_causal_lm, load_tokenizer
    from w2s.teacher import Teacher
    from w2s.toy import ToyKnowledge

    task = ToyKnowledge(0)
    splits = task.load()
    split = datasets.concatenate_datasets([splits[s] for s in ("source", "target", "test")])
    split = split.select(range(min(n, len(split))))
    model, tokenizer = load_causal_lm("toy:0/teacher", "float32"), load_tokenizer("toy:0/teacher")
    teacher = Teacher("toy:0/teacher", batch_size=128)
    teacher.run(model, tokenizer, task, split.select(range(64)), desc="warm-up")
    return len(split) / common.best_of(lambda: teacher.run(model, tokenizer, task, split, desc="toy teacher"), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    parser.add_argument("--epochs", type=int, default=0, help="NTF epochs (default: 15 below 500k, else 1)")
    parser.add_argument("--batch_size", type=int, default=0, help="NTF batch (default: 64 below 500k, else 1024)")
    args = parser.parse_args()
    if args.one:
        epochs = args.epochs or (15 if args.one < 500_000 else 1)
        batch = args.batch_size or (64 if args.one < 500_000 else 1024)
        print(json.dumps(fit_and_score(args.one, args.dim, epochs, batch) | {"epochs": epochs, "batch": batch}))
        return
    rate = toy_teacher_rate()
    print(f"# toy teacher pass: {rate:.0f} examples/s; NTF on synthetic float16 caches, d = {args.dim}")
    for n in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--dim", str(args.dim),
                               "--epochs", str(args.epochs), "--batch_size", str(args.batch_size)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr[-2000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"# n = {n}: fit ({result['epochs']} epochs, batch {result['batch']}) + score {result['seconds']:.1f} s, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB (cache written: {result['rss_before_fit_mb']:.0f} MB), "
              f"target AUC {result['auc']:.3f}")
        common.report(f"ntf_fit_score_vs_toy_teacher_pass n={n} (time)", result["seconds"], n / rate, "s")


if __name__ == "__main__":
    main()
