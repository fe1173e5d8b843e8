"""Training an NTF network with Lightning: class-reweighted BCE, AdamW, the epoch with the best validation AUC
kept. Separate from ``ntf.py`` so that importing a trust function does not import Lightning."""

from __future__ import annotations

import copy

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from trust_functions.base import FeatureView
from w2s import metrics


def train_network(network: torch.nn.Module, x: FeatureView, y: torch.Tensor, train: torch.Tensor, val: torch.Tensor,
                  pos_weight: float, lr: float, weight_decay: float, max_epochs: int, batch_size: int) -> None:
    """Train ``network`` in place on the rows ``train`` of ``x``; it ends with the weights of its best epoch on
    ``val``."""
    module = NTFModule(network, pos_weight, lr, weight_decay)
    trainer = L.Trainer(max_epochs=max_epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", devices=1)
    trainer.fit(module, DataLoader(Batches(x, y, train, batch_size, shuffle=True), batch_size=None),
                DataLoader(Batches(x, y, val, 1024), batch_size=None))
    network.load_state_dict(module.best_state)


class NTFModule(L.LightningModule):
    """Trains an :class:`NTFNetwork` with class-reweighted BCE and AdamW; validates by AUC."""

    def __init__(self, network: torch.nn.Module, pos_weight: float, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.network, self.lr, self.weight_decay = network, lr, weight_decay
        self.register_buffer("pos_weight", torch.tensor(pos_weight))
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.best_auc, self.best_state = -1.0, None  # model selection: the epoch with the best validation AUC

    def training_step(self, batch, _):
        x, y = batch
        return F.binary_cross_entropy_with_logits(self.network(x), y, pos_weight=self.pos_weight)

    def validation_step(self, batch, _):
        x, y = batch
        self._val.append((torch.sigmoid(self.network(x)), y))

    def on_validation_epoch_end(self) -> None:
        scores, labels = map(torch.cat, zip(*self._val))
        self._val.clear()
        value = metrics.auc(scores, labels)
        self.log("val/auc", value)
        if value > self.best_auc:
            self.best_auc, self.best_state = value, copy.deepcopy(self.network.state_dict())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class Batches(torch.utils.data.IterableDataset):
    """Minibatches ``(x, y)`` of the rows at ``index``, read from the cache a block at a time (never the whole
    matrix); with ``shuffle``, a fresh permutation per epoch drawn exactly as ``DataLoader(shuffle=True)`` draws
    it from the global RNG, so batches do not depend on the block size."""

    def __init__(self, x: FeatureView, y: torch.Tensor, index: torch.Tensor, batch_size: int,
                 shuffle: bool = False, block_rows: int = 16384) -> None:
        self.x, self.y, self.index, self.batch_size = x, y, index, batch_size
        self.shuffle, self.block_rows = shuffle, block_rows - block_rows % batch_size or batch_size

    def __len__(self) -> int:
        return -(-len(self.index) // self.batch_size)

    def __iter__(self):
        index = self.index
        if self.shuffle:  # RandomSampler's draw: a generator seeded from the global RNG, then randperm
            generator = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
            index = index[torch.randperm(len(index), generator=generator)]
        for block, rows in self.x.blocks(index.numpy(), self.block_rows):
            for start in range(0, len(block), self.batch_size):
                yield rows[start : start + self.batch_size], self.y[block[start : start + self.batch_size]]

