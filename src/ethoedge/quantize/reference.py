"""The integer-only reference of the quantized student, in NumPy (``docs/fixedpoint.md``).

This is the single source of truth the simulated-quantized PyTorch graph
(:mod:`ethoedge.quantize.rewrite`) and the generated C are checked against, bit for bit.
Inference uses int64 arrays only (no floats), explicit shifts, vectorised over a batch of
windows and looping over time only.
"""

from __future__ import annotations

import numpy as np

from ethoedge.errors import ConfigError, DataError
from ethoedge.quantize.fixedpoint import (
    PRE_FRAC,
    SIGMOID_TABLE,
    TANH_TABLE,
    activation,
    align,
    bias_acc,
    dot,
    quantize_values,
    requant,
    round_shift,
    saturate,
    static_dynamic,
)
from ethoedge.quantize.qmodel import QuantizedStudent


def quantize_input(X_g: np.ndarray, in_frac: int = 11) -> np.ndarray:
    """Acceleration in g to the model input: ``sat16(round(x * 2**in_frac))`` as int16.

    Rounding is half away from zero; NaN is not allowed.

    >>> quantize_input(np.array([0.5, -1.0, 100.0, 2.0**-12]), 11).tolist()
    [1024, -2048, 32767, 1]
    """
    X = np.asarray(X_g, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise DataError("input windows contain NaN or infinite values")
    return quantize_values(X, in_frac, 16).astype(np.int16)


def _w(q: QuantizedStudent, name: str) -> np.ndarray:
    return q.weights[name].values.astype(np.int64)


def _acc(q: QuantizedStudent, wname: str, bname: str, x: np.ndarray, f_x: int):
    """``acc = dot(W, x) + bias_acc(b)`` (exact int64) at ``f_w + f_x``; returns ``(acc, f)``."""
    f_acc = q.frac(wname) + f_x
    return dot(_w(q, wname), x) + bias_acc(_w(q, bname), q.frac(bname), f_acc), f_acc


MAX_WIDTH = 256  # largest H and M of the integer model, reference and C (int64 stays exact)
MAX_BIAS_LSHIFT = 30  # bias_acc left shift: |bias_acc| <= 2**45
MAX_ACC_LSHIFT = 16  # accumulator left shift in align/requant: |v| < 2**46 -> < 2**62
MAX_RSHIFT = 62


def shifts(q: QuantizedStudent) -> dict[str, int]:
    """Every shift ``s = f_from - f_to`` of the integer model (``s < 0``: left shift).

    Names follow the contract: ``bias_*`` align a bias to its accumulator, the others move an
    accumulator or product into the next format.
    """
    W, fa, fh, fm = q.word_bits, q.frac("a"), q.frac("h"), q.frac("m")
    f1 = q.frac("inp.weight") + q.in_frac
    fx = q.frac("gru.weight_ih") + fa
    fhh = q.frac("gru.weight_hh") + fh
    f2 = q.frac("mlp.weight") + fh
    f3 = q.frac("out.weight") + fm
    return {
        "bias_inp": q.frac("inp.bias") - f1,
        "bias_ih": q.frac("gru.bias_ih") - fx,
        "bias_hh": q.frac("gru.bias_hh") - fhh,
        "bias_mlp": q.frac("mlp.bias") - f2,
        "bias_out": q.frac("out.bias") - f3,
        "acc_to_a": f1 - fa,
        "gx_to_pre": fx - PRE_FRAC,
        "gh_to_pre": fhh - PRE_FRAC,
        "rn_to_pre": fhh + W - 1 - PRE_FRAC,
        "n_to_h": W - 1 - fh,
        "acc_to_m": f2 - fm,
        "acc_to_logits": f3 - q.frac("logits"),
    }


def check_exact(q: QuantizedStudent) -> None:
    """Raise :class:`ConfigError` unless every intermediate of ``q`` is exact in int64.

    Bounds (``W <= 16``, ``H, M <= 256``): ``|dot| <= 2**38``; a bias moved left by at most
    ``MAX_BIAS_LSHIFT`` is ``< 2**46``, so accumulators are ``< 2**47``; ``r * gh_n < 2**62``;
    an accumulator moved left by at most ``MAX_ACC_LSHIFT`` stays ``< 2**63``; right shifts are
    at most ``MAX_RSHIFT`` (C shifts of 64 or more are undefined).
    """
    if q.input_stage not in ("raw", "dynamic", "static_dynamic") or not 1 <= q.static_shift <= 8:
        raise ConfigError(f"unknown input stage {q.input_stage!r} / shift {q.static_shift}")
    if not 4 <= q.word_bits <= 16:
        raise ConfigError(f"word length {q.word_bits} not supported (4..16)")
    if not (1 <= q.hidden <= MAX_WIDTH and 1 <= q.mlp_hidden <= MAX_WIDTH):
        raise ConfigError(f"hidden sizes {q.hidden}, {q.mlp_hidden} not supported (1..{MAX_WIDTH})")
    for name, s in shifts(q).items():
        limit = MAX_BIAS_LSHIFT if name.startswith("bias_") else MAX_ACC_LSHIFT
        if name == "n_to_h":
            limit = MAX_BIAS_LSHIFT
        if s < -limit or s > MAX_RSHIFT:
            raise ConfigError(
                f"quantized model: shift {name} = {s} outside [-{limit}, {MAX_RSHIFT}]; "
                "a tensor's range is degenerate (try rule='max' or another word length)"
            )


def reference_logits(qmodel: QuantizedStudent, X_int16: np.ndarray) -> np.ndarray:
    """Integer logits ``(n, C)`` int64 (at ``qmodel.frac('logits')``) of int16 windows.

    Args:
        qmodel: the quantized student.
        X_int16: ``(n, 3, L)`` integer acceleration at ``qmodel.in_frac`` fraction bits
            (from :func:`quantize_input`).
    """
    q = qmodel
    check_exact(q)
    X = np.asarray(X_int16)
    if X.ndim != 3 or X.shape[1] != q.n_channels:
        raise DataError(f"expected windows of shape (n, {q.n_channels}, L), got {X.shape}")
    if not np.issubdtype(X.dtype, np.integer):
        raise DataError(f"reference_logits takes integer windows, got dtype {X.dtype}")
    W = q.word_bits
    H = q.hidden
    x = saturate(X, 16).transpose(2, 0, 1)  # (L, n, 3): time first, contiguous per step
    L, n, _ = x.shape
    if q.input_stage != "raw":
        x = static_dynamic(x, q.static_shift)  # (L, n, 6): dynamic, then static, at in_frac
        x = x[..., : q.n_inputs]  # "dynamic": the dynamic part only

    # 1. a = relu(W_in' x + b_in'), for every sample at once
    acc, f1 = _acc(q, "inp.weight", "inp.bias", x, q.in_frac)  # (L, n, H)
    a = np.maximum(requant(acc, f1, q.frac("a"), W), 0)

    # 2. GRU. gx = W_ih a + b_ih does not depend on h: all samples at once.
    gx, fx = _acc(q, "gru.weight_ih", "gru.bias_ih", a, q.frac("a"))  # (L, n, 3H) at Fx
    gx_rz = align(gx[..., : 2 * H], fx, PRE_FRAC)  # at FG
    gx_n = align(gx[..., 2 * H :], fx, PRE_FRAC)
    f_h = q.frac("h")
    one = np.int64(1) << np.int64(W - 1)  # 1.0 at W - 1 fraction bits
    h = np.zeros((n, H), dtype=np.int64)
    for t in range(L):
        # gh = W_hh h + b_hh (3H, int64 at Fh)
        gh, fh = _acc(q, "gru.weight_hh", "gru.bias_hh", h, f_h)
        # r = sigmoid(W_ir a + b_ir + W_hr h + b_hr); z likewise
        pre_rz = saturate(gx_rz[t] + align(gh[:, : 2 * H], fh, PRE_FRAC), 32)
        rz = activation(pre_rz, PRE_FRAC, SIGMOID_TABLE, W)
        r, z = rz[:, :H], rz[:, H:]
        # rn = r * (W_hn h + b_hn): int64 product at Fh + W - 1, moved to FG
        rn = align(r * gh[:, 2 * H :], fh + W - 1, PRE_FRAC)
        # n = tanh(W_in a + b_in + rn)
        pre_n = saturate(gx_n[t] + rn, 32)
        nn_ = activation(pre_n, PRE_FRAC, TANH_TABLE, W)
        # h' = (1 - z) * n + z * h, at f_h
        h = saturate(round_shift((one - z) * align(nn_, W - 1, f_h) + z * h, W - 1), W)

    # 3. m = relu(W_1 h_L + b_1)
    acc, fm = _acc(q, "mlp.weight", "mlp.bias", h, f_h)
    m = np.maximum(requant(acc, fm, q.frac("m"), W), 0)
    # 4. logits = W_2 m + b_2
    acc, fo = _acc(q, "out.weight", "out.bias", m, q.frac("m"))
    return requant(acc, fo, q.frac("logits"), W)


def reference_logits_batched(
    qmodel: QuantizedStudent, X_int16: np.ndarray, batch: int = 4096
) -> np.ndarray:
    """:func:`reference_logits` in batches of ``batch`` windows (bounded memory)."""
    parts = [
        reference_logits(qmodel, X_int16[i : i + batch]) for i in range(0, len(X_int16), batch)
    ]
    if not parts:
        return np.zeros((0, qmodel.n_classes), dtype=np.int64)
    return np.concatenate(parts, axis=0)


def predict(qmodel: QuantizedStudent, X_g: np.ndarray) -> np.ndarray:
    """Class ids (first index of the maximum integer logit) of raw windows ``(n, 3, L)`` in g."""
    logits = reference_logits_batched(qmodel, quantize_input(X_g, qmodel.in_frac))
    return np.argmax(logits, axis=1).astype(np.int64)
