"""Teacher pass: ours (generation + hidden-state capture + cache write) vs bare batched ``model.generate``.

    python benchmarks/teacher_pass.py [--model toy:0/teacher] [--n 2048] [--batch_size 64]

Prints time ratios (ours / baseline; goal ≤ 1.10 against bare generate on the same batches), and what
batching with length bucketing buys over a one-example-at-a-time loop.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import common
import datasets
import torch

from w2s.models import load_causal_lm, load_tokenizer
from w2s.teacher import Teacher, save_outputs
from w2s.toy import ToyKnowledge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy:0/teacher")
    parser.add_argument("--n", type=int, default=3600)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    task = ToyKnowledge(0)
    splits = task.load()
    split = datasets.concatenate_datasets([splits[s] for s in ("source", "target", "test")])
    split = split.select([i % len(split) for i in range(args.n)])  # the toy world's questions, cycled to n
    model, tokenizer = load_causal_lm(args.model, "float32"), load_tokenizer(args.model)
    teacher = Teacher(args.model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    plan = teacher.plan(model, tokenizer, task, split)
    tmp = Path(tempfile.mkdtemp())

    def ours() -> None:  # the whole pass as the pipeline runs it, cache write included
        outputs = teacher.run(model, tokenizer, task, split, desc="ours")
        save_outputs(outputs, tmp / "cache", {"key": "bench"})
        for f in (tmp / "cache").iterdir():
            f.unlink()
        (tmp / "cache").rmdir()

    @torch.no_grad()
    def bare(batches) -> None:  # what a user writes: batched greedy generate, no capture
        for idx in batches:
            enc = tokenizer([plan.prompts[i] for i in idx], return_tensors="pt", padding=True,
                            padding_side="left").to(model.device)
            model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)

    in_order = [list(range(i, min(len(split), i + args.batch_size))) for i in range(0, len(split), args.batch_size)]
    times = common.interleaved({"ours": ours, "bare": lambda: bare(plan.batches),
                                "bare_unbucketed": lambda: bare(in_order)}, args.repeats)
    one_by_one = common.best_of(lambda: bare([[i] for i in range(min(256, len(split)))]), 1) * len(split) / min(
        256, len(split))
    n = len(split)
    print(f"# {n} prompts, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, {args.model}, "
          f"{torch.get_num_threads()} threads")
    common.report("teacher_pass_vs_bare_generate (time, same batches)", times["ours"], times["bare"], "s")
    common.report("teacher_pass_vs_bare_generate_unbucketed (time)", times["ours"], times["bare_unbucketed"], "s")
    common.report("teacher_pass_throughput_vs_one_at_a_time", n / times["ours"], n / one_by_one, "examples/s")


if __name__ == "__main__":
    main()
