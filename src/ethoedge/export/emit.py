"""The quantized student as an allocation-free C99 module (integer semantics: docs/fixedpoint.md).

``emit_c(qmodel, cfg) -> {file name: text}`` builds every file in memory after validating the
model; :func:`export_c` then writes them atomically (all or nothing).

Layout of the generated C:

- ``<prefix>.h``: sizes as macros, the caller-owned streaming state ``<prefix>_state_t`` and the
  API: ``<prefix>_classify`` (one window), ``<prefix>_init``/``_push``/``_scores`` (streaming).
- ``<prefix>.c``: fraction bits and shifts as prefixed ``enum`` constants, weights as typed
  ``static const`` arrays, the sigmoid/tanh tables, ``static inline`` helpers, the network.
- ``main.c`` (optional): an example that classifies one window both ways.

For W = 8 the columns of every weight matrix are stored in the order 0, 2, 1, 3 inside each
complete group of four, so that on a Cortex-M4 one ``SXTB16`` yields the int16 pair (w0, w1)
and ``SXTB16(ROR 8)`` the pair (w2, w3), feeding ``SMLAD``; the plain-C path reads the same
arrays with the matching indices. Values are unchanged, only their order in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ethoedge import __version__
from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.export.cgen import block_comment, c_array, c_enum, storage_type
from ethoedge.export.config import SUPPORTED_WORD_BITS, ExportConfig
from ethoedge.io import atomic_write_text
from ethoedge.quantize.fixedpoint import (
    LUT_IN_FRAC,
    LUT_OUT_FRAC,
    PRE_FRAC,
    SIGMOID_TABLE,
    TANH_TABLE,
    bias_acc,
)
from ethoedge.quantize.qmodel import ACTIVATION_NAMES, WEIGHT_NAMES, QuantizedStudent
from ethoedge.quantize.reference import MAX_WIDTH, check_exact


def n_samples_of(qmodel: QuantizedStudent, cfg: ExportConfig) -> int:
    """Window length L: ``cfg.n_samples``, else ``qmodel.meta['n_samples']``."""
    n = cfg.n_samples if cfg.n_samples is not None else qmodel.meta.get("n_samples")
    if n is None:
        raise ConfigError(
            "window length unknown: set ExportConfig(n_samples=...) or the quantized model's "
            "meta['n_samples']"
        )
    n = int(n)
    if not 1 <= n <= 65535:
        raise ConfigError(f"window length must be in 1..65535 samples, got {n}")
    return n


def _expected_shapes(h: int, m: int, c: int, k: int) -> dict[str, tuple[int, ...]]:
    return {
        "inp.weight": (h, k),
        "inp.bias": (h,),
        "gru.weight_ih": (3 * h, h),
        "gru.weight_hh": (3 * h, h),
        "gru.bias_ih": (3 * h,),
        "gru.bias_hh": (3 * h,),
        "mlp.weight": (m, h),
        "mlp.bias": (m,),
        "out.weight": (c, m),
        "out.bias": (c,),
    }


def fraction_bits(q: QuantizedStudent) -> dict[str, int]:
    """Every fraction-bit constant of the network (contract names), by C suffix."""
    w = q.word_bits
    f = {
        "IN": q.in_frac,
        "INP_WEIGHT": q.frac("inp.weight"),
        "INP_BIAS": q.frac("inp.bias"),
        "A": q.frac("a"),
        "GRU_WEIGHT_IH": q.frac("gru.weight_ih"),
        "GRU_WEIGHT_HH": q.frac("gru.weight_hh"),
        "GRU_BIAS_IH": q.frac("gru.bias_ih"),
        "GRU_BIAS_HH": q.frac("gru.bias_hh"),
        "H": q.frac("h"),
        "MLP_WEIGHT": q.frac("mlp.weight"),
        "MLP_BIAS": q.frac("mlp.bias"),
        "M": q.frac("m"),
        "OUT_WEIGHT": q.frac("out.weight"),
        "OUT_BIAS": q.frac("out.bias"),
        "LOGITS": q.frac("logits"),
        "GATE": w - 1,
        "PRE": PRE_FRAC,
    }
    f["ACC_INP"] = f["INP_WEIGHT"] + f["IN"]
    f["ACC_X"] = f["GRU_WEIGHT_IH"] + f["A"]
    f["ACC_H"] = f["GRU_WEIGHT_HH"] + f["H"]
    f["ACC_MLP"] = f["MLP_WEIGHT"] + f["H"]
    f["ACC_OUT"] = f["OUT_WEIGHT"] + f["M"]
    f["ACC_H_GATE"] = f["ACC_H"] + f["GATE"]
    return f


# name, (from, to) fraction bits: round_shift(v, f_from - f_to); comment
_SHIFTS = (
    ("SH_INP_BIAS", "INP_BIAS", "ACC_INP", "b_in' aligned to the input-layer accumulator"),
    ("SH_A", "ACC_INP", "A", "input-layer accumulator to a"),
    ("SH_BIH", "GRU_BIAS_IH", "ACC_X", "b_ih aligned to W_ih a"),
    ("SH_BHH", "GRU_BIAS_HH", "ACC_H", "b_hh aligned to W_hh h"),
    ("SH_GX", "ACC_X", "PRE", "W_ih a + b_ih to the pre-activation format"),
    ("SH_GH", "ACC_H", "PRE", "W_hh h + b_hh to the pre-activation format"),
    ("SH_N_TO_H", "GATE", "H", "candidate n to the hidden-state format"),
    ("SH_RN", "ACC_H_GATE", "PRE", "r * (W_hn h + b_hn) to the pre-activation format"),
    ("SH_MLP_BIAS", "MLP_BIAS", "ACC_MLP", "b_1 aligned to W_1 h"),
    ("SH_M", "ACC_MLP", "M", "MLP accumulator to m"),
    ("SH_OUT_BIAS", "OUT_BIAS", "ACC_OUT", "b_2 aligned to W_2 m"),
    ("SH_LOGITS", "ACC_OUT", "LOGITS", "output accumulator to the logits"),
)


def validate_qmodel(qmodel: object, cfg: ExportConfig) -> QuantizedStudent:
    """Check everything the C needs; raise :class:`EthoedgeError` with a clear message."""
    cfg.validate()
    if not isinstance(qmodel, QuantizedStudent):
        raise EthoedgeError(
            f"expected a quantized student (QuantizedStudent), got {type(qmodel).__name__}: "
            "quantize the model first (`ethoedge quantize BUNDLE --bits 8`)"
        )
    q = qmodel
    w = q.word_bits
    if w not in SUPPORTED_WORD_BITS:
        raise ConfigError(f"word length {w} cannot be exported to C (supported: 8, 16)")
    if cfg.word_bits is not None and cfg.word_bits != w:
        raise ConfigError(f"export asked for W={cfg.word_bits} but the model is quantized at W={w}")
    if q.n_channels != 3:
        raise EthoedgeError(f"the C export needs 3 input channels, the model has {q.n_channels}")
    if not (1 <= q.hidden <= MAX_WIDTH and 1 <= q.mlp_hidden <= MAX_WIDTH and q.n_classes >= 1):
        raise EthoedgeError(
            f"model sizes H={q.hidden}, M={q.mlp_hidden}, C={q.n_classes} outside the exportable "
            f"range (1..{MAX_WIDTH})"
        )
    shapes = _expected_shapes(q.hidden, q.mlp_hidden, q.n_classes, q.n_inputs)
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    for name in WEIGHT_NAMES:
        if name not in q.weights:
            raise EthoedgeError(f"quantized model has no tensor {name!r}")
        t = q.weights[name]
        if tuple(t.values.shape) != shapes[name]:
            raise EthoedgeError(
                f"tensor {name!r} has shape {tuple(t.values.shape)}, expected {shapes[name]}"
            )
        if t.word_bits != w:
            raise EthoedgeError(f"tensor {name!r} is {t.word_bits}-bit in a W={w} model")
        if t.values.size and (t.values.min() < lo or t.values.max() > hi):
            raise EthoedgeError(f"tensor {name!r} has values outside the {w}-bit range")
    for name in ACTIVATION_NAMES:
        if name not in q.act_frac:
            raise EthoedgeError(f"quantized model has no fraction bits for activation {name!r}")
    check_exact(q)  # the contract's int64 exactness bounds
    f = fraction_bits(q)
    for name, src, dst, _ in _SHIFTS:
        if abs(f[src] - f[dst]) > 62:
            raise EthoedgeError(f"shift {name} = {f[src] - f[dst]} is beyond 64-bit arithmetic")
    if len(q.class_names) not in (0, q.n_classes):
        raise EthoedgeError(f"{len(q.class_names)} class names for {q.n_classes} classes")
    n_samples_of(q, cfg)
    return q


# bias name -> the accumulator (fraction-bit key) it is aligned to
_BIAS_ACC = {
    "inp.bias": "ACC_INP",
    "gru.bias_ih": "ACC_X",
    "gru.bias_hh": "ACC_H",
    "mlp.bias": "ACC_MLP",
    "out.bias": "ACC_OUT",
}


def accumulator_types(q: QuantizedStudent) -> tuple[str, str]:
    """C types of the layer accumulators and of the hidden-state update sum.

    ``int32_t`` where the export proves (from the weights, the biases and W) that every value,
    including the rounding offset of the next right shift, fits int32; else ``int64_t``.
    Both give the same integers; int32 is cheaper on a 32-bit MCU.
    """
    w = q.word_bits
    if w != 8:
        return "int64_t", "int64_t"
    f = fraction_bits(q)
    lim = (1 << 31) - 1
    amax = 1 << (w - 1)  # |a|, |h|, |m| <= 2^(W-1)
    sites = [
        ("inp.bias", 32768 * q.n_inputs, "ACC_INP", "A"),
        ("gru.bias_ih", amax * q.hidden, "ACC_X", "PRE"),
        ("gru.bias_hh", amax * q.hidden, "ACC_H", "PRE"),
        ("mlp.bias", amax * q.hidden, "ACC_MLP", "M"),
        ("out.bias", amax * q.mlp_hidden, "ACC_OUT", "LOGITS"),
    ]
    acc_t = "int32_t"
    for bias, xmax, acc, nxt in sites:
        t = q.weights[bias]
        bmax = int(np.max(np.abs(bias_acc(t.values, t.frac_bits, f[acc])))) if t.values.size else 0
        shift = f[acc] - f[nxt]
        rnd = (1 << (shift - 1)) if shift > 0 else 0
        if amax * xmax + bmax + rnd > lim:
            acc_t = "int64_t"
    n_max = amax << max(0, f["H"] - (w - 1))
    hsum = (1 << w) * n_max + amax * amax + (1 << (w - 2))
    return acc_t, ("int32_t" if hsum <= lim else "int64_t")


def _preview(v: np.ndarray, n: int = 6) -> str:
    items = ", ".join(str(int(x)) for x in v.ravel()[:n])
    return "{" + items + (", ..." if v.size > n else "") + "}"


def dsp_order(mat: np.ndarray) -> np.ndarray:
    """Columns 0,2,1,3 within each complete group of 4 (W=8 storage order for SXTB16).

    >>> dsp_order(np.arange(10)[None, :]).tolist()
    [[0, 2, 1, 3, 4, 6, 5, 7, 8, 9]]
    """
    n = mat.shape[1]
    idx = np.arange(n)
    full = (n // 4) * 4
    g = idx[:full].reshape(-1, 4)[:, [0, 2, 1, 3]].ravel()
    return mat[:, np.concatenate([g, idx[full:]])]


def _header(q: QuantizedStudent, cfg: ExportConfig, fname: str, command: str | None) -> str:
    names = ", ".join(q.class_names) if q.class_names else "(unnamed)"
    return block_comment(
        [
            f"{fname}: generated by ethoedge {__version__}. Do not edit.",
            f"command: {command or '(Python API)'}",
            f"export config hash: {cfg.hash()}",
            f"model checksum (sha256): {q.checksum()}",
            f"GRU-MLP student in {q.word_bits}-bit dynamic fixed point: H={q.hidden}, "
            f"M={q.mlp_hidden}, C={q.n_classes}, L={n_samples_of(q, cfg)} samples per window.",
            f"classes: {names}",
            f"input: int16 acceleration in g at {q.in_frac} fraction bits, (x, y, z) per sample.",
            "Integer semantics: docs/fixedpoint.md of ethoedge. No malloc, no recursion,",
            "no libm, no stdio; every buffer size is a compile-time constant.",
        ]
    )


def _static_dynamic(q: QuantizedStudent) -> bool:
    """A low-pass input stage (``dynamic`` or ``static_dynamic``) in front of the input layer."""
    return q.input_stage != "raw"


def _input_note(q: QuantizedStudent) -> str:
    if not _static_dynamic(q):
        return ": the samples"
    parts = "the dynamic part sat16(x - s)"
    if q.input_stage == "static_dynamic":
        parts += ", then the static part s"
    return (
        f": per axis {parts}; s += round_shift(x - s, {q.static_shift}) from s = x at each "
        "window's first sample"
    )


def _lp_field(q: QuantizedStudent, pu: str) -> str:
    if not _static_dynamic(q):
        return ""
    return f"""
    int16_t lp[{pu}_N_CHANNELS];       /* static part of each axis (low-pass state) */"""


def _front_code(q: QuantizedStudent, p: str, pu: str) -> tuple[str, str]:
    """C of the input stage inside ``step``: declarations+code, and the input vector's name."""
    if not _static_dynamic(q):
        return "", "x"
    k = q.static_shift
    static_in = ""
    if q.input_stage == "static_dynamic":
        static_in = f"\n        xin[{pu}_N_CHANNELS + c] = s->lp[c];"
    code = f"""    int16_t xin[{pu}_N_INPUTS];
    int c;
    /* static/dynamic split: s = x at the window's first sample, then
       s += round_shift(x - s, {k}); inputs: sat16(x - s) per axis, then s per axis */
    for (c = 0; c < {pu}_N_CHANNELS; ++c) {{
        int32_t d;
        if (s->n_pushed == 0) {{
            s->lp[c] = x[c];
        }} else {{
            d = (int32_t)x[c] - s->lp[c];
            s->lp[c] = (int16_t)(s->lp[c] + ((d + (1 << ({k} - 1))) >> {k}));
        }}
        d = (int32_t)x[c] - s->lp[c];
        xin[c] = (int16_t)(d > 32767 ? 32767 : d < -32768 ? -32768 : d);{static_in}
    }}
"""
    return code, "xin"


