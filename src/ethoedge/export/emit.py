"""The quantized student as an allocation-free C99 module (integer semantics: docs/fixedpoint.md).

``emit_c(qmodel, cfg) -> {file name: text}`` builds every file in memory after validating the
model; :func:`export_c` then writes them atomically (all or nothing).

Layout of the generated C:

- ``<prefix>.h``: sizes as macros, the caller-owned streaming state ``<prefix>_state_t`` and the
  API: ``<prefix>_classify`` (one window), ``<prefix>_init``/``_push``/``_scores`` (streaming,
  a window every ``hop`` samples).
- ``<prefix>.c``: fraction bits and shifts as prefixed ``enum`` constants, weights and aligned
  biases as typed ``static const`` arrays, a ``const ethoedge_model_t`` describing the network,
  and the API on top of the kernels. No code of its own beyond the API.
- ``ethoedge_kernels.h``/``ethoedge_kernels.c``: the kernel library shipped in
  ``ethoedge/export/kernels/`` (mat-vec, requantise, LUT activations, GRU update, head; portable
  C and Armv7E-M DSP side by side). It is the same file for every model, so several exported
  models link into one firmware with one copy of the kernels and tables.
- ``main.c`` (optional): an example that classifies one window both ways.

Weight matrices are stored in the kernels' tile layout (:func:`tile_matrix`): rows in tiles of
4, the GRU rows in blocks of :data:`GRU_BLOCK` units (:func:`gru_row_order`), and for W = 8
the columns 0, 2, 1, 3 inside each group of four so that one ``SXTB16`` yields the int16 pair
(w0, w1) and ``SXTB16(ROR 8)`` the pair (w2, w3), feeding ``SMLAD``. Values are unchanged,
only their order in memory. Where the exporter proves it exact (:func:`pairs_ok`), the W = 8
layers take the pair layout instead (:func:`pair_matrix`): two rows in each weight word, whose
halfwords are ``256 w_b + w_a``, so that one ``SMLAD`` sums both rows of a column pair and one
``SXTB16`` and ``SMLAD`` the first (4 MACs in 3 instructions instead of 4 in 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ethoedge import __version__
from ethoedge.errors import ConfigError, EthoedgeError, unwritable
from ethoedge.export.cgen import block_comment, c_array, c_enum, storage_type
from ethoedge.export.config import SUPPORTED_WORD_BITS, ExportConfig
from ethoedge.io import atomic_write_files
from ethoedge.quantize.fixedpoint import LUT_IN_FRAC, PRE_FRAC, bias_acc
from ethoedge.quantize.qmodel import WEIGHT_NAMES, QuantizedStudent
from ethoedge.quantize.reference import MAX_WIDTH, check_exact

KERNELS_DIR = Path(__file__).parent / "kernels"
KERNELS_VERSION = 7  # ETHOEDGE_KERNELS_VERSION of ethoedge_kernels.h
GRU_BLOCK = 8  # ETHOEDGE_GRU_BLOCK: GRU units whose gate rows the kernels compute together
# the kernels take the activation input as sat16(pre): the pre-activation format is Q3.12
assert PRE_FRAC == LUT_IN_FRAC


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
    try:
        q.check()
    except ValueError as e:
        raise EthoedgeError(str(e)) from None
    if q.n_channels != 3:
        raise EthoedgeError(f"the C export needs 3 input channels, the model has {q.n_channels}")
    if not (q.hidden <= MAX_WIDTH and q.mlp_hidden <= MAX_WIDTH):
        raise EthoedgeError(
            f"model sizes H={q.hidden}, M={q.mlp_hidden}, C={q.n_classes} outside the exportable "
            f"range (1..{MAX_WIDTH})"
        )
    check_exact(q)  # the contract's int64 exactness bounds
    for name, v in shifts(q).items():
        if abs(v) > 62:
            raise EthoedgeError(f"shift {name} = {v} is beyond 64-bit arithmetic")
    n_samples_of(q, cfg)
    return q


def shifts(q: QuantizedStudent) -> dict[str, int]:
    """Every shift of the network by C name (``SH_A``, ``SH_GX``, ...): the source format's
    fraction bits minus the destination's (negative: a left shift)."""
    f = fraction_bits(q)
    return {name: f[src] - f[dst] for name, src, dst, _ in _SHIFTS}


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


def _bias_max(q: QuantizedStudent, bias: str, acc: str) -> int:
    """max |bias_acc| of a bias aligned to its accumulator (0 for an empty one)."""
    t = q.weights[bias]
    f = fraction_bits(q)
    return int(np.max(np.abs(bias_acc(t.values, t.frac_bits, f[acc])))) if t.values.size else 0


