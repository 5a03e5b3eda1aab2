"""The integer-only reference of the quantized student, in NumPy (``docs/fixedpoint.md``).

This is the single source of truth the simulated-quantized PyTorch graph
(:mod:`ethoedge.quantize.rewrite`) and the generated C are checked against, bit for bit.
Two implementations compute the same integers:

- :func:`reference_logits_plain`: the contract line by line, in int64 arrays only (no
  floats), explicit shifts, vectorised over a batch of windows and looping over time only;
- :func:`reference_logits` (what everything else calls): the same computation rearranged for
  speed. Matrix products go through float BLAS where the documented bound proves them exact
  (:class:`~ethoedge.quantize.fixedpoint.ExactAffine`, else int64); each activation is one
  look-up in a table of all 65,536 int16 inputs built with the contract's integer formula; the
  state update is ``2**(W-1) n + z (h - n)``, algebraically equal in exact integers; windows are
  processed in chunks, the time loop inside, the input half a few time steps at a time, so that
  the arrays stay in cache.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from ethoedge.errors import ConfigError, DataError
from ethoedge.quantize.fixedpoint import (
    LUT_IN_FRAC,
    PRE_FRAC,
    SIGMOID_TABLE,
    TANH_TABLE,
    ExactAffine,
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


def _checked_input(q: QuantizedStudent, X_int16: np.ndarray) -> np.ndarray:
    check_exact(q)
    X = np.asarray(X_int16)
    if X.ndim != 3 or X.shape[1] != q.n_channels:
        raise DataError(f"expected windows of shape (n, {q.n_channels}, L), got {X.shape}")
    if not np.issubdtype(X.dtype, np.integer):
        raise DataError(f"reference_logits takes integer windows, got dtype {X.dtype}")
    return X


def reference_logits_plain(qmodel: QuantizedStudent, X_int16: np.ndarray) -> np.ndarray:
    """:func:`reference_logits` written as the contract reads, in int64 only (slower)."""
    q = qmodel
    X = _checked_input(q, X_int16)
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


CHUNK = 512  # windows per chunk of reference_logits: its per-step arrays stay in cache


def reference_logits(
    qmodel: QuantizedStudent, X_int16: np.ndarray, *, chunk: int = CHUNK, threads: int = 1
) -> np.ndarray:
    """Integer logits ``(n, C)`` int64 (at ``qmodel.frac('logits')``) of int16 windows.

    Bit-identical to :func:`reference_logits_plain` (the contract step by step), faster.

    Args:
        qmodel: the quantized student.
        X_int16: ``(n, 3, L)`` integer acceleration at ``qmodel.in_frac`` fraction bits
            (from :func:`quantize_input`).
        chunk: windows computed together.
        threads: chunks computed side by side on this many Python threads (NumPy releases
            the GIL in its loops); each chunk's integers do not depend on the others.

    The many small matrix products run with one BLAS thread (``threadpoolctl``): threaded
    BLAS gains nothing at these sizes and collapses when the cores are busy; parallelism
    belongs to the caller (the executor's jobs, the ``int`` engine's ``threads``).
    """
    q = qmodel
    X = _checked_input(q, X_int16)
    net = _FastNet(q)
    step = max(1, int(chunk))
    if threads > 1 and len(X) > step:  # as many chunks per thread, none above ``chunk``
        per = -(-len(X) // (threads * step)) * threads
        step = -(-len(X) // per)
    starts = range(0, len(X), step)
    with threadpool_limits(limits=1, user_api="blas"):
        if threads > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(int(threads), len(starts))) as pool:
                parts = list(pool.map(lambda i: net(X[i : i + step]), starts))
        else:
            parts = [net(X[i : i + step]) for i in starts]
    if not parts:
        return np.zeros((0, q.n_classes), dtype=np.int64)
    return np.concatenate(parts, axis=0)


# The fast path looks the activations up by their Q3.12 int16 input: the pre-activations are
# at FG = 12 fraction bits, so the contract's first LUT step is a saturation only.
assert PRE_FRAC == LUT_IN_FRAC


@lru_cache(maxsize=32)
def _full_table(fn: str, word_bits: int, f_out: int) -> np.ndarray:
    """``align(act(u, FG, T, W), W - 1, f_out)`` for every int16 ``u`` (index ``u + 2**15``)."""
    u = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    table = SIGMOID_TABLE if fn == "sigmoid" else TANH_TABLE
    y = align(activation(u, PRE_FRAC, table, word_bits), word_bits - 1, f_out)
    y.setflags(write=False)
    return y


def _shift_round(v: np.ndarray, s: int) -> None:
    """``v = round_shift(v, s)`` in place (int64)."""
    if s > 0:
        v += 1 << (s - 1)
        v >>= s
    elif s < 0:
        v <<= -s


def _clip(v: np.ndarray, lo: int, hi: int) -> None:
    np.clip(v, lo, hi, out=v)


_I32 = (-(1 << 31), (1 << 31) - 1)
BLOCK_ROWS = 2048  # samples x windows of the input half computed together
_U16 = 1 << 15  # offset of an int16 value's table index


class _FastNet:
    """The prepared integer model of :func:`reference_logits` (products, tables, shifts)."""

    def __init__(self, q: QuantizedStudent) -> None:
        self.q = q
        W, H = q.word_bits, q.hidden
        self.sh = shifts(q)
        w_max = 1 << (W - 1)  # |a|, |h|, |m| <= 2**(W-1): W-bit values

        def affine(wname: str, bname: str, f_x: int, x_max: int, rows=slice(None)):
            f_acc = q.frac(wname) + f_x
            b = bias_acc(_w(q, bname), q.frac(bname), f_acc)
            return ExactAffine(_w(q, wname)[rows], b[rows], x_max)

        fa, fh = q.frac("a"), q.frac("h")
        self.inp = affine("inp.weight", "inp.bias", q.in_frac, 1 << 15)
        self.ih_rz = affine("gru.weight_ih", "gru.bias_ih", fa, w_max, slice(0, 2 * H))
        self.ih_n = affine("gru.weight_ih", "gru.bias_ih", fa, w_max, slice(2 * H, 3 * H))
        self.hh_rz = affine("gru.weight_hh", "gru.bias_hh", fh, w_max, slice(0, 2 * H))
        self.hh_n = affine("gru.weight_hh", "gru.bias_hh", fh, w_max, slice(2 * H, 3 * H))
        self.mlp = affine("mlp.weight", "mlp.bias", fh, w_max)
        self.out = affine("out.weight", "out.bias", q.frac("m"), w_max)
        self.sigmoid = _full_table("sigmoid", W, W - 1)
        self.tanh_h = _full_table("tanh", W, fh)  # n already aligned to h's format

    def _input_half(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The input layer and ``W_ih a + b_ih`` for samples ``x`` ``(T, n, inputs)``, moved to
        FG and offset by ``2**15`` (the table index): ``(T, n, 2H)`` and ``(T, n, H)``."""
        q, sh = self.q, self.sh
        W, H = q.word_bits, q.hidden
        T, n, _ = x.shape
        # 1. a = relu(W_in' x + b_in')
        a = self.inp(x.reshape(T * n, -1))
        _shift_round(a, sh["acc_to_a"])
        _clip(a, 0, (1 << (W - 1)) - 1)  # relu of sat(., W)
        # 2. the GRU's input half (does not depend on h)
        out = []
        for f, width in ((self.ih_rz, 2 * H), (self.ih_n, H)):
            g = f(a)
            _shift_round(g, sh["gx_to_pre"])
            _clip(g, *_I32)
            g += _U16
            out.append(g.reshape(T, n, width))
        return out[0], out[1]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        q, sh = self.q, self.sh
        W, H = q.word_bits, q.hidden
        x = saturate(X, 16).transpose(2, 0, 1)  # (L, n, 3): time first
        L, n, _ = x.shape
        if q.input_stage != "raw":
            x = static_dynamic(x, q.static_shift)[..., : q.n_inputs]
        x = np.ascontiguousarray(x)
        tb = max(1, BLOCK_ROWS // max(n, 1))  # time steps of the input half computed at once
        h = np.zeros((n, H), dtype=np.int64)
        hx_rz = np.empty((n, H), dtype=self.hh_rz.dtype)
        hx_n = np.empty((n, H), dtype=self.hh_n.dtype)
        f_rz = np.empty((n, 2 * H), dtype=self.hh_rz.dtype)
        f_n = np.empty((n, H), dtype=self.hh_n.dtype)
        gh_rz = np.empty((n, 2 * H), dtype=np.int64)
        gh_n = np.empty((n, H), dtype=np.int64)
        rz = np.empty((n, 2 * H), dtype=np.int64)
        nh = np.empty((n, H), dtype=np.int64)
        d = np.empty((n, H), dtype=np.int64)
        s_gh, s_rn, s_h = sh["gh_to_pre"], sh["rn_to_pre"], W - 1
        hi = (1 << (W - 1)) - 1
        for t in range(L):
            if t % tb == 0:
                gx_rz, gx_n = self._input_half(x[t : t + tb])
            # gh = W_hh h + b_hh, exact
            np.copyto(hx_rz, h, casting="unsafe")
            np.matmul(hx_rz, self.hh_rz.wt, out=f_rz)
            f_rz += self.hh_rz.b
            np.copyto(gh_rz, f_rz, casting="unsafe")
            np.copyto(hx_n, h, casting="unsafe")
            np.matmul(hx_n, self.hh_n.wt, out=f_n)
            f_n += self.hh_n.b
            np.copyto(gh_n, f_n, casting="unsafe")
            # r, z = sigmoid(sat16(align(gx) + align(gh)))   (sat32 then sat16 = sat16)
            _shift_round(gh_rz, s_gh)
            _clip(gh_rz, *_I32)
            gh_rz += gx_rz[t % tb]
            _clip(gh_rz, 0, 2 * _U16 - 1)
            np.take(self.sigmoid, gh_rz, out=rz)
            r, z = rz[:, :H], rz[:, H:]
            # n = tanh(sat16(align(gx_n) + align(r * gh_n))), then aligned to f_h by the table
            gh_n *= r
            _shift_round(gh_n, s_rn)
            _clip(gh_n, *_I32)
            gh_n += gx_n[t % tb]
            _clip(gh_n, 0, 2 * _U16 - 1)
            np.take(self.tanh_h, gh_n, out=nh)
            # h' = sat(round_shift(2**(W-1) n + z (h - n), W - 1), W)
            np.subtract(h, nh, out=d)
            d *= z
            nh <<= s_h
            d += nh
            _shift_round(d, s_h)
            _clip(d, -hi - 1, hi)
            h, d = d, h
        # 3. m = relu(W_1 h_L + b_1); 4. logits = W_2 m + b_2
        m = self.mlp(h)
        _shift_round(m, sh["acc_to_m"])
        _clip(m, 0, (1 << (W - 1)) - 1)
        logits = self.out(m)
        _shift_round(logits, sh["acc_to_logits"])
        _clip(logits, -hi - 1, hi)
        return logits


def reference_logits_batched(
    qmodel: QuantizedStudent, X_int16: np.ndarray, batch: int = 4096, *, threads: int = 1
) -> np.ndarray:
    """:func:`reference_logits` in batches of ``batch`` windows (bounded memory), each on
    ``threads`` threads."""
    parts = [
        reference_logits(qmodel, X_int16[i : i + batch], threads=threads)
        for i in range(0, len(X_int16), batch)
    ]
    if not parts:
        return np.zeros((0, qmodel.n_classes), dtype=np.int64)
    return np.concatenate(parts, axis=0)


def predict(qmodel: QuantizedStudent, X_g: np.ndarray) -> np.ndarray:
    """Class ids (first index of the maximum integer logit) of raw windows ``(n, 3, L)`` in g."""
    logits = reference_logits_batched(qmodel, quantize_input(X_g, qmodel.in_frac))
    return np.argmax(logits, axis=1).astype(np.int64)
