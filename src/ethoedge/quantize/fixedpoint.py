"""Integer helpers of the fixed-point contract (``docs/fixedpoint.md``), vectorised in NumPy.

All functions take and return int64 arrays (or Python ints) and use no floats, except the
table builder and the error measurement, which run once at build time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LUT_SIZE = 257
LUT_IN_FRAC = 12  # activation input is Q3.12 in int16
LUT_OUT_FRAC = 15  # table entries are Q0.15 in int16
GATE_FRAC_FROM_W = -1  # gates/candidate use f = W - 1
PRE_FRAC = 12  # FG: fraction bits of the GRU pre-activations


def max_int(word_bits: int) -> int:
    """Largest value of a signed ``word_bits`` integer.

    >>> max_int(8), max_int(16)
    (127, 32767)
    """
    return (1 << (word_bits - 1)) - 1


def min_int(word_bits: int) -> int:
    """Smallest value of a signed ``word_bits`` integer.

    >>> min_int(8)
    -128
    """
    return -(1 << (word_bits - 1))


def saturate(v, word_bits: int):
    """Clamp to the signed ``word_bits`` range (never wrap).

    >>> saturate(np.array([-200, -128, 0, 127, 300]), 8).tolist()
    [-128, -128, 0, 127, 127]
    """
    v = np.asarray(v, dtype=np.int64)
    return np.minimum(np.maximum(v, min_int(word_bits)), max_int(word_bits))  # faster than clip


def round_shift(v, s: int):
    """Shift right by ``s`` with round-half-up (ties towards +inf); left shift when ``s < 0``.

    >>> round_shift(np.array([5, 6, 7, -5, -6, -7]), 1).tolist()
    [3, 3, 4, -2, -3, -3]
    >>> round_shift(np.array([3, -3]), -2).tolist()
    [12, -12]
    """
    v = np.asarray(v, dtype=np.int64)
    if s > 0:
        return (v + (np.int64(1) << np.int64(s - 1))) >> np.int64(s)
    if s < 0:
        return v << np.int64(-s)
    return v


def align(v, f_from: int, f_to: int):
    """Move ``v`` from ``f_from`` to ``f_to`` fraction bits, saturating to int32.

    Exact while ``|v| * 2**(f_to - f_from)`` fits int64, which the quantizer guarantees
    (:func:`ethoedge.quantize.reference.check_exact`).

    >>> align(np.array([3]), 2, 4).tolist(), align(np.array([3]), 4, 2).tolist()
    ([12], [1])
    >>> align(np.array([2**40, -2**40]), 0, 0).tolist()  # saturates, never wraps
    [2147483647, -2147483648]
    """
    return saturate(round_shift(v, f_from - f_to), 32)


def requant(acc, f_acc: int, f_out: int, word_bits: int):
    """Round an accumulator at ``f_acc`` to a ``word_bits`` value at ``f_out``, saturating.

    >>> requant(np.array([1000, -1000, 129]), 4, 0, 8).tolist()
    [63, -62, 8]
    """
    return saturate(round_shift(acc, f_acc - f_out), word_bits)


def dot(w, x):
    """``x @ w.T``: the exact sum of products in int64 (no saturation: accumulators are int64).

    ``w`` is ``(O, K)``, ``x`` is ``(..., K)``; exact for ``W <= 16``, ``K <= 256``
    (``|sum| <= 256 * 2**15 * 2**15 = 2**38``).

    >>> dot(np.array([[2, -3], [1, 1]]), np.array([[10, 1], [5, 5]])).tolist()
    [[17, 11], [-5, 10]]
    >>> dot(np.array([[32767] * 4]), np.array([[32767] * 4])).tolist()  # beyond int32
    [[4294705156]]
    """
    return np.asarray(x, dtype=np.int64) @ np.asarray(w, dtype=np.int64).T


# Float types whose matrix products are exact on integers (significand bits, with the hidden
# bit): a product of integers computed in such a type is exact while every partial sum of
# absolute values stays <= 2**bits (docs/fixedpoint.md, "Exact products through float BLAS").
EXACT_FLOAT_TYPES: tuple[tuple[type[np.floating], int], ...] = ((np.float32, 24), (np.float64, 53))


class ExactAffine:
    """``dot(w, x) + b``, exact in int64, through float BLAS where a bound allows it.

    The bound is ``max_j sum_k |w[j, k]| * x_max + max|b|`` for inputs with ``|x| <= x_max``:
    it bounds every partial sum of every row, in whatever order the BLAS adds them, so when it
    is at most ``2**p`` (``p`` significand bits of a type in :data:`EXACT_FLOAT_TYPES`), every
    intermediate is an integer that the type represents exactly and the float result is the
    exact integer. Otherwise (or without such a type) the product is taken in int64.

    Args:
        w: ``(O, K)`` integer weights.
        b: ``(O,)`` integer bias in the accumulator's format (``bias_acc``), or None.
        x_max: a bound on ``|x|`` that the caller guarantees (``2**15`` for int16 inputs,
            ``2**(W-1)`` for ``W``-bit activations).

    >>> f = ExactAffine(np.array([[2, -3], [1, 1]]), np.array([1, 0]), x_max=10)
    >>> f(np.array([[10, 1], [5, 5]])).tolist(), f.dtype.__name__
    ([[18, 11], [-4, 10]], 'float32')
    >>> big = ExactAffine(np.array([[2**40, 1]]), None, x_max=2**20)  # 2**60: int64
    >>> big(np.array([[2**20, 1]])).tolist(), big.dtype.__name__
    ([[1152921504606846977]], 'int64')
    """

    def __init__(self, w: np.ndarray, b: np.ndarray | None, x_max: int) -> None:
        w = np.asarray(w, dtype=np.int64)
        b = np.zeros(w.shape[0], dtype=np.int64) if b is None else np.asarray(b, dtype=np.int64)
        row_l1 = max((sum(abs(int(v)) for v in row) for row in w.tolist()), default=0)
        b_max = max((abs(int(v)) for v in b.tolist()), default=0)
        self.bound = row_l1 * int(x_max) + b_max  # Python ints: no overflow
        self.dtype: type[np.generic] = np.int64
        for ftype, bits in EXACT_FLOAT_TYPES:
            if self.bound <= 2**bits:
                self.dtype = ftype
                break
        self.wt = np.ascontiguousarray(w.T.astype(self.dtype))
        self.b = b.astype(self.dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x @ w.T + b`` as int64 for ``x`` of shape ``(..., K)`` with ``|x| <= x_max``."""
        y = np.asarray(x).astype(self.dtype, copy=False) @ self.wt
        y += self.b
        return y.astype(np.int64, copy=False)