def _emit_h(q: QuantizedStudent, cfg: ExportConfig, command: str | None) -> str:
    p, pu = cfg.prefix, cfg.prefix.upper()
    n = n_samples_of(q, cfg)
    return f"""{_header(q, cfg, p + ".h", command)}
#ifndef {pu}_H
#define {pu}_H

#include <stdint.h>

#define {pu}_N_SAMPLES {n}     /* L: samples per window */
#define {pu}_N_CHANNELS 3    /* x, y, z */
#define {pu}_N_INPUTS {q.n_inputs}      /* inputs of the input layer{_input_note(q)} */
#define {pu}_N_CLASSES {q.n_classes}     /* C */
#define {pu}_HIDDEN {q.hidden}       /* H: GRU size */
#define {pu}_MLP_HIDDEN {q.mlp_hidden}   /* M */
#define {pu}_WORD_BITS {q.word_bits}    /* W */
#define {pu}_IN_FRAC {q.in_frac}      /* input: int16 g * 2^IN_FRAC */
#define {pu}_LOGITS_FRAC {q.frac("logits")}  /* scores: int32 logits * 2^LOGITS_FRAC */

/* Streaming state, owned by the caller (no allocation inside). */
typedef struct {{
    int16_t h[{pu}_HIDDEN];            /* GRU hidden state (W-bit values) */{_lp_field(q, pu)}
    int32_t scores[{pu}_N_CLASSES];    /* scores of the last completed window */
    uint32_t n_pushed;                  /* samples of the current window so far */
}} {p}_state_t;

/* Reset the state: hidden state 0, no samples, scores 0. */
void {p}_init({p}_state_t *s);

/* Feed one sample (x, y, z). Returns 1 when it completes a window (its scores are then
   available from {p}_scores, and the next sample starts a new window), else 0. */
int {p}_push({p}_state_t *s, const int16_t sample[{pu}_N_CHANNELS]);

/* Copy the scores of the last completed window; returns its class id (first maximum). */
int {p}_scores(const {p}_state_t *s, int32_t scores[{pu}_N_CLASSES]);

/* Classify one window; writes the class scores and returns the class id (first maximum).
   Identical to init + N_SAMPLES pushes + scores. */
int {p}_classify(const int16_t x[{pu}_N_SAMPLES][{pu}_N_CHANNELS],
{" " * (len(p) + 14)}int32_t scores[{pu}_N_CLASSES]);

#endif /* {pu}_H */
"""


