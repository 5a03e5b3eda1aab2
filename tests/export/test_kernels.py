"""The shipped kernel library, kernel by kernel, against the NumPy integer reference.

Each test builds one small C program from ``ethoedge_kernels.c`` and embedded test vectors,
runs it on the host and (where the Arm toolchain is installed) on the emulated Cortex-M4 (DSP
path) and Cortex-M3 (plain C), and compares every printed integer with the reference. Sizes are
odd on purpose (H = 13, M = 7, ...): every tile and column tail of the DSP kernels runs on the
M4, and the aligned/unaligned input paths both run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ethoedge.export import toolchain
from ethoedge.export.cgen import c_array
from ethoedge.export.emit import gru_row_order, kernel_files, pair_matrix, tile_matrix
from ethoedge.quantize.fixedpoint import (
    SIGMOID_TABLE,
    TANH_TABLE,
    activation,
    round_shift,
    saturate,
)

from .helpers import requires_gcc

pytestmark = requires_gcc

TARGETS = [
    "host",
    pytest.param("cortex-m4", marks=[pytest.mark.qemu]),
    pytest.param("cortex-m3", marks=[pytest.mark.qemu]),
]


def run_program(tmp: Path, body: str, arrays: list[str], target: str) -> np.ndarray:
    """Build ``main`` (``body`` after the ``arrays``) with the kernels; the printed integers."""
    if target != "host" and not toolchain.have_arm():
        pytest.skip(toolchain.missing_arm_message())
    for name, text in kernel_files().items():
        (tmp / name).write_text(text)
    nl = "\n"
    src = f"""#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ethoedge_kernels.h"

{nl.join(arrays)}

static void put(int64_t v) /* newlib-nano's printf has no 64-bit formats */
{{
    char buf[24];
    int i = 23;
    uint64_t m = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    buf[i] = 0;
    do {{
        buf[--i] = (char)('0' + (int)(m % 10u));
        m /= 10u;
    }} while (m);
    if (v < 0) {{
        buf[--i] = '-';
    }}
    puts(buf + i);
}}