def bias_acc(b, f_b: int, f_acc: int):
    """A bias at ``f_b`` moved to an accumulator's ``f_acc`` fraction bits, in int64.

    >>> bias_acc(np.array([3, -3]), 2, 5).tolist(), bias_acc(np.array([5, -5]), 2, 1).tolist()
    ([24, -24], [3, -2])
    """
    return round_shift(b, f_b - f_acc)


def choose_frac_bits(values, word_bits: int, rule: str = "max", percentile: float = 99.99) -> int:
    """Fraction bits for a tensor: ``W - 1 - ceil(log2(r))``, ``r`` = max|x| or a percentile.

    Clipped to ``[-8, 2W + 8]``; an all-zero tensor gets ``W - 1``.

    >>> choose_frac_bits(np.array([0.5, -0.25]), 8)
    8
    >>> choose_frac_bits(np.array([3.0]), 8), choose_frac_bits(np.array([1.0]), 16)
    (5, 15)
    >>> choose_frac_bits(np.zeros(3), 8)
    7
    """
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    if a.size == 0:
        return word_bits - 1
    if rule == "max":
        r = float(a.max())
    elif rule == "percentile":
        r = float(np.percentile(a, percentile))
    else:
        raise ValueError(f"unknown fraction-bit rule {rule!r} (use 'max' or 'percentile')")
    if r <= 0.0 or not math.isfinite(r):
        return word_bits - 1
    f = word_bits - 1 - math.ceil(math.log2(r))
    return int(min(max(f, -8), 2 * word_bits + 8))