def _dot_fn(p: str, pu: str, w: int) -> str:
    if w == 8:
        return f"""/* sum_k w[k] x[k] over n columns, exact in int32 for W = 8 (|w x| < 2^22,
   n <= 1024). w holds each complete group of 4 columns in the order 0, 2, 1, 3 (see emit.py). */
#if {pu}_USE_DSP
/* bytes 1 and 3 of v, sign-extended to an int16 pair: SXTB16 with ROR #8 (one instruction) */
static inline int32_t {p}_sxtb16_ror8(uint32_t v)
{{
#if defined(__GNUC__)
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return __sxtb16((int32_t)((v >> 8) | (v << 24)));
#endif
}}
#endif

static inline int32_t {p}_dot(const int8_t *w, const int16_t *x, int n)
{{
    const int n4 = n - n % 4;
    int32_t acc = 0;
    int k;
#if {pu}_USE_DSP
    for (k = 0; k < n4; k += 4) {{
        uint32_t w4;
        int32_t x01, x23;
        memcpy(&w4, w + k, 4);
        memcpy(&x01, x + k, 4);
        memcpy(&x23, x + k + 2, 4);
        acc = __smlad(__sxtb16((int32_t)w4), x01, acc); /* w0 x0 + w1 x1 */
        acc = __smlad({p}_sxtb16_ror8(w4), x23, acc);   /* w2 x2 + w3 x3 */
    }}
#else
    for (k = 0; k < n4; k += 4) {{
        acc += w[k] * x[k] + w[k + 2] * x[k + 1] + w[k + 1] * x[k + 2] + w[k + 3] * x[k + 3];
    }}
#endif
    for (k = n4; k < n; ++k) {{
        acc += w[k] * x[k];
    }}
    return acc;
}}

/* The three rows w, w + stride, w + 2 stride (gates r, z, n of one unit) against one x:
   x is loaded once for three rows. Same arithmetic as {p}_dot. */
static inline void {p}_dot3(const int8_t *w, int stride, const int16_t *x, int n, int32_t acc[3])
{{
    const int n4 = n - n % 4;
    const int8_t *w1 = w + stride, *w2 = w + 2 * stride;
    int32_t a0 = 0, a1 = 0, a2 = 0;
    int k;
#if {pu}_USE_DSP
    for (k = 0; k < n4; k += 4) {{
        uint32_t v0, v1, v2;
        int32_t x01, x23;
        memcpy(&x01, x + k, 4);
        memcpy(&x23, x + k + 2, 4);
        memcpy(&v0, w + k, 4);
        memcpy(&v1, w1 + k, 4);
        memcpy(&v2, w2 + k, 4);
        a0 = __smlad(__sxtb16((int32_t)v0), x01, a0);
        a0 = __smlad({p}_sxtb16_ror8(v0), x23, a0);
        a1 = __smlad(__sxtb16((int32_t)v1), x01, a1);
        a1 = __smlad({p}_sxtb16_ror8(v1), x23, a1);
        a2 = __smlad(__sxtb16((int32_t)v2), x01, a2);
        a2 = __smlad({p}_sxtb16_ror8(v2), x23, a2);
    }}
#else
    for (k = 0; k < n4; k += 4) {{
        a0 += w[k] * x[k] + w[k + 2] * x[k + 1] + w[k + 1] * x[k + 2] + w[k + 3] * x[k + 3];
        a1 += w1[k] * x[k] + w1[k + 2] * x[k + 1] + w1[k + 1] * x[k + 2] + w1[k + 3] * x[k + 3];
        a2 += w2[k] * x[k] + w2[k + 2] * x[k + 1] + w2[k + 1] * x[k + 2] + w2[k + 3] * x[k + 3];
    }}
#endif
    for (k = n4; k < n; ++k) {{
        a0 += w[k] * x[k];
        a1 += w1[k] * x[k];
        a2 += w2[k] * x[k];
    }}
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
}}"""
    return f"""/* sum_k w[k] x[k] over n columns: exact in int64 for W = 16 (no saturation). */
static inline int64_t {p}_dot(const int16_t *w, const int16_t *x, int n)
{{
    int64_t acc = 0;
    int k = 0;
#if {pu}_USE_DSP
    for (k = 0; k < n - n % 2; k += 2) {{
        int32_t w2, x2;
        memcpy(&w2, w + k, 4);
        memcpy(&x2, x + k, 4);
        acc = __smlald(w2, x2, acc); /* w0 x0 + w1 x1 */
    }}
#endif
    for (; k < n; ++k) {{
        acc += (int32_t)w[k] * x[k];
    }}
    return acc;
}}

/* The three rows w, w + stride, w + 2 stride (gates r, z, n of one unit) against one x. */
static inline void {p}_dot3(const int16_t *w, int stride, const int16_t *x, int n, int64_t acc[3])
{{
    const int16_t *w1 = w + stride, *w2 = w + 2 * stride;
    int64_t a0 = 0, a1 = 0, a2 = 0;
    int k = 0;
#if {pu}_USE_DSP
    for (k = 0; k < n - n % 2; k += 2) {{
        int32_t x2, v0, v1, v2;
        memcpy(&x2, x + k, 4);
        memcpy(&v0, w + k, 4);
        memcpy(&v1, w1 + k, 4);
        memcpy(&v2, w2 + k, 4);
        a0 = __smlald(v0, x2, a0);
        a1 = __smlald(v1, x2, a1);
        a2 = __smlald(v2, x2, a2);
    }}
#endif
    for (; k < n; ++k) {{
        a0 += (int32_t)w[k] * x[k];
        a1 += (int32_t)w1[k] * x[k];
        a2 += (int32_t)w2[k] * x[k];
    }}
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
}}"""