def update64_rshift_ok(q: QuantizedStudent) -> bool:
    """Whether ``ethoedge_update_64_rshift`` gives the general update's integers (its
    precondition in ethoedge_kernels.h): W=16, ``0 < sh_gx, sh_gh < 32``, ``32 <= sh_rn < 64``,
    ``sh_n_to_h >= 0``, and no ``align`` of the pass saturates, proved from W, H and the biases:
    ``|W a + b| <= 2^(2W-2) H + max |b|`` (``|w|, |a|, |h| <= 2^(W-1)``), with its rounding
    offset below ``2^(31+s)``, and ``|r (W_hn h + b_hn)| + 2^(sh_rn-1) < 2^63`` with
    ``0 <= r <= 2^(W-1)``."""
    if q.word_bits != 16:
        return False
    sh = shifts(q)
    sgx, sgh, srn = sh["SH_GX"], sh["SH_GH"], sh["SH_RN"]
    if not (0 < sgx < 32 and 0 < sgh < 32 and 32 <= srn < 64 and sh["SH_N_TO_H"] >= 0):
        return False
    amax = 1 << (q.word_bits - 1)
    vx = amax * amax * q.hidden + _bias_max(q, "gru.bias_ih", "ACC_X")
    vh = amax * amax * q.hidden + _bias_max(q, "gru.bias_hh", "ACC_H")
    return (
        vx + (1 << (sgx - 1)) < 1 << (31 + sgx)
        and vh + (1 << (sgh - 1)) < 1 << (31 + sgh)
        and amax * vh + (1 << (srn - 1)) < 1 << 63
    )


def update32_lshift_ok(q: QuantizedStudent) -> bool:
    """Whether ``ethoedge_update_32_lshift`` gives the general update's integers (its
    precondition in ethoedge_kernels.h): W = 8 with int32 accumulators, ``sh_rn``,
    ``sh_n_to_h >= 0``, a gate accumulator shifted left (``sh_gx`` or ``sh_gh < 0``) by at most
    30, and no such shift saturating: ``(128 sum |w| + |b|) 2^k < 2^31`` for every row of
    ``W_ih`` when ``k = -sh_gx > 0`` and every row r or z of ``W_hh`` when ``k = -sh_gh > 0``
    (``|a|, |h| <= 128``)."""
    if q.word_bits != 8 or accumulator_types(q)[0] != "int32_t":
        return False
    sh = shifts(q)
    sgx, sgh = sh["SH_GX"], sh["SH_GH"]
    if sh["SH_RN"] < 0 or sh["SH_N_TO_H"] < 0 or min(sgx, sgh) >= 0 or min(sgx, sgh) < -30:
        return False
    f = fraction_bits(q)
    h = q.hidden
    for name, bias, acc, s, rows in (
        ("gru.weight_ih", "gru.bias_ih", "ACC_X", sgx, 3 * h),
        ("gru.weight_hh", "gru.bias_hh", "ACC_H", sgh, 2 * h),
    ):
        if s >= 0:
            continue
        w = np.abs(q.weights[name].values[:rows].astype(np.int64)).sum(axis=1)
        t = q.weights[bias]
        b = np.abs(bias_acc(t.values, t.frac_bits, f[acc])[:rows]).astype(np.int64)
        if int((128 * w + b).max(initial=0)) << -s >= 1 << 31:
            return False
    return True


def requant64_rshift_ok(q: QuantizedStudent) -> bool:
    """Whether ``ethoedge_requant_64_rshift`` gives the general requantisation's integers at
    every site (its precondition in ethoedge_kernels.h): ``0 < s < 32`` for ``sh_a``, ``sh_m``,
    ``sh_logits``, and ``|W x + b| + 2^(s-1) < 2^(31+s)``, bounded from W, the sizes and the
    biases (``|w| <= 2^(W-1)``, inputs ``|x| <= 2^15``, ``|h|, |m| <= 2^(W-1)``)."""
    if q.word_bits != 16:
        return False
    sh = shifts(q)
    amax = 1 << (q.word_bits - 1)
    sites = [
        ("inp.bias", 32768 * q.n_inputs, "ACC_INP", "SH_A"),
        ("mlp.bias", amax * q.hidden, "ACC_MLP", "SH_M"),
        ("out.bias", amax * q.mlp_hidden, "ACC_OUT", "SH_LOGITS"),
    ]
    for bias, xmax, acc, name in sites:
        s = sh[name]
        if not 0 < s < 32:
            return False
        if amax * xmax + _bias_max(q, bias, acc) + (1 << (s - 1)) >= 1 << (31 + s):
            return False
    return True


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
            f"input: int16 acceleration in g at {q.in_frac} fraction bits, (x, y, z) per sample"
            + (
                ", turned per animal (orientation calibration, below)." if cfg.gravity_axis else "."
            ),
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


def hop_of(qmodel: QuantizedStudent, cfg: ExportConfig) -> int:
    """Hop between window starts of the streaming API: ``cfg.hop``, else the window length.

    The window length must be a multiple of the hop (``L / hop`` staggered states).
    """
    n = n_samples_of(qmodel, cfg)
    hop = n if cfg.hop is None else int(cfg.hop)
    if not 1 <= hop <= n or n % hop:
        raise ConfigError(
            f"hop {hop} must divide the window length {n} (hop = L / k for k staggered states)"
        )
    return hop


