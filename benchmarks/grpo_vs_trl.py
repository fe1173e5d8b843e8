"""GRPO: ``GRPOStudent`` (Lightning) vs TRL's ``GRPOTrainer``, same model, prompts, G, lengths, LoRA and reward.

    pip install -e .[bench]   # trl
    python benchmarks/grpo_vs_trl.py [--model toy:math-0/student] [--steps 10] [--batch_size 8]

Each optimizer step samples G completions for each of ``batch_size`` prompts (temperature 1, no top-k/top-p),
rewards them (1 when the last ``\\boxed{}`` equals the label), and takes one clipped-objective update with a
token-level mean over the batch (TRL ``loss_type="dapo"``), group-std-scaled advantages, beta 0, one iteration
per rollout, gradient clipping 1.0. The printed ratio is completions/s of ours over TRL's (goal ≥ 1.0).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import common
import datasets
import lightning as L
import torch
from torch.utils.data import DataLoader

from students.grpo import GRPOStudent
from w2s.models import load_causal_lm, load_tokenizer, resolve
from w2s.tasks.math_reasoning import last_boxed
from w2s.toy import ToyMath

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def reward(completion: str, label: str) -> float:
    return float(last_boxed(completion) == label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy:math-0/student")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=8, help="prompts per optimizer step")
    parser.add_argument("--num_generations", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    task = ToyMath(0)
    examples = list(task.load()["target"])[: args.steps * args.batch_size]
    prompts, labels = [task.prompt(ex) for ex in examples], [ex["answer"] for ex in examples]
    tokenizer = load_tokenizer(args.model)
    g, completions = args.num_generations, args.steps * args.batch_size * args.num_generations
    rows = [{"prompt_ids": tokenizer(p).input_ids, "label": y, "example": ex}
            for p, y, ex in zip(prompts, labels, examples)]
    batches = [GRPOStudent.train_batch(rows[i : i + args.batch_size], tokenizer.pad_token_id)  # the pipeline's batches
               for i in range(0, len(rows), args.batch_size)]

    def ours() -> None:
        student = GRPOStudent(args.model, lora_r=8, lora_alpha=16, lr=3e-3, num_generations=g,
                              max_new_tokens=args.max_new_tokens, max_grad_norm=1.0)
        student.reward_fn = reward
        trainer = L.Trainer(max_steps=args.steps, accelerator="cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(student, DataLoader(batches, batch_size=None))

    train = datasets.Dataset.from_dict({"prompt": prompts, "answer": labels})
    out = tempfile.mkdtemp()

    def trl_reward(prompts, completions, answer, **kwargs) -> list[float]:
        return [reward(c, a) for c, a in zip(completions, answer)]

    def trl() -> None:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=args.batch_size * g, num_generations=g,
            generation_batch_size=args.batch_size * g, max_completion_length=args.max_new_tokens, temperature=1.0,
            top_k=0, top_p=1.0, beta=0.0, num_iterations=1, loss_type="dapo", scale_rewards="group",
            learning_rate=3e-3, lr_scheduler_type="constant", max_grad_norm=1.0, max_steps=args.steps,
            use_cpu=True, bf16=False, report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True,
            dataloader_num_workers=0, shuffle_dataset=False)
        trainer = GRPOTrainer(model=load_causal_lm(resolve(args.model), "float32"), reward_funcs=trl_reward,
                              args=config, train_dataset=train, processing_class=tokenizer,
                              peft_config=LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0,
                                                     target_modules="all-linear"))
        trainer.train()

    times = common.interleaved({"ours": ours, "trl": trl}, args.repeats)
    print(f"# {args.steps} steps × {args.batch_size} prompts × G={g} (max {args.max_new_tokens} new tokens), "
          f"{args.model}, {torch.get_num_threads()} threads; times include each trainer's setup")
    common.report("grpo_vs_trl (completions/s)", completions / times["ours"], completions / times["trl"],
                  "completions/s")


if __name__ == "__main__":
    main()
