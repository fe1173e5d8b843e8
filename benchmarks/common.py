"""Shared helpers of the benchmark scripts: timing in the same process, peak memory, the result line."""

from __future__ import annotations

import atexit
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python benchmarks/x.py` from a checkout


def machine_load(when: str) -> float:
    """Print the 1-minute load average and warn when other work shares the machine: every ratio of a loaded
    machine is suspect (another process takes a share of one side's time and not the other's). At the start the
    load should be near 0 and is flagged above the core count; at the end it includes this benchmark's own
    threads (up to the core count), so it is flagged above the core count + 1."""
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    limit = cores if when == "start" else cores + 1
    warning = f"  WARNING: load above {limit}: other work shared the machine, the figures are not trustworthy" \
        if load > limit else ""
    print(f"# machine load at {when}: {load:.2f} (1-min average, {cores} cores){warning}", flush=True)
    return load


if not os.environ.get("W2S_BENCH_CHILD"):  # a benchmark's own subprocess: its parent reports the load
    machine_load("start")  # every benchmark imports this module first
    atexit.register(machine_load, "end")


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls (the machines are noisy; the median resists one slow call)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int = 3) -> dict[str, float]:
    """Median time of each candidate, run in turns (A, B, A, B, ...) so that drifting load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            print(f"# {name}: {times[name][-1]:.2f} s", flush=True)  # each call as it ends (long runs show progress)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB: Linux's VmHWM (ru_maxrss of a process started from a
    large one by fork + exec starts at its parent's size at the fork), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name: str, ours: float, baseline: float, unit: str = "/s", higher_is_better: bool = True) -> str:
    """The one line each benchmark prints: ``name: ratio=X (ours A unit, baseline B unit)``. The ratio is
    ours / baseline for rates (higher is better) and for times (lower is better) alike."""
    line = f"{name}: ratio={ours / baseline:.3f} (ours {ours:.4g} {unit}, baseline {baseline:.4g} {unit})"
    print(line, flush=True)
    return line