def _emit_c(q: QuantizedStudent, cfg: ExportConfig, command: str | None) -> str:
    p, pu = cfg.prefix, cfg.prefix.upper()
    w = q.word_bits
    front_code, front_in = _front_code(q, p, pu)
    st = storage_type(w)
    f = fraction_bits(q)
    fconsts = [(f"F_{k}", str(v), "") for k, v in f.items() if not k.startswith("ACC_")]
    fconsts += [
        ("F_ACC_INP", f"{pu}_F_INP_WEIGHT + {pu}_F_IN", "W_in' x"),
        ("F_ACC_X", f"{pu}_F_GRU_WEIGHT_IH + {pu}_F_A", "Fx: W_ih a"),
        ("F_ACC_H", f"{pu}_F_GRU_WEIGHT_HH + {pu}_F_H", "Fh: W_hh h"),
        ("F_ACC_MLP", f"{pu}_F_MLP_WEIGHT + {pu}_F_H", "W_1 h"),
        ("F_ACC_OUT", f"{pu}_F_OUT_WEIGHT + {pu}_F_M", "W_2 m"),
        ("F_ACC_H_GATE", f"{pu}_F_ACC_H + {pu}_F_GATE", "r * (W_hn h + b_hn)"),
    ]
    shifts = [(n, f"{pu}_F_{a} - {pu}_F_{b}", c) for n, a, b, c in _SHIFTS]
    shifts += [
        ("SH_ACT_IN", f"{pu}_F_PRE - {LUT_IN_FRAC}", "pre-activation to the Q3.12 table input"),
        ("SH_ACT_OUT", f"{LUT_OUT_FRAC} - {pu}_F_GATE", "Q0.15 table output to W-1 bits"),
    ]
    arrays = []
    for name in WEIGHT_NAMES:
        t = q.weights[name]
        vals = t.values
        if name in _BIAS_ACC:
            acc = _BIAS_ACC[name]
            aligned = bias_acc(vals, t.frac_bits, f[acc])
            ctype = "int32_t" if np.all(np.abs(aligned) < (1 << 31) - 1) else "int64_t"
            arrays.append(
                c_array(
                    f"{p}_{name.replace('.', '_')}_acc",
                    ctype,
                    aligned,
                    comment=f"{name} ({vals.size}): {w}-bit b at {t.frac_bits} fraction bits, "
                    f"stored as bias_acc(b, {t.frac_bits}, F_{acc}) = "
                    f"round_shift(b, {t.frac_bits - f[acc]}); b = {_preview(vals)}",
                )
            )
            continue
        if vals.ndim == 2 and w == 8:
            vals = dsp_order(vals)
            order = ", columns in 0,2,1,3 order per group of 4"
        else:
            order = ""
        cname = f"{p}_{name.replace('.', '_')}"
        shape = " x ".join(str(s) for s in t.values.shape)
        arrays.append(
            c_array(
                cname,
                st,
                vals,
                comment=f"{name} ({shape}): real = v * 2^-{t.frac_bits}{order}",
            )
        )
    tables = [
        c_array(f"{p}_sigmoid_table", "int16_t", SIGMOID_TABLE, comment="sigmoid, Q0.15, 257"),
        c_array(f"{p}_tanh_table", "int16_t", TANH_TABLE, comment="tanh, Q0.15, 257 entries"),
    ]
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    dsp_guard = (
        f"#if defined(__ARM_FEATURE_DSP) && !defined({pu}_NO_DSP)"
        if cfg.use_dsp
        else "#if 0 /* exported with use_dsp=False */"
    )
    wmax = f"{pu}_WMAX"
    acc_t, hsum_t = accumulator_types(q)
    nl = "\n"
    return f"""{_header(q, cfg, p + ".c", command)}
#include "{p}.h"

#include <string.h> /* memcpy of 4 bytes: compiles to one load */

{dsp_guard}
#include <arm_acle.h>
#define {pu}_USE_DSP 1 /* SMLAD/SMLALD/SXTB16; bit-identical to the plain C below */
#else
#define {pu}_USE_DSP 0
#endif

/* Fraction bits of every tensor (real value = v * 2^-F). */
{c_enum(pu, fconsts)}

/* Shifts: round_shift(v, s) moves v from one format to another (s < 0: left shift). */
{c_enum(pu, shifts)}

#define {wmax} {hi}
#define {pu}_SH_ACT_OUT_POSITIVE {int(LUT_OUT_FRAC - (w - 1) > 0)}
#define {pu}_WMIN ({lo})

{nl.join(arrays)}

{nl.join(tables)}

/* Accumulator types: int32_t where the exporter proved that every value fits (see
   ethoedge.export.emit.accumulator_types), else int64_t. The integers are the same. */
typedef {acc_t} {p}_acc_t;  /* W x + b of every layer */
typedef {"int32_t" if w == 8 else "int64_t"} {p}_dot_t;  /* W x (exact) */
typedef {hsum_t} {p}_hsum_t; /* (1 - z) n + z h before rounding */

static inline int32_t {p}_sat32(int64_t v)
{{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}}

/* sat32(a + b) */
static inline int32_t {p}_add_sat(int32_t a, int32_t b)
{{
#if {pu}_USE_DSP
    return __qadd(a, b);
#else
    return {p}_sat32((int64_t)a + b);
#endif
}}

/* sat(v, W) */
static inline int16_t {p}_satw(int64_t v)
{{
    return (int16_t)(v > {wmax} ? {wmax} : v < {pu}_WMIN ? {pu}_WMIN : v);
}}

/* round_shift(v, s): s > 0: (v + 2^(s-1)) >> s (ties towards +inf); s < 0: v << -s (int64,
   two's complement wrap as in the reference); s == 0: v. s is always a constant here. */
static inline int64_t {p}_round_shift(int64_t v, int s)
{{
    if (s > 0) {{
        return (v + ((int64_t)1 << (s - 1))) >> s;
    }}
    if (s < 0) {{
        return (int64_t)((uint64_t)v << -s);
    }}
    return v;
}}

/* align(v, f_from, f_to) = sat32(round_shift(v, f_from - f_to)) */
static inline int32_t {p}_align(int64_t v, int s)
{{
    return {p}_sat32({p}_round_shift(v, s));
}}

/* align(v, f_from, f_to) for an accumulator: the right shift stays in {p}_acc_t (proven
   not to overflow), a left shift goes through int64. */
static inline int32_t {p}_align_acc({p}_acc_t v, int s)
{{
    if (s > 0) {{
        return {p}_sat32((v + (({p}_acc_t)1 << (s - 1))) >> s);
    }}
    return {p}_align(v, s);
}}

/* requant(acc, f_acc, f_out, W) = sat(round_shift(acc, s), W) */
static inline int16_t {p}_requant({p}_acc_t v, int s)
{{
    if (s > 0) {{
        return {p}_satw((v + (({p}_acc_t)1 << (s - 1))) >> s);
    }}
    return {p}_satw({p}_round_shift(v, s));
}}

/* act(pre): 257-entry Q0.15 table over [-8, 8] with linear interpolation, output at W-1 bits.
   pre is at F_PRE = 12 fraction bits, so step 1 of the contract is sat16(pre). The products
   and sums below stay within int32 (|T[i+1] - T[i]| * 255 < 2^24). */
static inline int16_t {p}_act(int32_t pre, const int16_t table[257])
{{
    int32_t u = {p}_align(pre, {pu}_SH_ACT_IN);
    int32_t i, r, t0, y15;
    u = u > 32767 ? 32767 : u < -32768 ? -32768 : u; /* Q3.12 in int16 */
    i = (u >> 8) + 128;
    r = u & 255;
    t0 = table[i];
    y15 = t0 + (((table[i + 1] - t0) * r + 128) >> 8);
#if {pu}_SH_ACT_OUT_POSITIVE
    y15 = (y15 + (1 << ({pu}_SH_ACT_OUT - 1))) >> {pu}_SH_ACT_OUT;
#endif
    return (int16_t)(y15 > {pu}_WMAX ? {pu}_WMAX : y15 < {pu}_WMIN ? {pu}_WMIN : y15);
}}

{_dot_fn(p, pu, w)}

/* Input layer and one GRU step for one sample; updates s->h. */
static void {p}_step({p}_state_t *s, const int16_t x[{pu}_N_CHANNELS])
{{
    int16_t a[{pu}_HIDDEN];
    int16_t h_new[{pu}_HIDDEN];
    int j;
{front_code}    /* a = relu(W_in' x + b_in') */
    for (j = 0; j < {pu}_HIDDEN; ++j) {{
        {p}_acc_t acc = ({p}_acc_t){p}_dot({p}_inp_weight[j], {front_in}, {pu}_N_INPUTS)
                        + {p}_inp_bias_acc[j];
        int16_t v = {p}_requant(acc, {pu}_SH_A);
        a[j] = v > 0 ? v : 0;
    }}
    for (j = 0; j < {pu}_HIDDEN; ++j) {{
        /* gx = W_ih a + b_ih, gh = W_hh h + b_hh for the rows of unit j in gates r, z, n */
        const int jz = {pu}_HIDDEN + j, jn = 2 * {pu}_HIDDEN + j;
        const int stride = {pu}_HIDDEN * {pu}_HIDDEN; /* rows j, H + j, 2H + j */
        {p}_dot_t dx[3], dh[3];
        {p}_acc_t gx_r, gx_z, gx_n, gh_r, gh_z, gh_n;
        {p}_dot3({p}_gru_weight_ih[j], stride, a, {pu}_HIDDEN, dx);
        {p}_dot3({p}_gru_weight_hh[j], stride, s->h, {pu}_HIDDEN, dh);
        gx_r = ({p}_acc_t)dx[0] + {p}_gru_bias_ih_acc[j];
        gx_z = ({p}_acc_t)dx[1] + {p}_gru_bias_ih_acc[jz];
        gx_n = ({p}_acc_t)dx[2] + {p}_gru_bias_ih_acc[jn];
        gh_r = ({p}_acc_t)dh[0] + {p}_gru_bias_hh_acc[j];
        gh_z = ({p}_acc_t)dh[1] + {p}_gru_bias_hh_acc[jz];
        gh_n = ({p}_acc_t)dh[2] + {p}_gru_bias_hh_acc[jn];
        int16_t r, z, n;
        int32_t rn;
        {p}_hsum_t hs;
        /* r = sigmoid(W_ir a + b_ir + W_hr h + b_hr) */
        r = {p}_act({p}_add_sat({p}_align_acc(gx_r, {pu}_SH_GX), {p}_align_acc(gh_r, {pu}_SH_GH)),
                    {p}_sigmoid_table);
        /* z = sigmoid(W_iz a + b_iz + W_hz h + b_hz) */
        z = {p}_act({p}_add_sat({p}_align_acc(gx_z, {pu}_SH_GX), {p}_align_acc(gh_z, {pu}_SH_GH)),
                    {p}_sigmoid_table);
        /* rn = r * (W_hn h + b_hn): exact int64 product at Fh + W - 1, rounded once to FG */
        rn = {p}_align((int64_t)r * gh_n, {pu}_SH_RN);
        /* n = tanh(W_in a + b_in + r * (W_hn h + b_hn)) */
        n = {p}_act({p}_add_sat({p}_align_acc(gx_n, {pu}_SH_GX), rn), {p}_tanh_table);
        /* h' = (1 - z) n + z h */
        hs = ({p}_hsum_t)((1 << {pu}_F_GATE) - z) * {p}_align(n, {pu}_SH_N_TO_H)
             + ({p}_hsum_t)z * s->h[j];
        h_new[j] = {p}_satw((hs + (({p}_hsum_t)1 << ({pu}_F_GATE - 1))) >> {pu}_F_GATE);
    }}
    for (j = 0; j < {pu}_HIDDEN; ++j) {{
        s->h[j] = h_new[j];
    }}
}}

/* MLP and output layer on the last hidden state. */
static void {p}_head(const int16_t h[{pu}_HIDDEN], int32_t logits[{pu}_N_CLASSES])
{{
    int16_t m[{pu}_MLP_HIDDEN];
    int j;
    /* m = relu(W_1 h + b_1) */
    for (j = 0; j < {pu}_MLP_HIDDEN; ++j) {{
        {p}_acc_t acc = ({p}_acc_t){p}_dot({p}_mlp_weight[j], h, {pu}_HIDDEN)
                        + {p}_mlp_bias_acc[j];
        int16_t v = {p}_requant(acc, {pu}_SH_M);
        m[j] = v > 0 ? v : 0;
    }}
    /* logits = W_2 m + b_2 */
    for (j = 0; j < {pu}_N_CLASSES; ++j) {{
        {p}_acc_t acc = ({p}_acc_t){p}_dot({p}_out_weight[j], m, {pu}_MLP_HIDDEN)
                        + {p}_out_bias_acc[j];
        logits[j] = {p}_requant(acc, {pu}_SH_LOGITS);
    }}
}}

void {p}_init({p}_state_t *s)
{{
    int j;
    for (j = 0; j < {pu}_HIDDEN; ++j) {{
        s->h[j] = 0;
    }}
    for (j = 0; j < {pu}_N_CLASSES; ++j) {{
        s->scores[j] = 0;
    }}
    s->n_pushed = 0;
}}

int {p}_push({p}_state_t *s, const int16_t sample[{pu}_N_CHANNELS])
{{
    int j;
    {p}_step(s, sample);
    if (++s->n_pushed < {pu}_N_SAMPLES) {{
        return 0;
    }}
    {p}_head(s->h, s->scores);
    for (j = 0; j < {pu}_HIDDEN; ++j) {{
        s->h[j] = 0;
    }}
    s->n_pushed = 0;
    return 1;
}}

int {p}_scores(const {p}_state_t *s, int32_t scores[{pu}_N_CLASSES])
{{
    int j, best = 0;
    for (j = 0; j < {pu}_N_CLASSES; ++j) {{
        scores[j] = s->scores[j];
        if (s->scores[j] > s->scores[best]) {{
            best = j;
        }}
    }}
    return best;
}}

int {p}_classify(const int16_t x[{pu}_N_SAMPLES][{pu}_N_CHANNELS],
{" " * (len(p) + 14)}int32_t scores[{pu}_N_CLASSES])
{{
    {p}_state_t s;
    int t;
    {p}_init(&s);
    for (t = 0; t < {pu}_N_SAMPLES; ++t) {{
        (void){p}_push(&s, x[t]);
    }}
    return {p}_scores(&s, scores);
}}
"""


