"""The Neural Trust Function: a residual RMSNorm-SwiGLU MLP on the teacher's hidden state g(x, ŷ)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trust_functions.base import FeatureView, TrustFunction, split_source
from w2s import metrics
from w2s.errors import W2SError, check_ranges
from w2s.outputs import TeacherOutputs


class SwiGLUBlock(nn.Module):
    """``x + drop_path(W3 · dropout(silu(W1·norm(x)) ⊙ W2·norm(x)))``."""

    def __init__(self, width: int, expansion: int, dropout: float, drop_path: float) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(width)
        self.gate_up = nn.Linear(width, 2 * expansion * width)
        self.down = nn.Linear(expansion * width, width)
        self.dropout = nn.Dropout(dropout)
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(self.norm(x)).chunk(2, dim=-1)
        h = self.down(self.dropout(F.silu(gate) * up))
        if self.training and self.drop_path > 0:  # stochastic depth: drop the whole branch per example
            keep = torch.rand(x.shape[0], 1, device=x.device) >= self.drop_path
            h = h * keep / (1 - self.drop_path)
        return x + h


class NTFNetwork(nn.Module):
    """Standardise → project → residual SwiGLU blocks → RMSNorm → linear head (one logit)."""

    def __init__(self, d_in: int, width: int, depth: int, expansion: int, dropout: float, drop_path: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("std", torch.ones(d_in))
        self.proj = nn.Linear(d_in, width)
        self.blocks = nn.Sequential(*[SwiGLUBlock(width, expansion, dropout, drop_path) for _ in range(depth)])
        self.norm = nn.RMSNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return self.head(self.norm(self.blocks(self.proj(x)))).squeeze(-1)


class NeuralTrustFunction(TrustFunction):
    """The NTF: predicts whether a weak label is correct from the teacher's hidden state.

    Args:
        width: width of the residual stream.
        depth: number of RMSNorm-SwiGLU blocks.
        expansion: SwiGLU hidden size as a multiple of ``width``.
        dropout: dropout inside each block.
        drop_path: stochastic-depth probability of each block.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        max_epochs: training epochs (the epoch with the best validation AUC is kept).
        batch_size: training batch size.
        val_fraction: share of the source set held out (stratified) for model selection and source metrics.
        standardize: standardise inputs with the source set's per-dimension mean and std.
        features: which cached teacher states to read, concatenated (``"hidden"`` = the default g(x, ŷ);
            ``"<layer>:<pooling>"`` = a feature listed in ``data.teacher.features``); default ``["hidden"]``.
        checkpoint: a ``trust_function.pt`` that an earlier ``fit`` wrote beside its results: the network fitted
            there is reused as is (no training; its architecture and features come from the file, and ``fit``
            only measures it on this source set), e.g. generation 1's trust function in a weak-to-strong chain.
    """

    row, title = "ntf", "NTF"
    reusable = True

    def __init__(
        self,
        width: int = 128,
        depth: int = 2,
        expansion: int = 2,
        dropout: float = 0.3,
        drop_path: float = 0.3,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        max_epochs: int = 15,
        batch_size: int = 64,
        val_fraction: float = 0.2,
        standardize: bool = False,
        features: list[str] | None = None,
        checkpoint: str | None = None,
    ) -> None:
        check_ranges("NeuralTrustFunction", width=(width, "int >= 1"), depth=(depth, "int >= 1"),
                     expansion=(expansion, "int >= 1"), dropout=(dropout, "[0, 1)"), drop_path=(drop_path, "[0, 1)"),
                     lr=(lr, "> 0"), weight_decay=(weight_decay, ">= 0"), max_epochs=(max_epochs, "int >= 1"),
                     batch_size=(batch_size, "int >= 1"), val_fraction=(val_fraction, "(0, 1)"))
        self.standardize, self.features, self.checkpoint = standardize, features, checkpoint
        self.width, self.depth, self.expansion = width, depth, expansion
        self.dropout, self.drop_path, self.lr, self.weight_decay = dropout, drop_path, lr, weight_decay
        self.max_epochs, self.batch_size, self.val_fraction = max_epochs, batch_size, val_fraction
        self.network: NTFNetwork | None = None
        self.source_val: dict[str, float] = {}

    def teacher_features(self) -> list[str]:
        return list(self.features or [])

    def fit(self, source: TeacherOutputs) -> None:
        if self.checkpoint is not None:
            return self._reuse(source)
        x, y, train, val, pos_weight = split_source(source, self.features, self.val_fraction)
        network = NTFNetwork(x.dim, self.width, self.depth, self.expansion, self.dropout, self.drop_path)
        if self.standardize:
            mean, std = x.moments(train)
            network.mean.copy_(mean)
            network.std.copy_(std.clamp(min=1e-6))
        from trust_functions.ntf_training import train_network  # Lightning loads only when an NTF trains

        train_network(network, x, y, train, val, pos_weight, self.lr, self.weight_decay, self.max_epochs,
                      self.batch_size)
        self.network = network.eval()
        self.source_val = metrics.trust_metrics(self._predict(x, val), y[val])

    def save(self, path: Path) -> None:
        """Write the fitted network, its architecture and features to ``path`` (atomically), for ``checkpoint``."""
        if self.network is None:
            raise W2SError("NeuralTrustFunction.save called before fit")
        arch = {k: getattr(self, k) for k in ("width", "depth", "expansion")}
        blob = {"format": "w2s-ntf/1", "d_in": int(self.network.proj.in_features), "architecture": arch,
                "features": self.features, "state_dict": self.network.state_dict()}
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)

    def _reuse(self, source: TeacherOutputs) -> None:
        """Load the network fitted elsewhere and measure it on this source set (nothing is trained)."""
        path = Path(self.checkpoint)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            assert blob.get("format") == "w2s-ntf/1"
        except FileNotFoundError:
            raise W2SError(f"trust.init_args.checkpoint {path} does not exist (a fit run writes "
                           "trust_function.pt beside its results.json)") from None
        except Exception:
            raise W2SError(f"trust.init_args.checkpoint {path} is not a trust_function.pt written by "
                           "NeuralTrustFunction (corrupt or another format); refit instead") from None
        self.features = blob["features"]
        for key, value in blob["architecture"].items():
            setattr(self, key, value)
        x = FeatureView(source, self.features)
        if x.dim != blob["d_in"]:
            raise W2SError(f"the trust function in {path} reads {blob['d_in']}-dim features {self.features}, but "
                           f"this teacher's are {x.dim}-dim: reuse needs a teacher of the same hidden size; refit "
                           "the trust function on this teacher's source outputs instead")
        network = NTFNetwork(blob["d_in"], self.width, self.depth, self.expansion, 0.0, 0.0)
        network.load_state_dict(blob["state_dict"])
        self.network = network.eval()
        correct = torch.from_numpy(np.asarray(source.correct, np.float32))
        self.source_val = metrics.trust_metrics(self._predict(x), correct)

    @torch.no_grad()
    def _predict(self, x: FeatureView, index=None) -> torch.Tensor:
        index = np.arange(len(x)) if index is None else index
        return torch.cat([torch.sigmoid(self.network(rows)) for _, rows in x.blocks(index, 4096)])

    def score(self, target: TeacherOutputs) -> torch.Tensor:
        if self.network is None:
            raise RuntimeError("NeuralTrustFunction.score called before fit")
        return self._predict(FeatureView(target, self.features))


class StackedNTF(NeuralTrustFunction):
    """The NTF on the teacher state and the output-layer signals together (its ``features`` followed by
    ``"output"``: Entropy and I-Confidence scores, mean token log-prob and entropy), standardised by default so that
    the four output signals are not drowned by the state's scale; output-layer and hidden-state evidence combine.
    Arguments as ``NeuralTrustFunction``."""

    row, title = "ntf_stacked", "NTF + output signals"

    def __init__(self, *args, standardize: bool = True, features: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, standardize=standardize, features=features, **kwargs)
        self.features = [*(features or ["hidden"]), "output"]
