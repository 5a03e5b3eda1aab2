"""Calibration pass: the ranges of the float student's activations over training windows.

The student's input normalisation is folded into its input layer first
(:func:`fold_normalizer`), so that the quantized model takes raw acceleration in g.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from ethoedge.data.windows import Normalizer
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.quantize.fixedpoint import choose_frac_bits

# Activations whose fraction bits come from calibration, and the gate pre-activations that are
# recorded for the report only (their format is fixed: Q.12 into the LUT).
CALIBRATED = ("a", "h", "m", "logits")
REPORTED = ("pre_r", "pre_z", "pre_n")
MAX_SAMPLES = 1_000_000  # values kept per tensor for the percentile rule


def fold_normalizer(student: GRUStudent, normalizer: Normalizer) -> GRUStudent:
    """A copy of ``student`` that takes raw windows in g: ``W' = W / std``,
    ``b' = b - W @ (mean / std)`` in the input layer (computed in float64)."""
    folded = copy.deepcopy(student).cpu().eval()
    std, mean_term = _norm_terms(student, normalizer)
    with torch.no_grad():
        w = student.inp.weight.detach().double()  # (H, inputs)
        b = student.inp.bias.detach().double()
        folded.inp.weight.copy_((w / std).float())
        folded.inp.bias.copy_((b - w @ mean_term).float())
    return folded


def _norm_terms(student: GRUStudent, normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Per input of the input layer: the normaliser's std, and mean/std where the mean reaches
    that input. The static/dynamic split commutes with the per-axis affine normalisation (its
    low-pass has unit gain and starts at the first sample): the dynamic part of a normalised
    window is ``d / std``, the static part ``(s - mean) / std``."""
    mean = torch.tensor(normalizer.mean, dtype=torch.float64)
    std = torch.tensor(normalizer.std, dtype=torch.float64)
    if student.cfg.input == "static_dynamic":
        return torch.cat([std, std]), torch.cat([torch.zeros_like(mean), mean / std])
    if student.cfg.input == "dynamic":
        return std, torch.zeros_like(mean)
    return std, mean / std


def unfold_normalizer(folded: GRUStudent, normalizer: Normalizer) -> GRUStudent:
    """Inverse of :func:`fold_normalizer`: a copy that takes normalised windows again."""
    student = copy.deepcopy(folded).cpu().eval()
    std, mean_term = _norm_terms(folded, normalizer)
    with torch.no_grad():
        w1 = folded.inp.weight.detach().double()
        b1 = folded.inp.bias.detach().double()
        w = w1 * std
        student.inp.weight.copy_(w.float())
        student.inp.bias.copy_((b1 + w @ mean_term).float())
    return student


@dataclass(frozen=True)
class Calibration:
    """Ranges of the float model's tensors over the calibration windows.

    Attributes:
        absmax: ``max|x|`` per tensor name (``CALIBRATED`` and ``REPORTED``).
        samples: ``|x|`` per tensor, float32, a deterministic subsample of at most
            ``MAX_SAMPLES`` values (for the percentile rule).
        n_windows: number of calibration windows.
    """

    absmax: dict[str, float]
    samples: dict[str, np.ndarray] = field(repr=False)
    n_windows: int

    def frac_bits(self, name: str, word_bits: int, rule: str, percentile: float) -> int:
        """Fraction bits of activation ``name`` at ``word_bits`` by the given rule."""
        if rule == "max":
            return choose_frac_bits(np.array([self.absmax[name]]), word_bits, "max")
        return choose_frac_bits(self.samples[name], word_bits, rule, percentile)


@torch.no_grad()
def float_trace(folded: GRUStudent, X_g: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every intermediate tensor of the float student on raw windows ``(n, 3, L)`` in g.

    Returns ``a (n, L, H)``, ``h (n, L, H)`` (all hidden states), ``m (n, M)``,
    ``logits (n, C)`` and the gate pre-activations ``pre_r``, ``pre_z``, ``pre_n`` (n, L, H).
    """
    H = folded.cfg.hidden
    a = torch.relu(folded.inp(folded.front(X_g).transpose(1, 2)))  # (n, L, H)
    hs, hL = folded.gru(a)  # (n, L, H), (1, n, H)
    m = torch.relu(folded.mlp(hL[0]))
    logits = folded.out(m)
    h_prev = torch.cat([torch.zeros_like(hs[:, :1]), hs[:, :-1]], dim=1)
    gx = a @ folded.gru.weight_ih_l0.T + folded.gru.bias_ih_l0  # (n, L, 3H)
    gh = h_prev @ folded.gru.weight_hh_l0.T + folded.gru.bias_hh_l0
    pre_r = gx[..., :H] + gh[..., :H]
    pre_z = gx[..., H : 2 * H] + gh[..., H : 2 * H]
    pre_n = gx[..., 2 * H :] + torch.sigmoid(pre_r) * gh[..., 2 * H :]
    return {"a": a, "h": hs, "m": m, "logits": logits, "pre_r": pre_r, "pre_z": pre_z,
            "pre_n": pre_n}  # fmt: skip


def calibrate(
    folded: GRUStudent,
    X_g: np.ndarray,
    max_windows: int = 2048,
    seed: int = 0,
    batch: int = 512,
) -> Calibration:
    """Run the folded float student over (a random subset of) raw windows ``(n, 3, L)`` in g
    and record the ranges of ``a``, ``h``, ``m``, ``logits`` and the gate pre-activations."""
    X = np.asarray(X_g, dtype=np.float32)
    if len(X) > max_windows:
        idx = np.sort(np.random.default_rng(seed).choice(len(X), max_windows, replace=False))
        X = X[idx]
    folded = folded.cpu().eval()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in CALIBRATED + REPORTED}
    for i in range(0, len(X), batch):
        tr = float_trace(folded, torch.from_numpy(X[i : i + batch]))
        for k in parts:
            parts[k].append(tr[k].abs().reshape(-1).numpy())
    absmax: dict[str, float] = {}
    samples: dict[str, np.ndarray] = {}
    for k, p in parts.items():
        v = np.concatenate(p) if p else np.zeros(0, dtype=np.float32)
        absmax[k] = float(v.max()) if v.size else 0.0
        if v.size > MAX_SAMPLES:
            v = v[np.linspace(0, v.size - 1, MAX_SAMPLES).astype(np.int64)]
        samples[k] = v
    return Calibration(absmax, samples, len(X))
