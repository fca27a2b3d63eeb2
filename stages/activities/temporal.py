"""A small learned classifier: a causal dilated 1D convolution over a track's feature sequence.

Input: the per-frame window features of one track (stages.activities.features), newest last;
output: class logits at every step, each seeing only the past (so training on whole sequences
and running on the last `receptive_field` rows give the same answer). Features are standardized
with the training set's mean and std, stored with the weights. The weights name the features they
were trained on; the classifier picks those columns from this build's FEATURES by name, so features
added later leave older weights working unchanged (a feature they name that is missing is an error).

Weights file (torch.save of plain dicts, tensors, lists and numbers; loads with
torch.load(weights_only=True)): {"format": "vidpipe-activity-tcn-1", "labels": [...],
"features": [...], "hidden": int, "kernel": int, "dilations": [...], "mean": (F,), "std": (F,),
"state_dict": {...}}.

Convention: sequences (B,T,F) float32; logits (B,T,C); scores (N,C) float32 softmax rows in the
weights' label order.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT = "vidpipe-activity-tcn-1"


class TemporalNet(nn.Module):
    """Residual causal conv blocks (kernel k, dilations d_i, replicate padding on the left)."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 32, kernel: int = 3,
                 dilations=(1, 2, 4, 8)) -> None:
        super().__init__()
        if n_features < 1 or n_classes < 2 or hidden < 1 or kernel < 1:
            raise ValueError(f"TemporalNet: expected n_features >= 1, n_classes >= 2, hidden >= 1, kernel >= 1, "
                             f"got {n_features}, {n_classes}, {hidden}, {kernel}")
        self.kernel, self.dilations = int(kernel), tuple(int(d) for d in dilations)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.inp = nn.Conv1d(n_features, hidden, 1)
        self.blocks = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=d) for d in self.dilations)
        self.head = nn.Conv1d(hidden, n_classes, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel - 1) * sum(self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,T,F) raw features -> logits (B,T,C), causal."""
        z = ((x - self.mean) / self.std).transpose(1, 2)
        h = F.relu(self.inp(z))
        for conv in self.blocks:
            pad = (self.kernel - 1) * conv.dilation[0]
            h = h + F.relu(conv(F.pad(h, (pad, 0), mode="replicate")))
        return self.head(h).transpose(1, 2)


def save_weights(path, net: TemporalNet, labels, features) -> None:
    torch.save({"format": FORMAT, "labels": list(labels), "features": list(features),
                "hidden": int(net.inp.out_channels), "kernel": net.kernel, "dilations": list(net.dilations),
                "mean": net.mean.detach().cpu(), "std": net.std.detach().cpu(),
                "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}, str(path))


def load_weights(path, device: str = "cpu") -> tuple[TemporalNet, list, list]:
    """(net in eval mode on `device`, labels, feature names). ValueError for a foreign file."""
    blob = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not an activity temporal-model file (expected format {FORMAT!r})")
    net = TemporalNet(len(blob["features"]), len(blob["labels"]), blob["hidden"], blob["kernel"], blob["dilations"])
    net.load_state_dict(blob["state_dict"])
    return net.to(device).eval(), list(blob["labels"]), list(blob["features"])


class TemporalClassifier:
    """Scores of the newest step from each track's last `history` feature rows."""

    def __init__(self, net: TemporalNet, labels, features, device: str = "cpu") -> None:
        from .features import INDEX

        missing = [name for name in features if name not in INDEX]
        if missing:
            raise ValueError(f"weights were trained on features {missing} that this build does not compute "
                             f"(it computes {list(INDEX)}); retrain with `vidpipe train activity`")
        self.columns = np.asarray([INDEX[name] for name in features], np.int64)
        self.net, self.labels, self.device = net.to(device).eval(), tuple(labels), device
        self.history = net.receptive_field

    @classmethod
    def from_file(cls, path, device: str = "cpu") -> "TemporalClassifier":
        net, labels, features = load_weights(path, device)
        return cls(net, labels, features, device)

    @torch.inference_mode()
    def scores(self, seq: np.ndarray) -> np.ndarray:
        """seq (N,T,len(FEATURES)), newest last -> (N,C) softmax scores (the weights' columns only)."""
        if len(seq) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        x = torch.as_tensor(np.asarray(seq, np.float32)[:, :, self.columns], device=self.device)
        logits = self.net(x)[:, -1]
        return torch.softmax(logits, 1).cpu().numpy()