def _emit_main(q: QuantizedStudent, cfg: ExportConfig) -> str:
    p, pu = cfg.prefix, cfg.prefix.upper()
    return f"""/* main.c: example use of {p} (generated by ethoedge {__version__}; stdio is used
   here only to print, never inside the model). Build: cc -std=c99 -O2 {p}.c main.c -o example */
#include <inttypes.h>
#include <stdio.h>

#include "{p}.h"

int main(void)
{{
    static int16_t window[{pu}_N_SAMPLES][{pu}_N_CHANNELS];
    int32_t scores[{pu}_N_CLASSES];
    {p}_state_t state;
    int t, c, cls;

    /* a synthetic window: 1 g on z, a small oscillation on x (values are g * 2^IN_FRAC) */
    for (t = 0; t < {pu}_N_SAMPLES; ++t) {{
        window[t][0] = (int16_t)(((t % 8) - 4) * (1 << ({pu}_IN_FRAC - 4)));
        window[t][1] = 0;
        window[t][2] = (int16_t)(1 << {pu}_IN_FRAC);
    }}

    /* 1. the whole window at once */
    cls = {p}_classify((const int16_t(*)[{pu}_N_CHANNELS])window, scores);
    printf("classify: class %d, scores", cls);
    for (c = 0; c < {pu}_N_CLASSES; ++c) {{
        printf(" %" PRId32, scores[c]);
    }}
    printf("\\n");

    /* 2. streaming: one sample at a time, as it arrives from the sensor */
    {p}_init(&state);
    for (t = 0; t < {pu}_N_SAMPLES; ++t) {{
        if ({p}_push(&state, window[t])) {{
            cls = {p}_scores(&state, scores);
            printf("streaming: class %d, scores", cls);
            for (c = 0; c < {pu}_N_CLASSES; ++c) {{
                printf(" %" PRId32, scores[c]);
            }}
            printf("\\n");
        }}
    }}
    return 0;
}}
"""


