"""Wall time of each stage of the toy pipeline: world build, teacher pass, trust fit, selection, student, eval.

    python benchmarks/end_to_end.py             # a small world built from scratch in a temporary cache
    python benchmarks/end_to_end.py --world default   # the default toy world (from the usual cache if built)

The ratio line is the trust function's cost (fit + scoring and selection) over the teacher pass's: the paper's
claim is that learning to trust adds little to the one teacher pass it needs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager

import common

STAGES: dict[str, float] = {}


@contextmanager
def stage(name: str):
    start = time.perf_counter()
    yield
    STAGES[name] = time.perf_counter() - start
    print(f"  {name:<14} {STAGES[name]:8.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=["small", "default"], default="small")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    if args.world == "small":
        os.environ["W2S_CACHE"] = tempfile.mkdtemp(prefix="w2s-bench-")
    import lightning as L
    import torch

    from students.sft import LoRASFTStudent
    from trust_functions import NeuralTrustFunction
    from w2s.data import W2SDataModule
    from w2s.protocol import run_protocol
    from w2s.selection import Selection
    from w2s.tasks import LocalMultipleChoice
    from w2s.teacher import Teacher
    from w2s.toy import ensure_world
    from w2s.toy.world import WorldSpec

    L.seed_everything(0, verbose=False)
    spec = WorldSpec.named("confident", 0)
    if args.world == "small":
        spec = WorldSpec(seed=0, n_entities=80, teacher=dict(hidden=48, layers=2, steps=250, lr=1e-2, qa_fraction=0.5),
                         student=dict(hidden=64, layers=2, steps=250, lr=1e-2, qa_fraction=0.25),
                         reward=dict(hidden=32, layers=1, steps=50, lr=1e-2, coverage=0.5))
    print(f"# toy pipeline, {args.world} world, {torch.get_num_threads()} threads")
    with stage("world build"):
        root = ensure_world(spec=spec)
    os.environ["W2S_CACHE"] = tempfile.mkdtemp(prefix="w2s-bench-pass-")  # a real teacher pass, not a cache read
    task = LocalMultipleChoice(str(root / "data"))
    trust = NeuralTrustFunction(features=["0:prompt_mean"])
    teacher = Teacher(str(root / "teacher"), batch_size=128, features=["0:prompt_mean"])
    with stage("teacher pass"):
        splits = task.load()
        teacher.label(task, {"source": splits["source"], "target": splits["target"]})
    with stage("trust fit"):  # run_protocol reads the cached pass: the trust fit, scoring and selection
        subset = run_protocol(task, teacher, trust, Selection("fraction", fraction=0.45))
    student = LoRASFTStudent(str(root / "student"))
    data = W2SDataModule(task, teacher).connect(student, subset)
    trainer = L.Trainer(max_steps=args.steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=10_000)
    with stage("student fit"):
        trainer.fit(student, datamodule=data)
    with stage("eval"):
        trainer.test(student, datamodule=data, verbose=False)
    n = len(splits["source"]) + len(splits["target"])
    print(f"# {n} examples through the teacher; student {args.steps} steps; total {sum(STAGES.values()):.1f} s")
    common.report("end_to_end_trust_vs_teacher_pass (time)", STAGES["trust fit"],
                  STAGES["teacher pass"], "s")


if __name__ == "__main__":
    main()