int main(void)
{{
{body}
    return 0;
}}
"""
    (tmp / "main.c").write_text(src)
    sources = [tmp / "ethoedge_kernels.c", tmp / "main.c"]
    if target == "host":
        exe = toolchain.compile_host(
            sources, tmp / "t", include=[tmp], opt="-O1",
            extra=("-fsanitize=address,undefined", "-fno-sanitize-recover=all"),
        )  # fmt: skip
        res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True)
        out = res.stdout
    else:
        elf = toolchain.compile_arm(sources, tmp / "t.elf", target=target, include=[tmp])
        res = toolchain.run_qemu(elf, target=target, timeout=120, cwd=tmp)
        assert res.returncode == 0, res.stderr
        out = res.stdout
    return np.array([int(v) for v in out.split()], dtype=np.int64)


def _arr(name: str, ctype: str, v: np.ndarray, aligned: bool = True) -> str:
    text = c_array(name, ctype, np.asarray(v).ravel())
    if aligned:
        text = text.replace(f"{name}[{np.asarray(v).size}] = {{",
                            f"{name}[{np.asarray(v).size}] ETHOEDGE_ALIGN4 = {{")  # fmt: skip
    return text


def _rand_w(rng: np.random.Generator, shape: tuple[int, int], bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, size=shape)
    w.flat[:: max(1, w.size // 5)] = lo  # extremes
    w.flat[1 :: max(1, w.size // 4)] = hi
    return w


# rows x cols: tiles with and without column tails, a row tail, a single column; (9, 16): the
# back-to-back SMLAD/SMLALD tiles followed by a row tail; (24, 32), (9, 16): at W=16 the
# 16-column assembly loop; (5, 24): its 8-column twin; 3 and 6 columns: the W=16 input layers;
# at W=8 (24, 32), (9, 16) and (5, 24) take the assembly tiles of an even number of column
# groups, (6, 4) and (8, 20) an odd number; (12, 3) and (8, 6): the input layers' tiles
SIZES = [(13, 7), (24, 32), (7, 13), (6, 4), (4, 1), (39, 13), (9, 16), (5, 24), (13, 3),
         (8, 6), (7, 6), (8, 20), (12, 3)]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("bits", [8, 16])
def test_matvec_every_tail(tmp_path: Path, target: str, bits: int):
    rng = np.random.default_rng(bits)
    arrays, body, expected = [], [], []
    wt = "int8_t" if bits == 8 else "int16_t"
    for i, (rows, cols) in enumerate(SIZES):
        w = _rand_w(rng, (rows, cols), bits)
        x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=cols)
        x[0] = -(1 << (bits - 1))
        b = rng.integers(-(1 << 20), 1 << 20, size=rows)
        arrays += [
            _arr(f"w{i}", wt, tile_matrix(w, bits)),
            _arr(f"x{i}", "int16_t", np.concatenate([x, [0]])),
            _arr(f"b{i}", "int32_t" if bits == 8 else "int64_t", b),
        ]
        exact = w.astype(np.int64) @ x.astype(np.int64)
        for use_dsp in (1, 0):
            if bits == 8:
                body.append(f"""    {{
        int32_t o[{rows}];
        int64_t o64[{rows}];
        int32_t dot[{rows}];
        int16_t xu[{cols + 2}]; /* x at an odd address: the unaligned path */
        int j;
        memcpy(xu + 1, x{i}, sizeof(int16_t) * {cols});
        ethoedge_matvec_s8(w{i}, b{i}, x{i}, {rows}, {cols}, o, {use_dsp});
        for (j = 0; j < {rows}; ++j) put(o[j]);
        ethoedge_matvec_s8(w{i}, 0, xu + 1, {rows}, {cols}, o, {use_dsp});
        for (j = 0; j < {rows}; ++j) put(o[j]);
        {{
            static const int64_t b64[{rows}] = {{{", ".join(str(v) for v in b)}}};
            ethoedge_matvec_s8_wide(w{i}, b64, x{i}, {rows}, {cols}, o64, dot, {use_dsp});
        }}
        for (j = 0; j < {rows}; ++j) put(o64[j]);
    }}""")
                expected += [exact + b, exact, exact + b]
                if rows % 4 == 0 and use_dsp:  # the tiles-only layer's precondition
                    body.append(f"""    {{
        int32_t o[{rows}];
        int j;
        ethoedge_layer_s8_tiles(w{i}, b{i}, x{i}, {rows}, {cols}, o, 0, 1);
        for (j = 0; j < {rows}; ++j) put(o[j]);
    }}""")
                    expected.append(exact + b)
                if rows % 4 == 0 and cols in (3, 6) and use_dsp:  # the input layers' tiles
                    xs = [f"x{i}"] + (["xu + 1"] if cols == 3 else [])  # 3: any address
                    for xa in xs:
                        body.append(f"""    {{
        int32_t o[{rows}];
        int16_t xu[{cols + 2}];
        int j;
        memcpy(xu + 1, x{i}, sizeof(int16_t) * {cols});
        ethoedge_layer_s8_in{cols}(w{i}, b{i}, {xa}, {rows}, {cols}, o, 0, 1);
        for (j = 0; j < {rows}; ++j) put(o[j]);
    }}""")
                        expected.append(exact + b)
            else:
                body.append(f"""    {{
        int64_t o[{rows}];
        int16_t xu[{cols + 2}];
        int j;
        memcpy(xu + 1, x{i}, sizeof(int16_t) * {cols});
        ethoedge_matvec_s16(w{i}, b{i}, x{i}, {rows}, {cols}, o, {use_dsp});
        for (j = 0; j < {rows}; ++j) put(o[j]);
        ethoedge_matvec_s16(w{i}, 0, xu + 1, {rows}, {cols}, o, {use_dsp});
        for (j = 0; j < {rows}; ++j) put(o[j]);
    }}""")
                expected += [exact + b, exact]
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


@pytest.mark.parametrize("target", TARGETS)
def test_pair_layer_at_its_bounds(tmp_path: Path, target: str):
    """ethoedge_layer_s8_pairs and _pairs16 (the SMLAD pair tiles of 8 and 16 columns per
    iteration on the M4, plain C on the M3 and the host) give W x + b exactly: random and
    extreme int8 weights and inputs (|x| <= 128), first rows of pairs at int32's ends, second
    rows with 256 (W_b x + b_b) at int32's ends (the raw sums wrap on the way); on the host and
    the M3 also without a bias and with 2 columns after the last group of 4."""
    rng = np.random.default_rng(11)
    arrays, body, expected = [], [], []
    sizes = [(24, 32), (4, 8), (12, 16), (8, 40), (4, 48)]
    if target != "cortex-m4":  # the DSP build's precondition: cols a multiple of 8
        sizes += [(8, 6), (4, 2)]
    for i, (rows, cols) in enumerate(sizes):
        w = rng.integers(-128, 128, size=(rows, cols))
        w[1::2][(w[0::2] < 0) & (w[1::2] == -128)] = -127  # pairs the layout can hold
        w[0, 0], w[1, 0] = 0, -128  # -128 beside 0: its byte stays -128
        w[0, 1], w[1, 1] = -128, 127  # beside a negative w_a: a byte of 126
        w[2], w[3] = -128, 127
        x = rng.integers(-128, 128, size=cols)
        x[0], x[-1] = -128, 127
        exact = w.astype(np.int64) @ x.astype(np.int64)
        b = rng.integers(-(1 << 20), 1 << 20, size=rows)
        b[0] = (1 << 31) - 1 - max(exact[0], 0)  # row 0 (a first row) up to 2^31 - 1
        b[2] = -(1 << 31) - min(exact[2], 0)  # row 2 down to -2^31
        b[1] = (1 << 23) - 1 - exact[1]  # 256 (W_b x + b_b) = 2^31 - 256
        b[3] = -(1 << 23) + 1 - exact[3]  # 256 (W_b x + b_b) = -2^31 + 256
        arrays += [
            _arr(f"w{i}", "int8_t", pair_matrix(w)),
            _arr(f"x{i}", "int16_t", np.concatenate([x, [0]])),
            _arr(f"b{i}", "int32_t", b),
        ]
        # the 16-column loop where cols allows it (its precondition), the 32 columns without a
        # loop at cols = 32, the 8-column loop always
        fns = (
            ["ethoedge_layer_s8_pairs"]
            + (["ethoedge_layer_s8_pairs16"] if cols % 16 == 0 else [])
            + (["ethoedge_layer_s8_pairs32"] if cols == 32 else [])
        )
        for fn in fns:
            body.append(f"""    {{
        int32_t o[{rows}] ETHOEDGE_ALIGN4;
        int j;
        {fn}(w{i}, b{i}, x{i}, {rows}, {cols}, o, 0, 1);
        for (j = 0; j < {rows}; ++j) put(o[j]);
    }}""")
            expected.append(exact + b)
        if target != "cortex-m4":
            body.append(f"""    {{
        int32_t o[{rows}];
        int j;
        ethoedge_layer_s8_pairs(w{i}, 0, x{i}, {rows}, {cols}, o, 0, 0);
        for (j = 0; j < {rows}; ++j) put(o[j]);
    }}""")
            expected.append(exact)
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    want = np.concatenate(expected)
    np.testing.assert_array_equal(got, want)
    assert want.max() >= (1 << 31) - (1 << 21) and want.min() == -(1 << 31)


@pytest.mark.parametrize("target", TARGETS)
def test_activations_on_every_table_segment_and_beyond(tmp_path: Path, target: str):
    pre = np.concatenate(
        [np.arange(-33000, 33000, 37), [-(1 << 31), (1 << 31) - 1, -32769, 32768, 0, -1, 255]]
    )
    arrays = [_arr("pre", "int32_t", pre)]
    body = """    int i, w;
    for (w = 8; w <= 16; w += 8) {
        for (i = 0; i < (int)(sizeof pre / sizeof pre[0]); ++i) {
            put(ethoedge_act(pre[i], ethoedge_sigmoid_q15, w));
            put(ethoedge_act(pre[i], ethoedge_tanh_q15, w));
        }
    }"""
    got = run_program(tmp_path, body, arrays, target).reshape(2, -1, 2)
    for k, w in enumerate((8, 16)):
        np.testing.assert_array_equal(got[k, :, 0], activation(pre, 12, SIGMOID_TABLE, w))
        np.testing.assert_array_equal(got[k, :, 1], activation(pre, 12, TANH_TABLE, w))


def test_shipped_tables_are_the_contract_tables():
    text = kernel_files()["ethoedge_kernels.c"]
    for name, table in (("ethoedge_sigmoid_q15", SIGMOID_TABLE), ("ethoedge_tanh_q15", TANH_TABLE)):
        body = text.split(f"const int16_t {name}[257] = {{", 1)[1].split("};", 1)[0]
        assert [int(v) for v in body.replace("\n", " ").split(",") if v.strip()] == list(table)


def _align(v, s):
    return saturate(round_shift(v, s), 32)


def _gru_reference(gx, gh, h, w, sgx, sgh, srn, snh):
    u = len(h)
    rx, zx, nx = gx[:u], gx[u : 2 * u], gx[2 * u :]
    rh, zh, nh = gh[:u], gh[u : 2 * u], gh[2 * u :]
    r = activation(saturate(_align(rx, sgx) + _align(rh, sgh), 32), 12, SIGMOID_TABLE, w)
    z = activation(saturate(_align(zx, sgx) + _align(zh, sgh), 32), 12, SIGMOID_TABLE, w)
    rn = _align(r * nh, srn)
    n = activation(saturate(_align(nx, sgx) + rn, 32), 12, TANH_TABLE, w)
    hs = ((1 << (w - 1)) - z) * _align(n, snh) + z * h
    return saturate(round_shift(hs, w - 1), w)


def _update_calls(fns: tuple[str, ...] | list[str], i: int, u: int) -> str:
    """C lines calling each update of ``fns`` on arrays gx{i}, gh{i}, h{i} of ``u`` units,
    printing hn after each."""
    return "\n".join(
        f"        {f}(&m, gx{i}, gh{i}, {u}, h{i}, hn);\n"
        f"        for (j = 0; j < {u}; ++j) put(hn[j]);"
        for f in fns
    )


def _update_block(bits: int, u: int, shifts: tuple[int, int, int, int], calls: str) -> str:
    """A C block with a model of word length ``bits`` and gate-update ``shifts`` (sgx, sgh,
    srn, snh), an int16 hn[u], ints j and k, then ``calls``."""
    sgx, sgh, srn, snh = shifts
    return f"""    {{
        ethoedge_model_t m;
        int16_t hn[{u}];
        int j, k;
        (void)k;
        memset(&m, 0, sizeof m);
        m.word_bits = {bits};
        m.sh_gx = {sgx};
        m.sh_gh = {sgh};
        m.sh_rn = {srn};
        m.sh_n_to_h = {snh};
{calls}
    }}"""


# (sgx, sgh, srn, snh): right shifts only (the fast pass); left-shifted gate accumulators with
# right shifts elsewhere (the fast pass after a saturating pre-shift, at W=8 int32; by 31 and
# by 33, past the 32-bit shifter); left shifts everywhere (the general pass). At W=8 the DSP
# pass rounds r * n by one SMMULR for 8 <= srn <= 32: both edges and 7 and 33 beside them.
SHIFTS = [(3, 5, 9, 0), (0, 1, 0, 0), (12, 14, 20, 1), (17, 19, 34, 0), (-2, 3, 9, 0),
          (-1, -2, 8, 1), (2, -3, 0, 0), (-2, 3, -1, -1), (-33, -31, 9, 0), (4, 6, 32, 0),
          (1, 2, 7, 0), (5, 3, 33, 2)]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    "bits, wide", [(8, False), (8, True), (16, True)], ids=["W8-int32", "W8-int64", "W16-int64"]
)
def test_gru_update(tmp_path: Path, target: str, wide: bool, bits: int):
    rng = np.random.default_rng(bits + wide)
    u = 7
    lim = (1 << 40) if wide else (1 << 30)
    arrays, body, expected = [], [], []
    for i, (sgx, sgh, srn, snh) in enumerate(SHIFTS):
        gx = rng.integers(-lim, lim, size=3 * u)
        gh = rng.integers(-lim, lim, size=3 * u)
        gx[:3] = [lim - 1, -lim, 0]  # saturating sums and a zero
        gh[:3] = [lim - 1, -lim, 0]
        for g, s in ((gx, sgx), (gh, sgh)):  # the edges of a saturating left shift by k < 31
            if -31 < s < 0:
                hi, lo = (2**31 - 1) >> -s, -(2**31) >> -s
                g[3:7] = [hi, hi + 1, lo, lo - 1]
        h = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=u)
        h[0] = -(1 << (bits - 1))
        ct = "int64_t" if wide else "int32_t"
        arrays += [
            _arr(f"gx{i}", ct, gx),
            _arr(f"gh{i}", ct, gh),
            _arr(f"h{i}", "int16_t", h),
        ]
        fn = "ethoedge_gru_update64" if wide else "ethoedge_gru_update32"
        ref = _gru_reference(gx, gh, h, bits, sgx, sgh, srn, snh)
        # the specialised W=8 int32 updates where their preconditions hold (ethoedge_kernels.h)
        fns = [fn]
        if bits == 8 and not wide and srn >= 0 and snh >= 0:
            fns.append("ethoedge_update_32_fast")
            if sgx >= 0 and sgh >= 0:
                fns.append("ethoedge_update_32_rshift")
        if bits == 16 and 10 <= sgx < 32 and 10 <= sgh < 32 and 32 <= srn < 64 and snh >= 0:
            # |gx|, |gh| <= 2^40: no align() saturates with shifts of 10 or more
            fns.append("ethoedge_update_64_rshift")
        calls = _update_calls(fns, i, u)
        body.append(_update_block(bits, u, (sgx, sgh, srn, snh), calls))
        expected += [ref] * len(fns)
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


# (sgx, sgh, srn, snh) of ethoedge_update_32_lshift: a left shift of gx, of gh, of both, by
# 30 (its largest), beside right shifts; sh_rn inside and outside the SMMULR range
LSHIFT32 = [(-2, 2, 9, 0), (-1, -2, 8, 1), (2, -3, 0, 0), (-30, -1, 12, 0), (-5, 4, 33, 2),
            (3, -12, 32, 0)]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
def test_update_32_lshift_up_to_its_bound(tmp_path: Path, target: str):
    """The W=8 update with the left shifts inside its passes (the M4's; the host and the M3
    take the saturating copy) against the reference and the general update, on gate values up
    to the largest whose left shift does not saturate (its precondition) and on values inside
    the tables, u = 8 and 5."""
    rng = np.random.default_rng(32)
    arrays, body, expected = [], [], []
    for i, (sgx, sgh, srn, snh) in enumerate(LSHIFT32):
        u = 8 if i % 2 == 0 else 5

        def gates(s: int, rows: int) -> np.ndarray:
            hi, lo = ((2**31 - 1) >> -s, -(2**31) >> -s) if s < 0 else (2**30, -(2**30))
            v = rng.integers(lo, hi, size=rows, endpoint=True)
            v[:2] = [hi, lo]  # the bound itself
            inner = rng.integers(-40_000, 40_001, size=rows // 2)  # inside the tables
            v[2 : 2 + len(inner)] = inner >> -s if s < 0 else inner << s
            return v

        gx = gates(sgx, 3 * u)
        gh = np.concatenate([gates(sgh, 2 * u), rng.integers(-(1 << 20), 1 << 20, size=u)])
        h = rng.integers(-128, 128, size=u)
        arrays += [_arr(f"gx{i}", "int32_t", gx), _arr(f"gh{i}", "int32_t", gh),
                   _arr(f"h{i}", "int16_t", h)]  # fmt: skip
        calls = _update_calls(("ethoedge_update_32_lshift", "ethoedge_gru_update32"), i, u)
        body.append(_update_block(8, u, (sgx, sgh, srn, snh), calls))
        ref = _gru_reference(gx, gh, h, 8, sgx, sgh, srn, snh)
        expected += [ref, ref]
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


# (sgx, sgh, srn, snh) of ethoedge_update_64_rshift (W=16): the edges of its precondition
# (shifts 1 and 31, sh_rn 32 and 63, sh_n_to_h 0 and not) and the default student's shifts
RSHIFT64 = [(1, 1, 32, 0), (31, 31, 63, 0), (17, 20, 35, 0), (14, 18, 33, 2), (1, 31, 32, 1),
            (9, 3, 47, 0), (30, 2, 40, 3)]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
def test_update_64_rshift(tmp_path: Path, target: str):
    """The W=16 update without saturation against the reference on gate values up to the
    largest its precondition allows (|v| + 2^(s-1) < 2^(31+s), |r v_n| + 2^(sh_rn-1) < 2^63
    with r < 2^15): the rounded shifts reach INT32_MIN and INT32_MAX."""
    rng = np.random.default_rng(16)
    arrays, body, expected = [], [], []
    for i, (sgx, sgh, srn, snh) in enumerate(RSHIFT64):
        u = 8 if i % 2 else 7
        lx = (1 << (31 + sgx)) - (1 << (sgx - 1)) - 1
        lh = min((1 << (31 + sgh)) - (1 << (sgh - 1)) - 1, ((1 << 63) - (1 << (srn - 1)) - 1) >> 15)
        gx = rng.integers(-lx, lx, size=3 * u, endpoint=True)
        gh = rng.integers(-lh, lh, size=3 * u, endpoint=True)
        gx[:4] = [lx, -lx, 0, -1]  # the extremes (a sum that saturates) and small values
        gh[:4] = [lx if lx <= lh else lh, -lh, 1, 0]
        gx[2 * u : 2 * u + 2] = [lx, -lx]
        gh[2 * u : 2 * u + 3] = [lh, -lh, lh >> 7]
        small = rng.integers(-(1 << (sgx + 14)), 1 << (sgx + 14), size=u)  # inside the tables
        gx[u + 4 : u + 4 + min(u - 4, 3)] = small[: min(u - 4, 3)]
        if i % 2:  # r * v_n at its rounding edges: r = 32757 (sigmoid at +8), z = 11 (at
            # -8) so that h' follows n, and n near 0 where tanh is steepest
            gx[:u], gx[u : 2 * u], gh[: 2 * u] = lx, -lx, 0
            gx[2 * u :] = rng.integers(-(1 << (sgx + 2)), 1 << (sgx + 2), size=u)
            m = rng.integers(-40, 40, size=u) + 0.5
            gh[2 * u :] = np.round(m * 2.0**srn / 32757).astype(np.int64)
            gh[2 * u :: 2] += rng.integers(-1, 2, size=len(gh[2 * u :: 2]))
            gh[2 * u :] = np.clip(gh[2 * u :], -lh, lh)  # within the precondition
        h = rng.integers(-(1 << 15), 1 << 15, size=u)
        h[0] = -(1 << 15)
        arrays += [_arr(f"gx{i}", "int64_t", gx), _arr(f"gh{i}", "int64_t", gh),
                   _arr(f"h{i}", "int16_t", h)]  # fmt: skip
        calls = _update_calls(("ethoedge_update_64_rshift", "ethoedge_gru_update64"), i, u)
        body.append(_update_block(16, u, (sgx, sgh, srn, snh), calls))
        ref = _gru_reference(gx, gh, h, 16, sgx, sgh, srn, snh)
        expected += [ref, ref]
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


# (sgx, sgh, srn, snh) at W=8 with gate values inside the tables: the default student's
# shifts (1, 4, 11, 0); the SMMULR rounding of r * n at srn 8 and 32 and the general form at
# 7 and 33; snh > 0; a left shift of gx (the fast pass after its pre-shift)
IN_RANGE8 = [(1, 4, 11, 0), (0, 2, 9, 1), (3, 5, 8, 0), (2, 2, 7, 0), (6, 6, 32, 0),
             (4, 1, 33, 1), (-2, 2, 9, 0)]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
def test_update_32_on_table_values(tmp_path: Path, target: str):
    """The W=8 int32 updates on gate values whose activations land inside the tables and whose
    r * n products fall on every rounding fraction (random gates saturate and hide both)."""
    rng = np.random.default_rng(8)
    u, rounds = 8, 6
    arrays, body, expected = [], [], []
    for i, (sgx, sgh, srn, snh) in enumerate(IN_RANGE8):
        n = rounds * u

        def pre(s: int, size: int) -> np.ndarray:  # (g + 2^(s-1)) >> s within +-40,000
            v = rng.integers(-40_000, 40_001, size=size)
            return v << s if s > 0 else v >> -s

        gx = np.concatenate([pre(sgx, 3 * u) for _ in range(rounds)])
        gh = np.concatenate([pre(sgh, 3 * u) for _ in range(rounds)])
        gh = gh.reshape(rounds, 3, u)
        lim = min((1 << (15 + srn)) >> 7, (1 << 31) - 1)  # |r n| >> srn within the tables
        gh[:, 2, :] = rng.integers(-lim, lim, size=(rounds, u), endpoint=True)
        gh = gh.ravel()
        h = rng.integers(-128, 128, size=n)
        arrays += [_arr(f"gx{i}", "int32_t", gx), _arr(f"gh{i}", "int32_t", gh),
                   _arr(f"h{i}", "int16_t", h)]  # fmt: skip
        fns = ["ethoedge_gru_update32", "ethoedge_update_32_fast"]
        if sgx >= 0 and sgh >= 0:
            fns.append("ethoedge_update_32_rshift")
        calls = "\n".join(
            f"""        for (k = 0; k < {rounds}; ++k) {{
            {f}(&m, gx{i} + k * {3 * u}, gh{i} + k * {3 * u}, {u}, h{i} + k * {u}, hn);
            for (j = 0; j < {u}; ++j) put(hn[j]);
        }}"""
            for f in fns
        )
        body.append(_update_block(8, u, (sgx, sgh, srn, snh), calls))
        ref = np.concatenate([
            _gru_reference(gx[k * 3 * u : (k + 1) * 3 * u], gh[k * 3 * u : (k + 1) * 3 * u],
                           h[k * u : (k + 1) * u], 8, sgx, sgh, srn, snh)
            for k in range(rounds)
        ])  # fmt: skip
        expected += [ref] * len(fns)
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


# (hidden, sgx, sgh, srn, largest |w|) of the fused GRU ops: the default student's shifts (1,
# 3, 10) on full-range weights (gates that saturate); gates inside the tables; SMMULR at
# sh_rn 8 and 32; a left shift of gx (the demo's -2; by 5; beside gh unshifted) with small
# weights so that no left shift saturates (the lshift op's precondition)
FUSED = [(32, 1, 3, 10, 127), (32, 9, 10, 8, 127), (16, 6, 7, 32, 127), (32, -2, 2, 9, 3),
         (16, -5, 1, 8, 2), (48, 8, 9, 11, 127), (32, -3, 0, 12, 2)]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
def test_fused_gru_steps(tmp_path: Path, target: str):
    """The GRU of a step in one function (ethoedge_gru_s8_pairs16/32_rshift/_lshift) against
    the reference and against the layer and update ops block by block (ethoedge_gru_blocks),
    over 4 steps from a state at the int8 ends: every block, both halves of the pair tiles, the
    16- and 32-column tiles (H = 48 takes three 16-column iterations)."""
    rng = np.random.default_rng(48)
    arrays, body, expected = [], [], []
    for i, (hid, sgx, sgh, srn, wmax) in enumerate(FUSED):
        lshift = sgx < 0 or sgh < 0
        tiles = "pairs32" if hid == 32 else "pairs16"
        fused = f"ethoedge_gru_s8_{tiles}_{'lshift' if lshift else 'rshift'}"
        update = "ethoedge_update_32_lshift" if lshift else "ethoedge_update_32_rshift"
        # the fused op's constants, as the exporter writes them (emit._gru8_consts)
        rgx, rgh = (1 << (sgx - 1) if sgx > 0 else 0), (1 << (sgh - 1) if sgh > 0 else 0)
        sx = -sgx if lshift else sgx
        w_ih = rng.integers(-wmax, wmax + 1, size=(3 * hid, hid))
        w_hh = rng.integers(-wmax, wmax + 1, size=(3 * hid, hid))
        for w in (w_ih, w_hh):
            w[1::2][(w[0::2] < 0) & (w[1::2] == -128)] = -127  # pairs the layout can hold
        b_ih = rng.integers(-(1 << 12), 1 << 12, size=3 * hid)
        b_hh = rng.integers(-(1 << 12), 1 << 12, size=3 * hid)
        a = rng.integers(0, 128, size=(4, hid))  # the input layer's ReLU outputs
        a[0] = 127
        h = rng.integers(-128, 128, size=hid)
        h[: hid // 2] = np.where(np.arange(hid // 2) % 2, 127, -128)
        rows = gru_row_order(hid)
        arrays += [
            _arr(f"wi{i}", "int8_t", pair_matrix(w_ih[rows])),
            _arr(f"wh{i}", "int8_t", pair_matrix(w_hh[rows])),
            _arr(f"bi{i}", "int32_t", b_ih[rows]),
            _arr(f"bh{i}", "int32_t", b_hh[rows]),
            _arr(f"a{i}", "int16_t", a),
            _arr(f"h{i}", "int16_t", h),
        ]
        # the fused op with no update op in its table (as a model file built for the M4 has
        # it): where the fused passes do not run, it must use its own update by name
        for gru, up in ((fused, "0"), ("ethoedge_gru_blocks", update)):
            body.append(f"""    {{
        static const ethoedge_ops_t ops = {{ethoedge_layer_s8_{tiles}, ethoedge_requant_32,
                                           {up}, ethoedge_layer_s8_{tiles}, {gru}}};
        ethoedge_model_t m;
        int32_t acc[6 * ETHOEDGE_GRU_BLOCK] ETHOEDGE_ALIGN4;
        int16_t hn[{hid}] ETHOEDGE_ALIGN4, hs[{hid}] ETHOEDGE_ALIGN4;
        ethoedge_work_t work = {{0, hn, acc, 0}};
        const ethoedge_gru8_consts_t k8 = {{ethoedge_sigmoid_q15 + 128,
            {{65535, 256, 32896, {rgx}, {sx}, {rgh}, {sgh}}}, ethoedge_tanh_q15 + 128,
            {{65535, 256, 32896, {rgx}, {sx}}}, 0, {{0, 0}}}};
        int j, t;
        memset(&m, 0, sizeof m);
        m.ops = &ops;
        m.gru8 = &k8;
        m.word_bits = 8;
        m.hidden = {hid};
        m.use_dsp = 1;
        m.sh_gx = {sgx};
        m.sh_gh = {sgh};
        m.sh_rn = {srn};
        m.w_ih = wi{i};
        m.w_hh = wh{i};
        m.b_ih = bi{i};
        m.b_hh = bh{i};
        memcpy(hs, h{i}, sizeof hs);
        for (t = 0; t < 4; ++t) {{
            m.ops->gru(&m, a{i} + t * {hid}, hs, &work);
            for (j = 0; j < {hid}; ++j) put(hs[j]);
        }}
    }}""")
        ref, hr = [], h
        for t in range(4):
            gx, gh = w_ih @ a[t] + b_ih, w_hh @ hr + b_hh
            hr = _gru_reference(gx, gh, hr, 8, sgx, sgh, srn, 0)
            ref.append(hr)
        expected += [np.concatenate(ref)] * 2
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


@pytest.mark.parametrize("target", TARGETS)
def test_fused_input_layers(tmp_path: Path, target: str):
    """The input layer and its W=8 ReLU requantisation in one pass (the fused GRU's
    ethoedge_input_s8_in3_relu8 and _in6_relu8: the tiles requantise their sums on the M4)
    against the reference: 3 and 6 columns, H = 32 and 16, shifts of 1, 9 and 20, sums at
    int32's ends (as far as the rounding allows; saturating to 127 and 0) and at the rounding
    edges; x at any int16 address for 3 columns."""
    rng = np.random.default_rng(36)
    arrays, body, expected = [], [], []
    cases = [(3, 32, 9), (6, 32, 1), (3, 16, 20), (6, 16, 9)]
    for i, (cols, hid, sa) in enumerate(cases):
        w = _rand_w(rng, (hid, cols), 8)
        x = rng.integers(-(1 << 15), 1 << 15, size=cols)
        x[0] = -(1 << 15)
        w[0] = np.where(x < 0, -127, 127)  # row 0 sums up, row 1 down: biases within int32
        w[1] = -w[0]
        exact = w.astype(np.int64) @ x.astype(np.int64)
        b = rng.integers(-(1 << (sa + 8)), 1 << (sa + 8), size=hid) - exact // 4
        # the sum at int32's ends, less the rounding term (the exporter proves v + 2^(s-1) fits)
        b[0] = (1 << 31) - 1 - (1 << (sa - 1)) - exact[0]
        b[1] = -(1 << 31) - exact[1]
        b[2] = (5 << sa) + (1 << (sa - 1)) - 1 - exact[2]  # rounding edges: 5 and 6
        b[3] = (5 << sa) + (1 << (sa - 1)) - exact[3]
        arrays += [
            _arr(f"w{i}", "int8_t", tile_matrix(w, 8)),
            _arr(f"x{i}", "int16_t", np.concatenate([x, [0]])),
            _arr(f"b{i}", "int32_t", b),
        ]
        xs = [f"x{i}"] + (["xu + 1"] if cols == 3 else [])
        for xa in xs:
            body.append(f"""    {{
        const ethoedge_gru8_consts_t k8 = {{0, {{0, 0, 0, 0, 0, 0, 0}}, 0, {{0, 0, 0, 0, 0}},
            ethoedge_input_s8_in{cols}_relu8, {{{1 << (sa - 1)}, {sa}}}}};
        ethoedge_model_t m;
        int32_t acc[{hid}] ETHOEDGE_ALIGN4, dot[1];
        int16_t a[{hid}] ETHOEDGE_ALIGN4, xu[{cols + 2}];
        ethoedge_work_t work = {{a, 0, acc, dot}};
        int j;
        memset(&m, 0, sizeof m);
        m.gru8 = &k8;
        m.hidden = {hid};
        m.word_bits = 8;
        m.sh_a = {sa};
        m.w_inp = w{i};
        m.b_inp = b{i};
        memcpy(xu + 1, x{i}, sizeof(int16_t) * {cols});
        m.gru8->input(&m, {xa}, &work);
        for (j = 0; j < {hid}; ++j) put(a[j]);
    }}""")
            expected.append(np.clip(round_shift(exact + b, sa), 0, 127))
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


@pytest.mark.parametrize("target", TARGETS)
def test_requant(tmp_path: Path, target: str):
    rng = np.random.default_rng(7)
    acc = rng.integers(-(1 << 29), 1 << 29, size=11)
    acc[:2] = [(1 << 29) - 1, -(1 << 29)]
    arrays = [_arr("acc", "int32_t", acc), _arr("acc64", "int64_t", acc * 1000)]
    cases = [(s, w, relu) for s in (-3, 0, 5, 21, 25) for w in (8, 16) for relu in (0, 1)]
    body, expected = [], []
    for s, w, relu in cases:
        body.append(f"""    {{
        int16_t o16[11];
        int32_t o32[11];
        int j;
        ethoedge_requant32(acc, 11, {s}, {w}, {relu}, o16, 0);
        for (j = 0; j < 11; ++j) put(o16[j]);
        ethoedge_requant64(acc64, 11, {s + 10}, {w}, {relu}, 0, o32);
        for (j = 0; j < 11; ++j) put(o32[j]);
    }}""")
        for a, sh in ((acc, s), (acc * 1000, s + 10)):
            v = saturate(round_shift(a, sh), w)
            expected.append(np.maximum(v, 0) if relu else v)
        if s > 0:  # the right-shift-only requantisation (its precondition); int16 output
            # word-aligned and not
            body.append(f"""    {{
        int16_t o16[12] ETHOEDGE_ALIGN4;
        int32_t o32[11];
        int j;
        ethoedge_requant_32_rshift(acc, 11, {s}, {w}, {relu}, o16, 0);
        for (j = 0; j < 11; ++j) put(o16[j]);
        ethoedge_requant_32_rshift(acc, 11, {s}, {w}, {relu}, o16 + 1, 0);
        for (j = 1; j < 12; ++j) put(o16[j]);
        ethoedge_requant_32_rshift(acc, 11, {s}, {w}, {relu}, 0, o32);
        for (j = 0; j < 11; ++j) put(o32[j]);
    }}""")
            v = saturate(round_shift(acc, s), w)
            expected += [np.maximum(v, 0) if relu else v] * 3
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


@pytest.mark.parametrize("target", TARGETS)
def test_requant_64_rshift(tmp_path: Path, target: str):
    """The int64 requantisation without saturation on accumulators up to the largest its
    precondition allows (|v| + 2^(s-1) < 2^(31+s)), around the W-bit range and at the
    rounding edges (v = (k + 1/2) 2^s and one less)."""
    rng = np.random.default_rng(64)
    body, arrays, expected = [], [], []
    for i, s in enumerate((1, 2, 12, 17, 31)):
        lim = (1 << (31 + s)) - (1 << (s - 1)) - 1
        k = np.array([0, 1, -1, 127, 128, -128, -129, 32767, 32768, -32768, -32769, 5, -6])
        edge = (2 * k + 1) << (s - 1)
        acc = np.concatenate(
            [[lim, -lim, 0], edge, edge - 1, rng.integers(-lim, lim, size=8, endpoint=True)]
        )
        n = acc.size
        arrays.append(_arr(f"a{i}", "int64_t", acc))
        for w in (8, 16):
            for relu in (0, 1):
                body.append(f"""    {{
        int16_t o16[{n}];
        int32_t o32[{n}];
        int j;
        ethoedge_requant_64_rshift(a{i}, {n}, {s}, {w}, {relu}, o16, 0);
        for (j = 0; j < {n}; ++j) put(o16[j]);
        ethoedge_requant_64_rshift(a{i}, {n}, {s}, {w}, {relu}, 0, o32);
        for (j = 0; j < {n}; ++j) put(o32[j]);
    }}""")
                v = saturate(saturate(round_shift(acc, s), 32), w)
                expected += [np.maximum(v, 0) if relu else v] * 2
    got = run_program(tmp_path, "\n".join(body), arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))


def test_kernels_refuse_a_logical_right_shift():
    """The compile-time check is in the header: a compiler whose ``-1 >> 1`` is not -1 fails."""
    text = kernel_files()["ethoedge_kernels.h"]
    assert "((-1) >> 1) == -1 ? 1 : -1" in text
    assert shutil.which("gcc")


# means: random ones of about 1 g (2^11) and of every size, the int16 extremes, zero, exactly
# along and opposite every axis, a unit off the opposite direction, and squared norms just
# under a half (r^2 + r: the square root rounds down)
def _orientation_means(rng: np.random.Generator) -> list[list[int]]:
    means = [[0, 0, 0], [-32768, -32768, -32768], [32767, -32768, 32767], [1, 0, 0],
             [0, 0, -1], [3, -2048, 1],
             [32, 32, -2048], [2048, 32, 32]]  # fmt: skip
    for k in range(3):
        for s in (-1, 1):
            e = [0, 0, 0]
            e[k] = s * 2048
            means.append(e)
            near = list(e)
            near[(k + 1) % 3] = 1
            means.append(near)
    for scale in (2048, 2048, 300, 20000):
        for _ in range(6):
            v = rng.normal(size=3)
            means.append(np.round(v / np.linalg.norm(v) * scale).astype(int).tolist())
    return means


@pytest.mark.parametrize("target", TARGETS)
def test_orientation_and_orient(tmp_path: Path, target: str):
    """``ethoedge_orientation`` on every axis and ``ethoedge_orient`` (in place too) against
    :mod:`ethoedge.quantize.orient`, on random and extreme means and samples."""
    from ethoedge.quantize.orient import orient_q, orientation_q

    rng = np.random.default_rng(11)
    means = _orientation_means(rng)
    samples = rng.integers(-(1 << 15), 1 << 15, size=(40, 3))
    samples[:8] = [[-32768] * 3, [32767] * 3, [32767, -32768, 32767], [0, 0, 0],
                   [-32768, 0, 0], [0, 32767, 0], [2048, 0, -2048], [-1, 1, -1]]  # fmt: skip
    axes = ["x", "y", "z", "-x", "-y", "-z"]
    arrays = [_arr("means", "int16_t", np.array(means)),
              _arr("samples", "int16_t", samples)]  # fmt: skip
    body = f"""    int i, a, j, t;
    for (i = 0; i < {len(means)}; ++i) {{
        for (a = 0; a < 6; ++a) {{
            int16_t rot[9];
            ethoedge_orientation(means + 3 * i, a % 3, a < 3 ? 1 : -1, rot);
            for (j = 0; j < 9; ++j) put(rot[j]);
            if (i % 4 == 0) {{
                for (t = 0; t < {len(samples)}; ++t) {{
                    int16_t out[3], io[3];
                    memcpy(io, samples + 3 * t, sizeof io);
                    ethoedge_orient(rot, samples + 3 * t, out);
                    ethoedge_orient(rot, io, io); /* in place */
                    for (j = 0; j < 3; ++j) put(out[j]);
                    for (j = 0; j < 3; ++j) put(io[j]);
                }}
            }}
        }}
    }}
    {{ /* no such axis: the identity */
        int16_t rot[9];
        ethoedge_orientation(means + 3 * 6, 3, 1, rot);
        for (j = 0; j < 9; ++j) put(rot[j]);
    }}"""
    expected = []
    for i, m in enumerate(means):
        for ax in axes:
            rot = orientation_q(m, ax)
            expected.append(rot.ravel())
            if i % 4 == 0:
                out = orient_q(samples, rot)
                expected.append(np.concatenate([out, out], axis=1).ravel())
    expected.append(np.eye(3, dtype=np.int64).ravel() << 14)
    got = run_program(tmp_path, body, arrays, target)
    np.testing.assert_array_equal(got, np.concatenate(expected))
