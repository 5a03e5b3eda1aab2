"""Soft labels: the trained teacher's scores for the training windows, stored beside the data.

The student then trains from the stored logits, without the teacher in memory. The file is an
``.npz`` with ``logits`` (n, C) float32, ``probs`` (n, C) float32 = softmax(logits / T),
``temperature``, ``index`` (n,) int64 (the windows' indices in the source :class:`Windows`),
and ``class_names``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ethoedge.io import atomic_write_bytes


@dataclass(frozen=True)
class SoftLabels:
    """Teacher scores for a set of windows.

    Attributes:
        logits: (n, C) float32 teacher logits.
        temperature: T used for ``probs``.
        index: (n,) int64 window indices these rows belong to.
        class_names: class names, index = class id.
    """

    logits: np.ndarray
    temperature: float
    index: np.ndarray
    class_names: tuple[str, ...]

    @property
    def probs(self) -> np.ndarray:
        """(n, C) softmax(logits / T), float32; every row sums to one."""
        return softmax(self.logits, self.temperature)


def softmax(logits: np.ndarray, T: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / T`` in float64, returned as float32.

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = np.asarray(logits, dtype=np.float64) / T
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@torch.no_grad()
def predict_logits(
    model: nn.Module, Xn: np.ndarray, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """Logits (n, C) float32 of ``model`` in eval mode over normalised windows ``Xn`` (n, 3, L)."""
    model.eval()
    out = []
    for i in range(0, len(Xn), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(Xn[i : i + batch_size])).to(device)
        out.append(model(xb).float().cpu().numpy())
    if not out:
        return np.zeros((0, int(getattr(model, "n_classes", 0))), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def make_soft_labels(
    teacher: nn.Module,
    Xn: np.ndarray,
    index: np.ndarray,
    class_names: tuple[str, ...],
    temperature: float,
    device: str = "cpu",
) -> SoftLabels:
    """Run the trained ``teacher`` over normalised training windows ``Xn`` (n, 3, L)."""
    logits = predict_logits(teacher, Xn, device=device)
    return SoftLabels(logits, float(temperature), np.asarray(index, dtype=np.int64), class_names)


def save_soft_labels(sl: SoftLabels, path: str | Path) -> Path:
    """Write ``sl`` to ``path`` (.npz) atomically."""
    buf = io.BytesIO()
    np.savez(
        buf,
        logits=sl.logits.astype(np.float32),
        probs=sl.probs,
        temperature=np.float64(sl.temperature),
        index=sl.index.astype(np.int64),
        class_names=np.asarray(sl.class_names, dtype=str),
    )
    return atomic_write_bytes(path, buf.getvalue())


def load_soft_labels(path: str | Path) -> SoftLabels:
    """Read soft labels written by :func:`save_soft_labels`."""
    with np.load(path, allow_pickle=False) as z:
        return SoftLabels(
            logits=z["logits"].astype(np.float32),
            temperature=float(z["temperature"]),
            index=z["index"].astype(np.int64),
            class_names=tuple(str(c) for c in z["class_names"]),
        )
