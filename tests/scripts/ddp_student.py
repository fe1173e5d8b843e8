"""Train the LoRA student a few steps under DDP (run with the world's directory and an output directory); each
rank saves its trainable weights to <out>/rank<k>.pt (used by tests/test_distributed.py)."""

import sys
from pathlib import Path

import lightning as L
import torch

from students.sft import LoRASFTStudent
from trust_functions import Naive
from w2s.data import W2SDataModule
from w2s.protocol import run_protocol
from w2s.selection import Selection
from w2s.tasks import LocalMultipleChoice
from w2s.teacher import Teacher

world, out = Path(sys.argv[1]), Path(sys.argv[2])
L.seed_everything(0, verbose=False)
task, teacher = LocalMultipleChoice(str(world / "data")), Teacher(str(world / "teacher"), batch_size=64)
student = LoRASFTStudent(str(world / "student"), lr=1e-2)
data = W2SDataModule(task, teacher, batch_size=4).connect(student, run_protocol(task, teacher, Naive(), Selection()))
initial = {n: p.detach().clone() for n, p in student.named_parameters() if p.requires_grad}
trainer = L.Trainer(max_steps=3, accelerator="cpu", devices=2, strategy="ddp", logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    limit_val_batches=0)
trainer.fit(student, datamodule=data)
weights = {n: p.detach().clone() for n, p in student.named_parameters() if p.requires_grad}
changed = sum(not torch.equal(weights[n], initial[n]) for n in weights)
torch.save({"weights": weights, "changed": changed, "n": len(weights)}, out / f"rank{trainer.global_rank}.pt")
