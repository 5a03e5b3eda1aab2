"""The student rewritten into simulated fixed point, in PyTorch.

Two rewrites of the trained :class:`~ethoedge.models.gru_mlp.GRUStudent`, both with the GRU
cell unrolled into its gate equations (PyTorch order ``r, z, n``):

* :class:`SimQuantStudent`: every multiply, accumulate, bias add, activation (the LUT of
  ``docs/fixedpoint.md``) and hidden-state update in torch int64 with explicit shifts. Its
  integer logits equal :func:`ethoedge.quantize.reference.reference_logits` bit for bit.
* :class:`FakeQuantStudent`: the float graph with straight-through rounding (weights and
  activations rounded and saturated to their fixed-point formats in the forward pass,
  identity gradient), used by :func:`qat_finetune` for quantization-aware fine-tuning.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ethoedge.data.windows import Normalizer
from ethoedge.distill.config import KDConfig
from ethoedge.distill.loss import kd_loss
from ethoedge.errors import DataError
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.quantize.calibrate import calibrate, fold_normalizer, unfold_normalizer
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.fixedpoint import (
    LUT_IN_FRAC,
    LUT_OUT_FRAC,
    LUT_SIZE,
    PRE_FRAC,
    SIGMOID_TABLE,
    TANH_TABLE,
    choose_frac_bits,
)
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import check_exact

# --- integer primitives on torch int64 tensors (same definitions as fixedpoint.py) -------


def t_sat(v: torch.Tensor, word_bits: int) -> torch.Tensor:
    """``sat(v, W)``: clamp to the signed ``W``-bit range."""
    return v.clamp(-(1 << (word_bits - 1)), (1 << (word_bits - 1)) - 1)


def t_round_shift(v: torch.Tensor, s: int) -> torch.Tensor:
    """``round_shift(v, s)``: right shift with ties towards +inf, left shift when ``s < 0``."""
    if s > 0:
        return (v + (1 << (s - 1))) >> s
    if s < 0:
        return v << -s
    return v


def t_static_dynamic(x: torch.Tensor, shift: int) -> torch.Tensor:
    """``static_dynamic``: the integer static/dynamic split over time (first axis)."""
    s = torch.empty_like(x)
    s[0] = x[0]
    for t in range(1, x.shape[0]):
        s[t] = s[t - 1] + t_round_shift(x[t] - s[t - 1], shift)
    return torch.cat([t_sat(x - s, 16), s], dim=-1)


def t_align(v: torch.Tensor, f_from: int, f_to: int) -> torch.Tensor:
    """``align``: move to ``f_to`` fraction bits and saturate to int32."""
    return t_sat(t_round_shift(v, f_from - f_to), 32)


def t_requant(acc: torch.Tensor, f_acc: int, f_out: int, word_bits: int) -> torch.Tensor:
    """``requant``: move an accumulator to a ``W``-bit value at ``f_out``."""
    return t_sat(t_round_shift(acc, f_acc - f_out), word_bits)


def t_activation(pre: torch.Tensor, frac: int, table: torch.Tensor, word_bits: int):
    """LUT + linear interpolation (``docs/fixedpoint.md``), output at ``W - 1`` bits."""
    u = t_sat(t_round_shift(pre, frac - LUT_IN_FRAC), 16)  # Q3.12
    i = (u >> 8) + 128
    r = u & 255
    t0 = table[i]
    t1 = table[(i + 1).clamp(max=LUT_SIZE - 1)]
    y15 = t0 + t_round_shift((t1 - t0) * r, 8)
    return t_sat(t_round_shift(y15, LUT_OUT_FRAC - (word_bits - 1)), word_bits)


class _QLinear(nn.Module):
    """``acc = dot(W, x) + bias_acc(b)`` in int64 at ``f_w + f_x`` fraction bits."""

    def __init__(self, q: QuantizedStudent, wname: str, bname: str, f_x: int):
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(q.weights[wname].values.astype(np.int64)))
        self.f_acc = q.frac(wname) + f_x
        b = torch.from_numpy(q.weights[bname].values.astype(np.int64))
        self.register_buffer("bias", t_round_shift(b, q.frac(bname) - self.f_acc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


class SimQuantStudent(nn.Module):
    """The quantized student as an integer PyTorch graph.

    ``forward(X_int16)``: ``(n, 3, L)`` integer windows at ``qmodel.in_frac`` fraction bits
    -> ``(n, C)`` int64 logits at ``qmodel.frac('logits')`` fraction bits.
    """

    def __init__(self, qmodel: QuantizedStudent):
        super().__init__()
        check_exact(qmodel)
        q = qmodel
        self.q = q
        self.W, self.H = q.word_bits, q.hidden
        self.f_a, self.f_h, self.f_m = q.frac("a"), q.frac("h"), q.frac("m")
        self.f_logits = q.frac("logits")
        self.inp = _QLinear(q, "inp.weight", "inp.bias", q.in_frac)
        self.gx = _QLinear(q, "gru.weight_ih", "gru.bias_ih", self.f_a)
        self.gh = _QLinear(q, "gru.weight_hh", "gru.bias_hh", self.f_h)
        self.mlp = _QLinear(q, "mlp.weight", "mlp.bias", self.f_h)
        self.out = _QLinear(q, "out.weight", "out.bias", self.f_m)
        self.register_buffer("sigmoid_table", torch.from_numpy(SIGMOID_TABLE.astype(np.int64)))
        self.register_buffer("tanh_table", torch.from_numpy(TANH_TABLE.astype(np.int64)))

    @torch.no_grad()
    def forward(self, x_int16: torch.Tensor) -> torch.Tensor:
        if x_int16.dtype.is_floating_point or x_int16.dim() != 3:
            raise DataError("SimQuantStudent takes integer windows of shape (n, 3, L)")
        W, H, FG = self.W, self.H, PRE_FRAC
        # time first and contiguous, so that every step reads one block: (L, n, 3)
        x = t_sat(x_int16.to(torch.int64), 16).permute(2, 0, 1).contiguous()
        if self.q.input_stage != "raw":
            x = t_static_dynamic(x, self.q.static_shift)[..., : self.q.n_inputs]
        # a = relu(W_in' x + b_in')
        a = t_requant(self.inp(x), self.inp.f_acc, self.f_a, W).clamp(min=0)  # (L, n, H)
        # W_ih a + b_ih for every sample (does not depend on h), moved to FG
        gx = self.gx(a)  # (L, n, 3H) at Fx
        gx_rz = t_align(gx[..., : 2 * H], self.gx.f_acc, FG).contiguous()
        gx_n = t_align(gx[..., 2 * H :], self.gx.f_acc, FG).contiguous()
        one = 1 << (W - 1)
        h = torch.zeros(x.shape[1], H, dtype=torch.int64)
        fh = self.gh.f_acc
        for t in range(x.shape[0]):
            gh = self.gh(h)  # W_hh h + b_hh, (n, 3H) int64 at Fh
            # r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z)
            pre_rz = t_sat(gx_rz[t] + t_align(gh[:, : 2 * H], fh, FG), 32)
            rz = t_activation(pre_rz, FG, self.sigmoid_table, W)
            r, z = rz[:, :H], rz[:, H:]
            # n = tanh(gx_n + r * gh_n)
            rn = t_align(r * gh[:, 2 * H :], fh + W - 1, FG)
            n = t_activation(t_sat(gx_n[t] + rn, 32), FG, self.tanh_table, W)
            # h' = (1 - z) * n + z * h
            h = t_sat(t_round_shift((one - z) * t_align(n, W - 1, self.f_h) + z * h, W - 1), W)
        # m = relu(W_1 h + b_1); logits = W_2 m + b_2
        m = t_requant(self.mlp(h), self.mlp.f_acc, self.f_m, W).clamp(min=0)
        return t_requant(self.out(m), self.out.f_acc, self.f_logits, W)


# --- quantization-aware fine-tuning -------------------------------------------------------


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return g


def fake_quant(x: torch.Tensor, frac_bits: int, word_bits: int) -> torch.Tensor:
    """Round ``x`` to ``word_bits`` at ``frac_bits`` and saturate; straight-through gradient
    (inside the range; zero gradient where saturated)."""
    scale = 2.0**frac_bits
    lo, hi = -(2.0 ** (word_bits - 1)), 2.0 ** (word_bits - 1) - 1
    return torch.clamp(_RoundSTE.apply(x * scale), lo, hi) / scale


class FakeQuantStudent(nn.Module):
    """The folded float student with fixed-point rounding simulated in the forward pass.

    Weights are fake-quantized with fraction bits re-chosen from their current values at
    every forward pass; ``a``, ``h``, ``m``, ``logits`` with the calibrated fraction bits
    ``act_frac``; gate values at ``W - 1`` bits; pre-activations at 12 bits within +-8
    (the LUT's input). Sigmoid and tanh are the exact functions (the LUT is within a few
    LSB of them at ``W <= 16``). Input: raw windows ``(n, 3, L)`` in g.
    """

    def __init__(self, folded: GRUStudent, act_frac: dict[str, int], word_bits: int, cfg):
        super().__init__()
        self.student = folded
        self.act_frac = dict(act_frac)
        self.W = word_bits
        self.rule, self.percentile, self.in_frac = cfg.rule, cfg.percentile, cfg.in_frac

    def _wq(self, p: torch.Tensor) -> torch.Tensor:
        f = choose_frac_bits(p.detach().cpu().numpy(), self.W, self.rule, self.percentile)
        return fake_quant(p, f, self.W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, W, H, fa = self.student, self.W, self.student.cfg.hidden, self.act_frac
        g = s.gru
        x = fake_quant(x, self.in_frac, 16)
        if s.cfg.input != "raw":  # the input stage in float, on the quantized input
            x = fake_quant(s.front(x), self.in_frac, 16)
        x = x.transpose(1, 2)  # (n, L, inputs)
        a = torch.relu(x @ self._wq(s.inp.weight).T + self._wq(s.inp.bias))
        a = fake_quant(a, fa["a"], W)
        gx = a @ self._wq(g.weight_ih_l0).T + self._wq(g.bias_ih_l0)  # (n, L, 3H)
        w_hh, b_hh = self._wq(g.weight_hh_l0), self._wq(g.bias_hh_l0)
        h = torch.zeros(x.shape[0], H, dtype=x.dtype, device=x.device)

        def pre(v: torch.Tensor) -> torch.Tensor:
            return fake_quant(v, PRE_FRAC, 16)  # int32 at FG, then Q3.12 in int16 at the LUT

        def gate(v: torch.Tensor) -> torch.Tensor:
            return fake_quant(v, W - 1, W)

        for t in range(x.shape[1]):
            gh = h @ w_hh.T + b_hh
            r = gate(torch.sigmoid(pre(gx[:, t, :H] + gh[:, :H])))
            z = gate(torch.sigmoid(pre(gx[:, t, H : 2 * H] + gh[:, H : 2 * H])))
            n = gate(torch.tanh(pre(gx[:, t, 2 * H :] + r * gh[:, 2 * H :])))
            h = fake_quant((1 - z) * n + z * h, fa["h"], W)
        m = fake_quant(torch.relu(h @ self._wq(s.mlp.weight).T + self._wq(s.mlp.bias)), fa["m"], W)
        return fake_quant(m @ self._wq(s.out.weight).T + self._wq(s.out.bias), fa["logits"], W)


def qat_finetune(
    student: GRUStudent,
    normalizer: Normalizer,
    train_X: np.ndarray,
    train_y: np.ndarray,
    word_bits: int,
    cfg: QuantConfig | None = None,
    soft_labels: np.ndarray | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
    *,
    kd: KDConfig | None = None,
) -> GRUStudent:
    """Quantization-aware fine-tuning of a trained student at ``word_bits``.

    Folds the normalisation in, calibrates the activation formats on ``train_X`` (raw
    windows ``(n, 3, L)`` in g), trains :class:`FakeQuantStudent` for ``cfg.qat_epochs``
    epochs with Adam (``cfg.qat_lr``) on cross-entropy with ``train_y``, or, when the
    teacher's ``soft_labels`` (teacher *logits*, ``(n, C)``) are given, on
    :func:`ethoedge.distill.loss.kd_loss` with ``kd.alpha``, ``kd.temperature`` and
    ``kd.standardize_logits`` (the run's distillation settings; None: the
    :class:`~ethoedge.distill.KDConfig` defaults).
    With ``val = (X_g, y)`` the epoch with the lowest validation loss of the fake-quantized
    model is kept. Returns a fine-tuned copy that takes *normalised* windows, like
    ``student``.
    """
    cfg = cfg or QuantConfig()
    kd = kd or KDConfig()
    if len(train_X) == 0:
        raise DataError("qat: no training windows")
    torch.manual_seed(cfg.seed)
    folded = fold_normalizer(student, normalizer)
    calib = calibrate(folded, train_X, cfg.calib_windows, cfg.seed)
    act = {k: calib.frac_bits(k, word_bits, cfg.rule, cfg.percentile) for k in calib.absmax}
    model = FakeQuantStudent(copy.deepcopy(folded), act, word_bits, cfg)
    X = torch.from_numpy(np.asarray(train_X, dtype=np.float32))
    y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    soft = None if soft_labels is None else torch.from_numpy(np.asarray(soft_labels, np.float32))

    def loss_fn(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if soft is not None:
            return kd_loss(
                logits, soft[idx], y[idx], kd.alpha, kd.temperature, kd.standardize_logits
            )
        return nn.functional.cross_entropy(logits, y[idx])

    def val_loss() -> float:
        assert val is not None
        model.eval()
        with torch.no_grad():
            out = model(torch.from_numpy(np.asarray(val[0], dtype=np.float32)))
            return float(nn.functional.cross_entropy(out, torch.from_numpy(val[1]).long()))

    opt = torch.optim.Adam(model.student.parameters(), lr=cfg.qat_lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_state, best = copy.deepcopy(model.student.state_dict()), np.inf
    if val is not None:
        best = val_loss()
    for epoch in range(cfg.qat_epochs):
        model.train()
        perm = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), cfg.qat_batch):
            idx = perm[i : i + cfg.qat_batch]
            loss = loss_fn(model(X[idx]), idx)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.student.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        msg = f"qat W={word_bits} epoch {epoch + 1}: train loss {total / len(X):.4f}"
        if val is not None:
            v = val_loss()
            msg += f", val loss {v:.4f}"
            if v < best:
                best, best_state = v, copy.deepcopy(model.student.state_dict())
        else:
            best_state = copy.deepcopy(model.student.state_dict())
        if log:
            log(msg)
    model.student.load_state_dict(best_state)
    return unfold_normalizer(model.student, normalizer)