def quantize_values(x, frac_bits: int, word_bits: int) -> np.ndarray:
    """Float to integer: round half away from zero, then saturate (build time only).

    >>> quantize_values(np.array([0.5, 1.0, -1.0, 0.0039]), 7, 8).tolist()
    [64, 127, -128, 0]
    """
    scaled = np.asarray(x, dtype=np.float64) * (2.0**frac_bits)
    r = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return saturate(r.astype(np.int64), word_bits)


def build_table(fn: str) -> np.ndarray:
    """The 257-entry Q0.15 table of ``sigmoid`` or ``tanh`` over [-8, 8] in steps of 1/16."""
    k = np.arange(LUT_SIZE, dtype=np.float64)
    x = (k - 128.0) / 16.0
    if fn == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-x))
    elif fn == "tanh":
        y = np.tanh(x)
    else:
        raise ValueError(fn)
    s = y * 32768.0
    r = np.sign(s) * np.floor(np.abs(s) + 0.5)
    return np.clip(r, -32767, 32767).astype(np.int64)


SIGMOID_TABLE = build_table("sigmoid")
TANH_TABLE = build_table("tanh")


def activation(pre, frac: int, table: np.ndarray, word_bits: int):
    """LUT + linear interpolation activation (contract step by step); output at ``W-1`` bits.

    >>> int(activation(np.array([0]), 12, SIGMOID_TABLE, 8)[0])  # sigmoid(0) = 0.5
    64
    >>> int(activation(np.array([1 << 20]), 12, TANH_TABLE, 8)[0])  # tanh(256) -> 1 saturates
    127
    """
    u = saturate(round_shift(pre, frac - LUT_IN_FRAC), 16)
    i = (u >> 8) + 128
    r = u & 255
    t0 = table[i]
    t1 = table[np.minimum(i + 1, LUT_SIZE - 1)]
    y15 = t0 + round_shift((t1 - t0) * r, 8)
    return saturate(round_shift(y15, LUT_OUT_FRAC - (word_bits - 1)), word_bits)


@dataclass(frozen=True)
class ActivationError:
    fn: str
    max_abs_error_q15: float  # error of the interpolated Q0.15 value (before rounding to W bits)
    max_abs_error_w: dict[int, float]  # total error after rounding to W bits, per W


def activation_error(fn: str, word_bits: tuple[int, ...] = (8, 16)) -> ActivationError:
    """Measure the approximation's max |error| over every Q3.12 input in [-8, 8) and beyond."""
    table = SIGMOID_TABLE if fn == "sigmoid" else TANH_TABLE
    true = (lambda x: 1.0 / (1.0 + np.exp(-x))) if fn == "sigmoid" else np.tanh
    u = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    x = u / 4096.0
    i = (u >> 8) + 128
    r = u & 255
    y15 = table[i] + round_shift((table[np.minimum(i + 1, 256)] - table[i]) * r, 8)
    err15 = float(np.max(np.abs(y15 / 32768.0 - true(x))))
    errs = {}
    for w in word_bits:
        y = activation(u, LUT_IN_FRAC, table, w) / float(1 << (w - 1))
        errs[w] = float(np.max(np.abs(y - true(x))))
    return ActivationError(fn, err15, errs)


def static_dynamic(x, shift: int):
    """The integer static/dynamic input stage over time, the first axis of ``x`` (int16 values
    at the input's fraction bits; any trailing shape): ``s_0 = x_0``,
    ``s_t = s_{t-1} + round_shift(x_t - s_{t-1}, shift)``, ``d_t = sat16(x_t - s_t)``.
    Returns ``concat([d, s], axis=-1)`` (int64, twice the channels). ``s`` stays within the
    range of ``x`` (each step moves it part of the way towards ``x_t``), so it fits int16.

    >>> static_dynamic(np.array([[8], [8], [0], [0]]), 1).T.tolist()  # [d, s] over time
    [[0, 0, -4, -2], [8, 8, 4, 2]]
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.empty_like(x)
    s[0] = x[0]
    for t in range(1, x.shape[0]):
        s[t] = s[t - 1] + round_shift(x[t] - s[t - 1], shift)
    return np.concatenate([saturate(x - s, 16), s], axis=-1)