def emit_c(
    qmodel: QuantizedStudent, cfg: ExportConfig | None = None, *, command: str | None = None
) -> dict[str, str]:
    """Validate ``qmodel`` and build the C module in memory: ``{file name: text}``.

    Raises:
        EthoedgeError: not a quantized student, unsupported W, bad prefix, inconsistent model.
    """
    cfg = cfg or ExportConfig()
    q = validate_qmodel(qmodel, cfg)
    files = {
        f"{cfg.prefix}.h": _emit_h(q, cfg, command),
        f"{cfg.prefix}.c": _emit_c(q, cfg, command),
    }
    if cfg.example_main:
        files["main.c"] = _emit_main(q, cfg)
    return files


def write_files(files: Mapping[str, str], out_dir: str | Path) -> list[Path]:
    """Write already-built files atomically into ``out_dir`` (each file all or nothing)."""
    out = Path(out_dir)
    return [atomic_write_text(out / name, text) for name, text in files.items()]


def export_c(
    qmodel: QuantizedStudent,
    out_dir: str | Path,
    cfg: ExportConfig | None = None,
    *,
    command: str | None = None,
) -> list[Path]:
    """Emit the C module for ``qmodel`` into ``out_dir``; nothing is written if it fails.

    Returns the written paths (``<prefix>.h``, ``<prefix>.c``, ``main.c`` if asked).
    """
    files = emit_c(qmodel, cfg, command=command)
    return write_files(files, out_dir)
