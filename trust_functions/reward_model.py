"""``RewardModel``: trust = a reward model's score of the prompt followed by the teacher's answer."""

from __future__ import annotations

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from trust_functions.base import TrustFunction, require_both_classes, stratified_split
from w2s import metrics
from w2s.errors import W2SError, check_ranges
from w2s.outputs import TeacherOutputs
from w2s.tasks.base import Task


class RewardModel(TrustFunction):
    """Scores each (x, ŷ) with an ``AutoModelForSequenceClassification`` checkpoint: the sigmoid of its logit
    (or the second class's probability for a two-class head) on the prompt followed by the teacher's answer.

    With ``fine_tune_steps > 0`` the reward model is first fine-tuned on whether the teacher's source answers
    are right (class-reweighted BCE, AdamW; all weights, or LoRA adapters when ``lora_r > 0``), holding out
    ``val_fraction`` of the source set to report ``source_val`` metrics.

    Args:
        model: ``toy:<seed>/reward`` (the toy world's reward model), a ``save_pretrained`` directory or hub id.
        fine_tune_steps: optimizer steps of fine-tuning on source correctness (0: use the model as it is).
        lr: fine-tuning learning rate.
        lora_r: LoRA rank for fine-tuning (0: all weights).
        batch_size: batch size of scoring and fine-tuning.
        max_length: longest scored text in tokens (longer ones keep their end, where the answer is).
        val_fraction: share of the source set held out for ``source_val`` when fine-tuning.
        dtype: weights dtype (``auto``: the checkpoint's).
        trust_remote_code: allow the checkpoint's own code to run (off unless asked).
    """

    row, title = "reward", "Reward model"

    def __init__(
        self,
        model: str = "toy:0/reward",
        fine_tune_steps: int = 0,
        lr: float = 1e-4,
        lora_r: int = 0,
        batch_size: int = 32,
        max_length: int = 1024,
        val_fraction: float = 0.2,
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        check_ranges("RewardModel", fine_tune_steps=(fine_tune_steps, "int >= 0"), lr=(lr, "> 0"),
                     lora_r=(lora_r, "int >= 0"), batch_size=(batch_size, "int >= 1"),
                     max_length=(max_length, "int >= 1"), val_fraction=(val_fraction, "(0, 1)"))
        self.model, self.fine_tune_steps, self.lr, self.lora_r = model, fine_tune_steps, lr, lora_r
        self.batch_size, self.max_length, self.val_fraction = batch_size, max_length, val_fraction
        self.dtype, self.trust_remote_code = dtype, trust_remote_code
        self.source_val: dict[str, float] = {}
        self._net = None

    def hub_models(self) -> list[str]:
        return [self.model]

    def prepare(self, teacher, task: Task, splits: datasets.DatasetDict) -> None:
        self._task, self._splits = task, splits

    def _texts_of(self, outputs: TeacherOutputs) -> list[str]:
        """Prompt + the teacher's own generation, for whichever split ``outputs`` covers (matched by ids)."""
        if not hasattr(self, "_splits"):
            raise RuntimeError("RewardModel needs prepare() before fit/score (the protocol calls it)")
        for split in self._splits.values():
            if len(split) == len(outputs) and [str(i) for i in split["id"]] == list(outputs.ids):
                return [self._task.prompt(ex) + gen for ex, gen in zip(split, outputs.generations)]
        raise W2SError("RewardModel: the teacher outputs match no split of the task; delete the teacher cache")

    def _load(self):
        if self._net is None:
            from w2s.models import load_reward_model, load_tokenizer  # transformers loads only when a model does

            self._tokenizer = load_tokenizer(self.model, self.trust_remote_code)
            self._net = load_reward_model(self.model, self.dtype, self.trust_remote_code)
            if self._net.config.pad_token_id is None:
                self._net.config.pad_token_id = self._tokenizer.pad_token_id
        return self._net

    def _logits(self, texts: list[str]) -> torch.Tensor:
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              padding_side="right", truncation_side="left", return_tensors="pt")
        enc = enc.to(self._net.device)
        logits = self._net(**enc).logits.float()
        return logits[:, 0] if logits.shape[-1] == 1 else logits[:, -1] - logits[:, 0]

    def fit(self, source: TeacherOutputs) -> None:
        if self.fine_tune_steps == 0:
            return
        require_both_classes(source)
        texts, net = self._texts_of(source), self._load()
        y = torch.as_tensor(np.asarray(source.correct, dtype=np.float32))
        train, val = stratified_split(y, self.val_fraction)
        if self.lora_r:
            from peft import LoraConfig, get_peft_model

            net = self._net = get_peft_model(net, LoraConfig(task_type="SEQ_CLS", r=self.lora_r,
                                                             lora_alpha=2 * self.lora_r, target_modules="all-linear"))
        pos_weight = torch.tensor((len(train) - y[train].sum()) / y[train].sum())
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=self.lr)
        net.train()
        for _ in tqdm(range(self.fine_tune_steps), desc="reward model fine-tuning", leave=False):
            batch = train[torch.randint(len(train), (self.batch_size,))]
            logits = self._logits([texts[int(i)] for i in batch])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[batch].to(logits.device),
                                                                        pos_weight=pos_weight.to(logits.device))
            loss.backward()
            opt.step(), opt.zero_grad(set_to_none=True)
        net.eval()
        self.source_val = metrics.trust_metrics(self._score_texts([texts[int(i)] for i in val]), y[val])

    @torch.no_grad()
    def _score_texts(self, texts: list[str]) -> torch.Tensor:
        self._load()
        parts = [torch.sigmoid(self._logits(texts[i:i + self.batch_size])).cpu()
                 for i in range(0, len(texts), self.batch_size)]
        return torch.cat(parts)

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        return self._score_texts(self._texts_of(target))
