"""The teacher pass on several devices or nodes, as Lightning ``predict`` under any of its strategies (DDP).

Every rank plans the pass exactly as a single process would (same length-bucketed batches), labels the batches
Lightning's distributed sampler hands it, and saves its part; rank 0 then merges the parts, in split order,
into the cache entry a single-process pass writes (same key), which ``fit`` later reads.

    python -m w2s.label --config configs/ntf_mmlu.yaml --devices 8 --accelerator gpu --strategy ddp
"""

from __future__ import annotations

import shutil

import datasets
import lightning as L
from torch.utils.data import DataLoader

from w2s.cache import cache_root, is_complete
from w2s.models import load_causal_lm, load_tokenizer
from w2s.outputs import TeacherOutputs, load_outputs, save_outputs
from w2s.tasks.base import Task
from w2s.teacher import Teacher


class TeacherPass(L.LightningModule):
    """``predict_step(b)`` generates batch ``b`` of the pass's plan on this rank's device."""

    def __init__(self, teacher: Teacher, task: Task, split: datasets.Dataset) -> None:
        super().__init__()
        self.teacher, self.task, self.split = teacher, task, split
        self._lm = []  # kept out of the module tree: nothing here trains, and the LM stays on its own device

    def setup(self, stage: str) -> None:
        model = load_causal_lm(self.teacher.model, self.teacher.dtype, self.teacher.trust_remote_code)
        self._lm = [model.to(self.trainer.strategy.root_device), load_tokenizer(self.teacher.model)]
        self.plan = self.teacher.plan(*self._lm, self.task, self.split)

    def predict_step(self, b: int, _) -> dict[int, dict]:
        return self.teacher.run_batch(*self._lm, self.plan, b)


def label_distributed(teacher: Teacher, task: Task, splits: dict[str, datasets.Dataset],
                      trainer: L.Trainer) -> dict[str, TeacherOutputs]:
    """Teacher outputs for each split, computed under ``trainer``'s strategy when not cached yet; every rank
    returns them (read back from the merged cache)."""
    keys = {name: teacher.cache_key(task, split) for name, split in splits.items()}  # hashes every prompt: once
    for name, split in splits.items():
        key = keys[name]
        target = cache_root() / "teacher" / key
        if is_complete(target):
            continue
        parts = target.with_name(target.name + ".ranks")
        module = TeacherPass(teacher, task, split)
        batches = DataLoader(range(len(split) // teacher.batch_size + bool(len(split) % teacher.batch_size)),
                             batch_size=None)
        rows: dict[int, dict] = {}
        for out in trainer.predict(module, batches, return_predictions=True):
            rows.update(out)
        rank = trainer.global_rank
        save_outputs(teacher.assemble(task, module.plan, rows, sorted(rows)), parts / f"rank-{rank:05d}",
                     {"key": key, "rank": rank})
        trainer.strategy.barrier("teacher pass parts saved")
        if rank == 0:
            merged = TeacherOutputs.concat([load_outputs(p) for p in sorted(parts.glob("rank-*"))])
            position = {i: k for k, i in enumerate(merged.ids)}  # the sampler may repeat a batch on two ranks
            merged = merged.subset([position[str(ex["id"])] for ex in split])
            save_outputs(merged, target, {"key": key, "split": name, "teacher": teacher.model})
            shutil.rmtree(parts, ignore_errors=True)
        trainer.strategy.barrier("teacher pass merged")
    return {name: load_outputs(cache_root() / "teacher" / key, key) for name, key in keys.items()}


def default_trainer(devices: int | str = "auto", accelerator: str = "auto", strategy: str = "auto",
                    num_nodes: int = 1) -> L.Trainer:
    """A Trainer for the teacher pass: no logger, no checkpoints, a progress bar on rank 0."""
    return L.Trainer(devices=devices, accelerator=accelerator, strategy=strategy, num_nodes=num_nodes, logger=False,
                     enable_checkpointing=False, enable_model_summary=False, inference_mode=True)


__all__ = ["TeacherPass", "default_trainer", "label_distributed"]