def gru_row_order(hidden: int, block: int = GRU_BLOCK) -> np.ndarray:
    """Row order of the GRU tensors in C: blocks of ``block`` units, rows r, z, n of each block.

    >>> gru_row_order(3, 2).tolist()
    [0, 1, 3, 4, 6, 7, 2, 5, 8]
    """
    idx: list[int] = []
    for j0 in range(0, hidden, block):
        u = min(block, hidden - j0)
        for g in range(3):
            idx += range(g * hidden + j0, g * hidden + j0 + u)
    return np.asarray(idx, dtype=np.int64)


def tile_matrix(mat: np.ndarray, word_bits: int) -> np.ndarray:
    """A weight matrix in the kernels' tile layout (``ethoedge_kernels.h``), flattened.

    Rows in tiles of R (4 at W = 8, 2 at W = 16): for each complete group of 4 columns the R
    rows' groups one after the other, then the tile's remaining columns row by row; the rows
    after the last complete tile row by row. At W = 8 every complete group of 4 columns is in
    the order 0, 2, 1, 3 (:func:`dsp_order`). Values are only reordered.

    >>> tile_matrix(np.arange(10).reshape(5, 2), 16).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> tile_matrix(np.arange(10).reshape(2, 5), 16).tolist()
    [0, 1, 2, 3, 5, 6, 7, 8, 4, 9]
    """
    if word_bits <= 8:
        mat, tile = dsp_order(mat), 4
    else:
        tile = 2
    rows, cols = mat.shape
    kf = cols - cols % 4
    parts = []
    r = 0
    while r + tile <= rows:
        t = mat[r : r + tile]
        parts.append(t[:, :kf].reshape(tile, kf // 4, 4).transpose(1, 0, 2).ravel())
        parts.append(t[:, kf:].ravel())
        r += tile
    parts.append(mat[r:].ravel())
    return np.concatenate(parts)


def pair_matrix(mat: np.ndarray) -> np.ndarray:
    """A W = 8 matrix in the pair layout of ``ethoedge_layer_s8_pairs``, flattened as int8.

    Rows in tiles of 4, each tile column pair by column pair, per column pair one word for rows
    (0, 1) and one for rows (2, 3). The word of rows (a, b) and columns (c, c + 1) holds the
    bytes ``w_a(c), w_b(c) - (w_a(c) < 0), w_a(c + 1), w_b(c + 1) - (w_a(c + 1) < 0)``: read
    as two little-endian int16 its halfwords are ``256 w_b + w_a``, and its even bytes are
    ``w_a``. Needs rows a multiple of 4, cols even and every such byte within int8 (a ``w_b``
    of -128 beside a negative ``w_a`` is not).

    >>> pair_matrix(np.array([[1, -2], [3, 4], [5, 6], [7, 8]])).tolist()
    [1, 3, -2, 3, 5, 7, 6, 8]
    """
    m = np.asarray(mat, dtype=np.int64)
    rows, cols = m.shape
    if rows % 4 or cols % 2:
        raise ValueError(f"the pair layout needs rows % 4 == 0 and even cols, got {rows} x {cols}")
    a, b = m[0::2], m[1::2] - (m[0::2] < 0)
    if a.min(initial=0) < -128 or a.max(initial=0) > 127 or b.min(initial=0) < -128:
        raise ValueError("a weight of the pair layout is outside int8")
    words = np.stack([a, b], axis=-1).reshape(rows // 4, 2, cols // 2, 2, 2)
    return words.transpose(0, 2, 1, 3, 4).ravel()


# the matrices the layer op multiplies, with the accumulator of their bias
_LAYER_MATRICES = {
    "gru.weight_ih": ("gru.bias_ih", "ACC_X"),
    "gru.weight_hh": ("gru.bias_hh", "ACC_H"),
    "mlp.weight": ("mlp.bias", "ACC_MLP"),
    "out.weight": ("out.bias", "ACC_OUT"),
}


def pairs_ok(q: QuantizedStudent) -> bool:
    """Whether ``ethoedge_layer_s8_pairs`` gives the tiles' integers for every layer of ``q``
    (its precondition in ethoedge_kernels.h): W = 8, rows a multiple of 4 (H, M and C, the
    GRU blocks), columns a multiple of 8 (H and M), every pair-layout byte within int8, and for the
    second row b of every pair ``|W_b x + b_b| <= 128 sum |W_b| + |b_b| < 2^23`` (``|x| <=
    128``: a, h and m are W-bit), so that ``256 (W_b x + b_b)`` fits int32."""
    if q.word_bits != 8 or any(n % 4 for n in (q.hidden, q.mlp_hidden, q.n_classes)):
        return False
    if q.hidden % 8 or q.mlp_hidden % 8:  # the DSP tiles take 8 columns at a time
        return False
    f = fraction_bits(q)
    for name, (bias, acc) in _LAYER_MATRICES.items():
        w = q.weights[name].values.astype(np.int64)
        t = q.weights[bias]
        b = np.abs(bias_acc(t.values, t.frac_bits, f[acc])).astype(np.int64)
        if name.startswith("gru."):
            # the GRU blocks have 3 x 8 rows (H is a multiple of 8): the pairs of every block
            # are rows (0, 1), (2, 3), ... of the reordered matrix
            order = gru_row_order(q.hidden)
            w, b = w[order], b[order]
        try:
            pair_matrix(w)  # every byte within int8
        except ValueError:
            return False
        bound = 128 * np.abs(w[1::2]).sum(axis=1) + b[1::2]
        if bound.size and int(bound.max()) >= 1 << 23:
            return False
    return True


def _c_matrix(q: QuantizedStudent, name: str, cname: str, pairs: bool = False) -> str:
    """A matrix in tile layout, or the pair layout of ``ethoedge_layer_s8_pairs`` where
    ``pairs`` (GRU rows in block order), as an aligned flat C array."""
    t = q.weights[name]
    vals = t.values
    pairs = pairs and name in _LAYER_MATRICES

    def lay(m: np.ndarray) -> np.ndarray:
        return pair_matrix(m) if pairs else tile_matrix(m, q.word_bits)

    if name.startswith("gru."):
        vals = vals[gru_row_order(q.hidden)]
        h = q.hidden
        blocks = [
            lay(vals[3 * j0 : 3 * (j0 + min(GRU_BLOCK, h - j0))]) for j0 in range(0, h, GRU_BLOCK)
        ]
        flat = np.concatenate(blocks)
        order = f"GRU rows in blocks of {GRU_BLOCK} units (r, z, n), "
    else:
        flat = lay(vals)
        order = ""
    shape = " x ".join(str(d) for d in t.values.shape)
    layout = "pair layout (two rows per word)" if pairs else "kernel tile layout"
    text = c_array(
        cname,
        storage_type(q.word_bits),
        flat,
        comment=f"{name} ({shape}): real = v * 2^-{t.frac_bits}; {order}{layout}",
    )
    return text.replace(f"{cname}[{flat.size}] = {{", f"{cname}[{flat.size}] ETHOEDGE_ALIGN4 = {{")


def _emit_h(q: QuantizedStudent, cfg: ExportConfig, command: str | None) -> str:
    p, pu = cfg.prefix, cfg.prefix.upper()
    n = n_samples_of(q, cfg)
    hop = hop_of(q, cfg)
    k = n // hop
    hp = q.hidden + q.hidden % 2
    lp = _static_dynamic(q)
    state_bytes = k * (2 * hp + (6 if lp else 0) + 2 + 1) + 4 * q.n_classes + 4
    macs = student_macs_per_sample(q)
    lp_field = ""
    if lp:
        lp_field = f"\n    int16_t lp[{pu}_N_STATES][3];   /* static part of each axis per state */"
    return f"""{_header(q, cfg, p + ".h", command)}
#ifndef {pu}_H
#define {pu}_H

#include <stdint.h>

#define {pu}_N_SAMPLES {n}     /* L: samples per window */
#define {pu}_HOP {hop}          /* samples between window starts of the streaming API */
#define {pu}_N_STATES {k}       /* L / HOP staggered window states */
#define {pu}_N_CHANNELS 3    /* x, y, z */
#define {pu}_N_INPUTS {q.n_inputs}      /* inputs of the input layer{_input_note(q)} */
#define {pu}_N_CLASSES {q.n_classes}     /* C */
#define {pu}_HIDDEN {q.hidden}       /* H: GRU size */
#define {pu}_MLP_HIDDEN {q.mlp_hidden}   /* M */
#define {pu}_WORD_BITS {q.word_bits}    /* W */
#define {pu}_IN_FRAC {q.in_frac}      /* input: int16 g * 2^IN_FRAC */
#define {pu}_LOGITS_FRAC {q.frac("logits")}  /* scores: int32 logits * 2^LOGITS_FRAC */
{_orientation_note(cfg, pu)}
/* Streaming state, owned by the caller (no allocation inside): about {state_bytes} bytes.
   Windows start every HOP samples (at samples 0, HOP, 2 HOP, ... of the stream), each is
   L samples long and has its own GRU state, reset when its window starts; state i serves the
   windows starting at i * HOP modulo L. Cost per pushed sample: N_STATES GRU steps
   ({macs} MACs each), plus the MLP and output layer ({
        q.hidden * q.mlp_hidden + q.mlp_hidden * q.n_classes
    } MACs) once every HOP samples. */
typedef struct {{
    int16_t h[{pu}_N_STATES][{hp}];   /* GRU hidden state per window (W-bit values) */{lp_field}
    int32_t scores[{pu}_N_CLASSES];    /* scores of the last completed window */
    uint16_t pos[{pu}_N_STATES];       /* samples of each state's window so far */
    uint8_t on[{pu}_N_STATES];         /* whether the state's window has started */
    uint16_t t;                         /* samples pushed, modulo N_SAMPLES */
}} {p}_state_t;

/* Reset the state: no window started, scores 0. */
void {p}_init({p}_state_t *s);

/* Feed one sample (x, y, z). Returns 1 when it completes a window (its scores are then
   available from {p}_scores), else 0: the first window completes at sample L, then one
   every HOP samples. With HOP = N_SAMPLES the windows do not overlap. */
int {p}_push({p}_state_t *s, const int16_t sample[{pu}_N_CHANNELS]);

/* Copy the scores of the last completed window; returns its class id (first maximum). */
int {p}_scores(const {p}_state_t *s, int32_t scores[{pu}_N_CLASSES]);

/* Classify one window; writes the class scores and returns the class id (first maximum).
   Identical to init + N_SAMPLES pushes + scores. */
int {p}_classify(const int16_t x[{pu}_N_SAMPLES][{pu}_N_CHANNELS],
{" " * (len(p) + 14)}int32_t scores[{pu}_N_CLASSES]);

#endif /* {pu}_H */
"""


def _orientation_note(cfg: ExportConfig, pu: str) -> str:
    """The header's orientation macros and how to use them (a model trained on calibrated
    windows); nothing for samples as recorded."""
    g = cfg.gravity()
    if g is None:
        return ""
    axis, sign = g
    return f"""
/* Orientation calibration: the model was trained on each animal's samples turned by the
   smallest rotation that takes the animal's mean gravity direction onto the axis below. Turn
   every sample before {cfg.prefix}_push / _classify, with the kernel library
   (ethoedge_kernels.h): once per animal, from the mean of its samples over hours (int16,
   g * 2^IN_FRAC),
       ethoedge_orientation(mean, {pu}_GRAVITY_AXIS, {pu}_GRAVITY_SIGN, rot);
   then for each sample ethoedge_orient(rot, sample, sample). */
#define {pu}_GRAVITY_AXIS {axis}     /* {cfg.gravity_axis}: 0, 1, 2 for x, y, z */
#define {pu}_GRAVITY_SIGN {sign}
"""


def kernel_ops(q: QuantizedStudent, cfg: ExportConfig) -> str | tuple[str, str, str, str, str]:
    """The kernels a model names: a general set of the library (``ethoedge_ops_s16``,
    ``ethoedge_ops_s8_wide``) or, at W=8 with int32 accumulators, its own set of the op
    functions its sizes and shifts allow (layer, requantise, GRU update, input layer, GRU of a
    step), each
    giving the same integers as the general one there, with less code for the linker to keep:
    SMLAD tiles only when every layer has a multiple of 4 rows and the DSP path is on (the
    input layer then the assembly tiles of its 3 or 6 columns), and then the SMLAD pair tiles
    of the pair layout for the other layers where :func:`pairs_ok` proves them exact (16
    columns per iteration where H and M allow it, all 32 columns of a tile without a loop where
    H = M = 32); a
    requantisation
    without the left-shift path when every output shift is positive; the fast W=8 gate update
    (without the general-shift unit) when ``sh_rn`` and ``sh_n_to_h`` are not negative,
    without its left-shift copy too when ``sh_gx`` and ``sh_gh`` are not negative, with the
    left shifts inside its passes (no saturating copy) where :func:`update32_lshift_ok` proves
    that none saturates and the DSP path is on; the GRU of a step in one function (the pair
    tiles and the gate passes of every block, ``ethoedge_gru_s8_pairs16_rshift``, ``_lshift``
    and the ``pairs32`` twins) with the 16- or 32-column pair tiles and either of those two
    updates where ``8 <= sh_rn <= 32``, ``sh_n_to_h == 0`` and ``sh_gh >= 0``, else
    ``ethoedge_gru_blocks`` (the layer and update ops block by block). At W=16, its
    own set with the requantisation and the gate update without saturation
    (``ethoedge_requant_64_rshift``, ``ethoedge_update_64_rshift``) where
    :func:`requant64_rshift_ok` and :func:`update64_rshift_ok` prove them exact, else the
    general set.
    """
    acc_t, _ = accumulator_types(q)
    if q.word_bits == 16:
        requant = "ethoedge_requant_64_rshift" if requant64_rshift_ok(q) else "ethoedge_requant_64"
        update = "ethoedge_update_64_rshift" if update64_rshift_ok(q) else "ethoedge_update_64"
        if (requant, update) == ("ethoedge_requant_64", "ethoedge_update_64"):
            return "ethoedge_ops_s16"
        return "ethoedge_layer_s16", requant, update, "ethoedge_layer_s16", "ethoedge_gru_blocks"
    if acc_t == "int64_t":
        return "ethoedge_ops_s8_wide"
    sh = shifts(q)
    rows4 = all(n % 4 == 0 for n in (q.hidden, q.mlp_hidden, q.n_classes))
    layer = "ethoedge_layer_s8_tiles" if cfg.use_dsp and rows4 else "ethoedge_layer_s8"
    tiles_in = layer == "ethoedge_layer_s8_tiles" and q.n_inputs in (3, 6)
    layer_in = f"ethoedge_layer_s8_in{q.n_inputs}" if tiles_in else layer
    if tiles_in and pairs_ok(q):
        wide = q.hidden % 16 == 0 and q.mlp_hidden % 16 == 0  # 16 columns per iteration
        layer = "ethoedge_layer_s8_pairs16" if wide else "ethoedge_layer_s8_pairs"
        if q.hidden == 32 and q.mlp_hidden == 32:  # every layer op call has 32 columns
            layer = "ethoedge_layer_s8_pairs32"
    rshift = all(sh[k] > 0 for k in ("SH_A", "SH_M", "SH_LOGITS"))
    requant = "ethoedge_requant_32_rshift" if rshift else "ethoedge_requant_32"
    if q.word_bits == 8 and sh["SH_RN"] >= 0 and sh["SH_N_TO_H"] >= 0:
        gates_right = sh["SH_GX"] >= 0 and sh["SH_GH"] >= 0
        update = "ethoedge_update_32_rshift" if gates_right else "ethoedge_update_32_fast"
        if update == "ethoedge_update_32_fast" and cfg.use_dsp and update32_lshift_ok(q):
            update = "ethoedge_update_32_lshift"
    else:
        update = "ethoedge_update_32"
    gru = "ethoedge_gru_blocks"
    fused = {"ethoedge_update_32_rshift": "rshift", "ethoedge_update_32_lshift": "lshift"}
    tiles = {"ethoedge_layer_s8_pairs16": "pairs16", "ethoedge_layer_s8_pairs32": "pairs32"}
    # the fused ops shift only gx left (sh_gh = sh_rn - 7 > 0 wherever sh_rn >= 8)
    if (
        layer in tiles
        and update in fused
        and 8 <= sh["SH_RN"] <= 32
        and sh["SH_N_TO_H"] == 0
        and sh["SH_GH"] >= 0
    ):
        gru = f"ethoedge_gru_s8_{tiles[layer]}_{fused[update]}"
    return layer, requant, update, layer_in, gru


def _gru8_consts(
    q: QuantizedStudent, p: str, *, left: bool, layer_in: str
) -> tuple[str, str, bool]:
    """The fused W=8 GRU op's constants (``ethoedge_gru8_consts_t``), the model's field, and
    whether they name the input layer requantised in its tiles (``sh_a > 0``:
    ``ethoedge_input_s8_in3_relu8``, ``_in6_relu8``)."""
    sh = shifts(q)
    cols = {"ethoedge_layer_s8_in3": "in3", "ethoedge_layer_s8_in6": "in6"}.get(layer_in)
    fused_input = sh["SH_A"] > 0 and cols is not None
    if fused_input:
        inp = f"ethoedge_input_s8_{cols}_relu8, {{{1 << (sh['SH_A'] - 1)}, {sh['SH_A']}}}"
    else:
        inp = "0, {0, 0}"
    sgx, sgh = sh["SH_GX"], sh["SH_GH"]
    rgx = 1 << (sgx - 1) if sgx > 0 else 0
    rgh = 1 << (sgh - 1) if sgh > 0 else 0
    sx = -sgx if left else sgx
    k = f"65535, 256, 32896, {rgx}, {sx}"
    how = f" (gx shifted left by {sx})" if left else ""
    text = (
        "/* The fused GRU op's constants (ethoedge_kernels.h): the tables, the interpolation's\n"
        f"   pair and rounding, the gate shifts{how}. */\n"
        f"static const ethoedge_gru8_consts_t {p}_gru8 = {{ethoedge_sigmoid_q15 + 128,\n"
        f"    {{{k}, {rgh}, {sgh}}}, ethoedge_tanh_q15 + 128, {{{k}}},\n"
        f"    {inp}}};\n\n"
    )
    return text, f"\n    .gru8 = &{p}_gru8,", fused_input


def student_macs_per_sample(q: QuantizedStudent) -> int:
    """MACs of one GRU step with its input layer: ``k H + 6 H^2 + 3 H``."""
    return q.n_inputs * q.hidden + 6 * q.hidden * q.hidden + 3 * q.hidden


def _emit_c(q: QuantizedStudent, cfg: ExportConfig, command: str | None) -> str:
    p, pu = cfg.prefix, cfg.prefix.upper()
    w = q.word_bits
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
    shift_consts = [(n, f"{pu}_F_{a} - {pu}_F_{b}", c) for n, a, b, c in _SHIFTS]
    acc_t, _ = accumulator_types(q)
    kernel_set = kernel_ops(q, cfg)
    pairs = not isinstance(kernel_set, str) and kernel_set[0].startswith("ethoedge_layer_s8_pairs")
    arrays = []
    for name in WEIGHT_NAMES:
        t = q.weights[name]
        cname = f"{p}_{name.replace('.', '_')}"
        if name in _BIAS_ACC:
            acc = _BIAS_ACC[name]
            vals = t.values[gru_row_order(q.hidden)] if name.startswith("gru.") else t.values
            aligned = bias_acc(vals, t.frac_bits, f[acc])
            order = (
                f"; GRU rows in blocks of {GRU_BLOCK} units (r, z, n)"
                if name.startswith("gru.")
                else ""
            )
            arrays.append(
                c_array(
                    f"{cname}_acc",
                    acc_t,
                    aligned,
                    comment=f"{name} ({vals.size}): {w}-bit b at {t.frac_bits} fraction bits, "
                    f"stored as bias_acc(b, {t.frac_bits}, F_{acc}) = "
                    f"round_shift(b, {t.frac_bits - f[acc]}){order}; b = {_preview(t.values)}",
                )
            )
        else:
            arrays.append(_c_matrix(q, name, cname, pairs))
    h, m, c = q.hidden, q.mlp_hidden, q.n_classes
    acc_n = max(6 * min(GRU_BLOCK, h), m, c)
    dot_n = acc_n if (w == 8 and acc_t == "int64_t") else 1
    hp = h + h % 2
    stage = {"raw": 0, "dynamic": 1, "static_dynamic": 2}[q.input_stage]
    lp_arg = "s->lp[i]" if _static_dynamic(q) else "lp"
    dsp = 1 if cfg.use_dsp else 0
    nl = "\n"
    # a fused GRU op never calls the update op, nor the input layer op where the input runs
    # in one pass (gru8.input): left out of the table on the M4 (ETHOEDGE_UNLESS_FUSED)
    gru8_def, gru8_field, left_out = "", "", set()
    if not isinstance(kernel_set, str) and kernel_set[4].startswith("ethoedge_gru_s8_"):
        gru8_def, gru8_field, fused_input = _gru8_consts(
            q, p, left=kernel_set[4].endswith("lshift"), layer_in=kernel_set[3]
        )
        left_out = {2, 3} if fused_input else {2}
    if isinstance(kernel_set, str):
        ops, ops_def = kernel_set, ""
    else:
        ops = f"{p}_ops"
        fns = "".join(
            f"    ETHOEDGE_UNLESS_FUSED({fn}),\n" if k in left_out else f"    {fn},\n"
            for k, fn in enumerate(kernel_set)
        )
        ops_def = (
            "/* The kernels this model's sizes and shifts allow (ethoedge_kernels.h). */\n"
            f"static const ethoedge_ops_t {p}_ops = {{\n{fns}}};\n\n"
        )
    return f"""{_header(q, cfg, p + ".c", command)}
#include "{p}.h"

#include "ethoedge_kernels.h"

#if !defined(ETHOEDGE_KERNELS_VERSION) || ETHOEDGE_KERNELS_VERSION != {KERNELS_VERSION}
#error "{p}.c was exported with ethoedge_kernels.h version {KERNELS_VERSION}"
#endif

/* Fraction bits of every tensor (real value = v * 2^-F). */
{c_enum(pu, fconsts)}

/* Shifts: round_shift(v, s) moves v from one format to another (s < 0: left shift). */
{c_enum(pu, shift_consts)}

{nl.join(arrays)}

/* Accumulators: {acc_t} (int32_t where the exporter proved that every value fits, see
   ethoedge.export.emit.accumulator_types; the integers are the same). */
typedef {acc_t} {p}_acc_t;

{ops_def}{gru8_def}static const ethoedge_model_t {p}_model = {{
    .ops = &{ops},
    .word_bits = {w},
    .hidden = {h},
    .mlp_hidden = {m},
    .n_classes = {c},
    .n_inputs = {q.n_inputs},
    .input_stage = {stage},
    .static_shift = {q.static_shift if _static_dynamic(q) else 0},
    .acc64 = {int(acc_t == "int64_t")},
    .use_dsp = {dsp},
    .sh_a = {pu}_SH_A,
    .sh_gx = {pu}_SH_GX,
    .sh_gh = {pu}_SH_GH,
    .sh_rn = {pu}_SH_RN,
    .sh_n_to_h = {pu}_SH_N_TO_H,
    .sh_m = {pu}_SH_M,
    .sh_logits = {pu}_SH_LOGITS,
    .w_inp = {p}_inp_weight,
    .w_ih = {p}_gru_weight_ih,
    .w_hh = {p}_gru_weight_hh,
    .w_mlp = {p}_mlp_weight,
    .w_out = {p}_out_weight,
    .b_inp = {p}_inp_bias_acc,
    .b_ih = {p}_gru_bias_ih_acc,
    .b_hh = {p}_gru_bias_hh_acc,
    .b_mlp = {p}_mlp_bias_acc,
    .b_out = {p}_out_bias_acc,{gru8_field}
}};

/* Scratch of one step (on the caller's stack): gate accumulators of one GRU block, a/m. */
typedef struct {{
    {p}_acc_t acc[{acc_n}];
    int32_t dot[{dot_n}];
    int16_t a[{max(hp, m + m % 2)}];
    int16_t hn[{hp}];
}} {p}_work_t;

#define {pu}_WORK(wk, ws) ethoedge_work_t wk = {{(ws).a, (ws).hn, (ws).acc, (ws).dot}}

void {p}_init({p}_state_t *s)
{{
    int i, j;
    for (i = 0; i < {pu}_N_STATES; ++i) {{
        for (j = 0; j < {hp}; ++j) {{
            s->h[i][j] = 0;
        }}
        s->pos[i] = 0;
        s->on[i] = 0;
    }}
    for (j = 0; j < {pu}_N_CLASSES; ++j) {{
        s->scores[j] = 0;
    }}
    s->t = 0;
}}

int {p}_push({p}_state_t *s, const int16_t sample[{pu}_N_CHANNELS])
{{
    {p}_work_t ws;
    {pu}_WORK(wk, ws);
    int i, j, done = 0;{"" if _static_dynamic(q) else f"{nl}    int16_t lp[3];"}
    if (s->t % {pu}_HOP == 0) {{ /* a window starts: its state is reset */
        i = s->t / {pu}_HOP;
        for (j = 0; j < {hp}; ++j) {{
            s->h[i][j] = 0;
        }}
        s->pos[i] = 0;
        s->on[i] = 1;
    }}
    for (i = 0; i < {pu}_N_STATES; ++i) {{
        if (!s->on[i]) {{
            continue;
        }}
        ethoedge_step(&{p}_model, s->h[i], {lp_arg}, s->pos[i] == 0, sample, &wk);
        if (++s->pos[i] == {pu}_N_SAMPLES) {{
            ethoedge_head(&{p}_model, s->h[i], s->scores, &wk);
            s->on[i] = 0;
            done = 1;
        }}
    }}
    s->t = (uint16_t)(s->t + 1 == {pu}_N_SAMPLES ? 0 : s->t + 1);
    return done;
}}

int {p}_scores(const {p}_state_t *s, int32_t scores[{pu}_N_CLASSES])
{{
    int j;
    for (j = 0; j < {pu}_N_CLASSES; ++j) {{
        scores[j] = s->scores[j];
    }}
    return ethoedge_argmax(s->scores, {pu}_N_CLASSES);
}}

int {p}_classify(const int16_t x[{pu}_N_SAMPLES][{pu}_N_CHANNELS],
{" " * (len(p) + 14)}int32_t scores[{pu}_N_CLASSES])
{{
    {p}_work_t ws;
    {pu}_WORK(wk, ws);
    union {{
        int16_t v[{hp}];
        int32_t align; /* word-aligned for the kernels' LDRD */
    }} h;
    int16_t lp[3];
    int t;
    for (t = 0; t < {hp}; ++t) {{
        h.v[t] = 0;
    }}
    for (t = 0; t < {pu}_N_SAMPLES; ++t) {{
        ethoedge_step(&{p}_model, h.v, lp, t == 0, x[t], &wk);
    }}
    ethoedge_head(&{p}_model, h.v, scores, &wk);
    return ethoedge_argmax(scores, {pu}_N_CLASSES);
}}
"""


KERNEL_FILES = ("ethoedge_kernels.h", "ethoedge_kernels.c")


def kernel_files() -> dict[str, str]:
    """The shipped kernel library: ``{file name: text}`` (one copy serves every model)."""
    return {name: (KERNELS_DIR / name).read_text() for name in KERNEL_FILES}


def _emit_main(q: QuantizedStudent, cfg: ExportConfig) -> str:
    p, pu = cfg.prefix, cfg.prefix.upper()
    return f"""/* main.c: example use of {p} (generated by ethoedge {__version__}; stdio is used
   here only to print, never inside the model).
   Build: cc -std=c99 -O2 {p}.c ethoedge_kernels.c main.c -o example */
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

    /* 2. streaming: one sample at a time, as it arrives from the sensor (the first window) */
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
    hop_of(q, cfg)
    files = {
        f"{cfg.prefix}.h": _emit_h(q, cfg, command),
        f"{cfg.prefix}.c": _emit_c(q, cfg, command),
        **kernel_files(),
    }
    if cfg.example_main:
        files["main.c"] = _emit_main(q, cfg)
    return files


def write_files(files: Mapping[str, str], out_dir: str | Path) -> list[Path]:
    """Write already-built files into ``out_dir``, all or none (a folder that cannot be
    written is a :class:`~ethoedge.errors.ConfigError` naming it)."""
    out = Path(out_dir)
    try:
        return atomic_write_files(out, files)
    except OSError as e:
        raise unwritable(out, e, folder=True) from None


def export_c(
    qmodel: QuantizedStudent,
    out_dir: str | Path,
    cfg: ExportConfig | None = None,
    *,
    command: str | None = None,
) -> list[Path]:
    """Emit the C module for ``qmodel`` into ``out_dir``; nothing is written if it fails.

    Returns the written paths (``<prefix>.h``, ``<prefix>.c``, the kernel library
    ``ethoedge_kernels.h``/``.c`` and ``main.c`` if asked).
    """
    files = emit_c(qmodel, cfg, command=command)
    return write_files(files, out_dir)
