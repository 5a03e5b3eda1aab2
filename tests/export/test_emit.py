"""The generated C: contents, validation before writing, strict compilation, example main."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ethoedge import __version__
from ethoedge.errors import EthoedgeError
from ethoedge.export import ExportConfig, emit_c, export_c
from ethoedge.export.emit import (
    dsp_order,
    fraction_bits,
    gru_row_order,
    kernel_ops,
    pair_matrix,
    pairs_ok,
    requant64_rshift_ok,
    shifts,
    tile_matrix,
    update32_lshift_ok,
    update64_rshift_ok,
)
from ethoedge.export.toolchain import (
    ARM_TARGETS,
    STRICT_FLAGS,
    compile_host,
    compile_object,
    section_sizes,
)
from ethoedge.models.gru_mlp import GRUStudent

from .helpers import make_qmodel, requires_arm, requires_gcc


def test_files_provenance_and_types(qmodel):
    files = emit_c(qmodel, ExportConfig(prefix="cow"), command="ethoedge export-c B --bits 8")
    assert sorted(files) == ["cow.c", "cow.h", "ethoedge_kernels.c", "ethoedge_kernels.h", "main.c"]
    src, hdr = files["cow.c"], files["cow.h"]
    for text in (src, hdr):
        assert f"ethoedge {__version__}" in text
        assert qmodel.checksum() in text
        assert ExportConfig(prefix="cow").hash() in text
        assert "ethoedge export-c B --bits 8" in text
    wtype = "int8_t" if qmodel.word_bits == 8 else "int16_t"
    assert re.search(rf"static const {wtype} cow_gru_weight_hh\[192\] ETHOEDGE_ALIGN4", src)
    assert "static const ethoedge_model_t cow_model" in src
    assert "COW_SH_GX =" in src and "COW_F_H =" in src
    # the model file holds data and the API only: kernels and tables live in the library
    assert "sigmoid" not in re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    assert "ethoedge_sigmoid_q15[257]" in files["ethoedge_kernels.c"]
    assert "#define COW_HOP 12" in hdr and "#define COW_N_STATES 1" in hdr
    assert "typedef struct" in hdr and "cow_state_t" in hdr
    assert "int cow_classify(const int16_t x[COW_N_SAMPLES][COW_N_CHANNELS]" in hdr
    # no allocation, no stdio or libm on the inference path
    for text in (src, files["ethoedge_kernels.c"], files["ethoedge_kernels.h"]):
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for banned in ("malloc", "free(", "stdio", "printf", "math.h", "expf", "tanhf", "float"):
            assert banned not in code


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("rows, cols", [(13, 7), (8, 8), (3, 5), (5, 1)])
def test_tile_layout_is_a_permutation(bits, rows, cols):
    m = np.arange(rows * cols).reshape(rows, cols)
    t = tile_matrix(m, bits)
    assert sorted(t.tolist()) == list(range(rows * cols))
    if rows >= 4 and cols >= 4:  # the first group of the first tile: R rows' first columns
        tile = 4 if bits == 8 else 2
        first = [0, 2, 1, 3] if bits == 8 else [0, 1, 2, 3]
        assert t[: 4 * tile].tolist() == [r * cols + c for r in range(tile) for c in first]


def test_gru_rows_in_unit_blocks():
    order = gru_row_order(13)
    assert sorted(order.tolist()) == list(range(39))
    assert order[:24].tolist() == [*range(8), *range(13, 21), *range(26, 34)]  # block 0: r, z, n


def test_w8_storage_order_is_a_column_permutation():
    q = make_qmodel(8, hidden=13)
    m = q.weights["gru.weight_ih"].values
    p = dsp_order(m)
    assert sorted(p[0].tolist()) == sorted(m[0].tolist())
    assert np.array_equal(p[:, 12], m[:, 12])  # the incomplete last group keeps its order
    assert np.array_equal(p[:, [0, 1, 2, 3]], m[:, [0, 2, 1, 3]])


def test_pair_layout_words_hold_two_rows():
    """Every word of the pair layout, read as two int16, is 256 w_b + w_a for its two rows and
    two columns, and its even bytes are w_a: on random int8 weights with every extreme."""
    rng = np.random.default_rng(5)
    rows, cols = 12, 10
    m = rng.integers(-128, 128, size=(rows, cols))
    m[0, :4] = [-128, 127, -1, 0]
    m[1, :4] = [127, -127, -127, -128]  # w_b = -128 beside w_a = 0: its byte stays -128
    flat = pair_matrix(m).astype(np.int8)
    half = flat.view("<i2").astype(np.int64)
    i = 0
    for t in range(rows // 4):
        for c in range(0, cols, 2):
            for a in (4 * t, 4 * t + 2):
                for k in (c, c + 1):
                    assert half[i] == 256 * m[a + 1, k] + m[a, k]
                    assert flat[2 * i] == m[a, k]
                    i += 1
    assert i == half.size
    bad = m.copy()
    bad[0, 0], bad[1, 0] = -1, -128  # the second row's byte would be -129
    with pytest.raises(ValueError, match="outside int8"):
        pair_matrix(bad)


def test_pair_layer_only_where_its_bounds_hold():
    """The pair layout's layer is chosen where pairs_ok proves it exact; a -128 beside a
    negative weight of its pair, a bias past 2^23 / 256 of headroom, or a hidden size not a
    multiple of 8 keeps the tiles."""
    q = make_qmodel(8, hidden=8, mlp_hidden=8, n_classes=4)
    assert pairs_ok(q) and kernel_ops(q, ExportConfig())[0] == "ethoedge_layer_s8_pairs"
    weights = dict(q.weights)
    t = weights["mlp.weight"]
    v = t.values.copy()
    v[0, 0], v[1, 0] = -3, -128
    weights["mlp.weight"] = dataclasses.replace(t, values=v)
    assert not pairs_ok(dataclasses.replace(q, weights=weights))
    v[0, 0] = 3  # w_a >= 0: the -128 byte is stored as it is
    assert pairs_ok(dataclasses.replace(q, weights=weights))
    weights = dict(q.weights)
    t = weights["out.bias"]
    b = t.values.copy()
    f_acc = q.weights["out.weight"].frac_bits + q.act_frac["m"]
    b[1] = (1 << 23) >> max(0, f_acc - t.frac_bits)  # row 1: the second row of a pair
    weights["out.bias"] = dataclasses.replace(t, values=b, frac_bits=min(t.frac_bits, f_acc))
    big = dataclasses.replace(q, weights=weights)
    assert not pairs_ok(big)
    assert kernel_ops(big, ExportConfig())[0] == "ethoedge_layer_s8_tiles"
    assert not pairs_ok(make_qmodel(8, hidden=12, mlp_hidden=8, n_classes=4))
    # 16 columns per iteration where H and M are multiples of 16
    q16 = make_qmodel(8, hidden=16, mlp_hidden=16, n_classes=4, seed=3)
    assert pairs_ok(q16) and kernel_ops(q16, ExportConfig())[0] == "ethoedge_layer_s8_pairs16"


@pytest.mark.parametrize(
    "make, cfg, match",
    [
        (lambda: GRUStudent(3), ExportConfig(n_samples=12), "quantize the model first"),
        (lambda: make_qmodel(12), ExportConfig(), "word length 12"),
        (lambda: make_qmodel(8), ExportConfig(prefix="1model"), "not a C identifier"),
        (lambda: make_qmodel(8), ExportConfig(prefix="my-model"), "not a C identifier"),
        (lambda: make_qmodel(8), ExportConfig(prefix="int"), "not a C identifier"),
        # the kernel library's files and symbols, the example main.c: an export that would
        # overwrite them is refused
        (lambda: make_qmodel(8), ExportConfig(prefix="ethoedge_kernels"), "is taken"),
        (lambda: make_qmodel(8), ExportConfig(prefix="main"), "is taken"),
        (lambda: make_qmodel(8), ExportConfig(prefix="ethoedge"), "is taken"),
        (lambda: make_qmodel(8), ExportConfig(word_bits=16), "quantized at W=8"),
    ],
)
def test_invalid_export_writes_nothing(tmp_path: Path, make, cfg, match):
    out = tmp_path / "out"
    with pytest.raises(EthoedgeError, match=match):
        export_c(make(), out, cfg)
    assert not out.exists()


def test_missing_window_length_is_an_error(tmp_path: Path):
    q = make_qmodel(8)
    q.meta.pop("n_samples")
    with pytest.raises(EthoedgeError, match="window length unknown"):
        export_c(q, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@requires_gcc
def test_host_strict_build_and_example_main(tmp_path: Path, qmodel):
    paths = export_c(qmodel, tmp_path, ExportConfig(prefix="cow"))
    assert {p.name for p in paths} == {
        "cow.h", "cow.c", "main.c", "ethoedge_kernels.h", "ethoedge_kernels.c"
    }  # fmt: skip
    sources = [tmp_path / n for n in ("cow.c", "ethoedge_kernels.c", "main.c")]
    exe = compile_host(sources, tmp_path / "example")
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("classify: class")
    assert lines[1].startswith("streaming: class")
    assert lines[0].split(":", 1)[1] == lines[1].split(":", 1)[1]


@requires_arm
@pytest.mark.qemu
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
def test_arm_strict_build(tmp_path: Path, target: str):
    q = make_qmodel(8, hidden=32, n_classes=4, n_samples=50)
    export_c(q, tmp_path)
    flash, ram = {}, 0
    orient = tuple(f".text{h}.{f}" for h in ("", ".unlikely")
                   for f in ("ethoedge_orientation", "ethoedge_orient", "isqrt_round",
                             "div_round"))  # fmt: skip
    for name in ("ethoedge_model.c", "ethoedge_kernels.c"):
        obj = compile_object(tmp_path / name, tmp_path / f"{name}.o", target=target)
        sizes = section_sizes(obj)
        flash[name] = sum(v for k, v in sizes.items()
                          if k.startswith((".text", ".rodata")) and k not in orient)  # fmt: skip
        ram += sum(v for k, v in sizes.items() if k.startswith((".data", ".bss")))
        if name == "ethoedge_kernels.c":  # the orientation calibration, for calibrated models
            flash["orientation"] = sum(sizes.get(k, 0) for k in orient)
    # weights 7.4 kB at W=8, int32 biases 1 kB, the API; every kernel of the library with both
    # tables, the tile and pair mat-vecs (8, 16 and 32 columns), both W=8 gate passes and the
    # two fused W=8 GRU steps with the assembly passes of each among them (a firmware keeps
    # only the kernels its models use, one of each pair, so one model's kernels are far less:
    # see test_cost.py and benchmarks/c_cost.py)
    assert 0 < flash["ethoedge_model.c"] < 9 * 1024
    assert 0 < flash["ethoedge_kernels.c"] < 14.5 * 1024
    assert 0 < flash["orientation"] < 1024
    assert ram == 0  # the model has no static state: the caller owns it


@requires_arm
@pytest.mark.parametrize("opt", ["-O0", "-Og", "-Os", "-O3", "-O2 -fno-omit-frame-pointer"])
def test_kernels_build_for_the_m4_at_every_optimisation_level(tmp_path: Path, opt: str):
    """Inline assembly that names r7 (Thumb's frame pointer) or asks for more registers than an
    unoptimised build has breaks a debug build of a firmware; the strict flags at each level."""
    q = make_qmodel(8, hidden=32, mlp_hidden=32, n_classes=4, seed=2)
    export_c(q, tmp_path)
    cmd = ["arm-none-eabi-gcc", *ARM_TARGETS["cortex-m4"].cpu_flags, *STRICT_FLAGS, *opt.split()]
    cmd += ["-c", str(tmp_path / "ethoedge_kernels.c"), "-o", str(tmp_path / "k.o")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]


def _huge_bias(q, name: str):
    """``q`` with the first entry of bias ``name`` at its largest value, 2^20 times coarser
    (far past what the accumulators' bounds allow)."""
    weights = dict(q.weights)
    t = weights[name]
    vals = t.values.copy()
    vals[0] = (1 << 15) - 1
    weights[name] = dataclasses.replace(t, values=vals, frac_bits=t.frac_bits - 20)
    return dataclasses.replace(q, weights=weights)


def test_update32_lshift_only_where_no_left_shift_saturates():
    """The bound of ethoedge_update_32_lshift: (128 sum |w| + |b|) 2^k < 2^31 per shifted row
    (W_ih's rows for sh_gx < 0, W_hh's rows r and z for sh_gh < 0); a bias that takes one row
    past it, or a shift past 30, keeps the saturating copy."""
    q = make_qmodel(8, hidden=8, mlp_hidden=8, n_classes=4)
    left = dataclasses.replace(q, act_frac={**q.act_frac, "a": -6, "h": 7})
    k = -shifts(left)["SH_GX"]
    assert k > 0 and shifts(left)["SH_GH"] >= 0 and update32_lshift_ok(left)

    def with_bias(name: str, row: int, value: int):
        weights = dict(left.weights)
        t = weights[name]
        b = t.values.copy()
        b[row] = value
        f_acc = fraction_bits(left)["ACC_X" if name == "gru.bias_ih" else "ACC_H"]
        weights[name] = dataclasses.replace(t, values=b, frac_bits=f_acc)
        return dataclasses.replace(left, weights=weights)

    w = np.abs(left.weights["gru.weight_ih"].values.astype(np.int64)).sum(axis=1)
    room = ((1 << 31) >> k) - 128 * int(w[17])  # row 17: an n row of W_ih
    assert update32_lshift_ok(with_bias("gru.bias_ih", 17, room - 1))
    assert not update32_lshift_ok(with_bias("gru.bias_ih", 17, room))
    assert kernel_ops(with_bias("gru.bias_ih", 17, room), ExportConfig())[2] == (
        "ethoedge_update_32_fast"
    )
    # W_hh is not shifted here (sh_gh >= 0): a bias that would fail the bound if it were
    # does not count
    wh = np.abs(left.weights["gru.weight_hh"].values.astype(np.int64)).sum(axis=1)
    assert update32_lshift_ok(with_bias("gru.bias_hh", 3, ((1 << 31) >> k) - 128 * int(wh[3])))
    far = dataclasses.replace(q, act_frac={**q.act_frac, "a": -40, "h": 7})
    assert shifts(far)["SH_GX"] < -30 and not update32_lshift_ok(far)


@pytest.mark.parametrize("hidden", [16, 32])
def test_fused_gru_only_where_its_precondition_holds(hidden: int):
    """The GRU of a step in one function (ethoedge_gru_s8_pairs16/32_rshift/_lshift) with the
    16- or 32-column pair tiles and the rshift or lshift update, 8 <= sh_rn <= 32 and
    sh_n_to_h = 0; the layer and update ops block by block otherwise."""
    q = make_qmodel(8, hidden=hidden, mlp_hidden=hidden, n_classes=4, seed=2)
    sh = shifts(q)
    assert 8 <= sh["SH_RN"] <= 32 and sh["SH_N_TO_H"] == 0 and pairs_ok(q)
    tiles = "pairs32" if hidden == 32 else "pairs16"
    layer, _, update, _, gru = kernel_ops(q, ExportConfig())
    assert layer == f"ethoedge_layer_s8_{tiles}" and update == "ethoedge_update_32_rshift"
    assert gru == f"ethoedge_gru_s8_{tiles}_rshift"
    # the update with left shifts inside its passes: the lshift twin (gx shifted left; sh_gh
    # = sh_rn - 7 is positive wherever sh_rn >= 8)
    left = dataclasses.replace(q, act_frac={**q.act_frac, "a": -6, "h": 7})
    assert shifts(left)["SH_GX"] < 0 < shifts(left)["SH_GH"] == shifts(left)["SH_RN"] - 7
    assert kernel_ops(left, ExportConfig())[2] == "ethoedge_update_32_lshift"
    assert kernel_ops(left, ExportConfig())[4] == f"ethoedge_gru_s8_{tiles}_lshift"
    # ... its saturating copy (the DSP path off): block by block, with the general layer
    assert kernel_ops(left, ExportConfig(use_dsp=False))[4] == "ethoedge_gru_blocks"
    # sh_n_to_h > 0: block by block
    coarse_n = dataclasses.replace(q, act_frac={**q.act_frac, "h": 6})
    assert shifts(coarse_n)["SH_N_TO_H"] > 0
    assert kernel_ops(coarse_n, ExportConfig())[4] == "ethoedge_gru_blocks"
    # the model file leaves the update op out where the fused GRU runs (the linker drops it)
    text = emit_c(q, ExportConfig(n_samples=50))["ethoedge_model.c"]
    assert "ETHOEDGE_UNLESS_FUSED(ethoedge_update_32_rshift)" in text
    # ... and gives the fused op its constants: the right shifts and their rounding terms,
    # the left shift of gx as a positive count in the lshift form
    rg = [1 << (sh[k] - 1) for k in ("SH_GX", "SH_GH")]
    k = f"65535, 256, 32896, {rg[0]}, {sh['SH_GX']}, {rg[1]}, {sh['SH_GH']}"
    assert k in text and ".gru8 = &ethoedge_model_gru8," in text
    # ... and the input layer requantised in its tiles, its layer op left out where that runs
    cols = f"in{q.n_inputs}"
    inp = f"ethoedge_input_s8_{cols}_relu8, {{{1 << (sh['SH_A'] - 1)}, {sh['SH_A']}}}"
    assert inp in text and f"ETHOEDGE_UNLESS_FUSED(ethoedge_layer_s8_{cols})" in text
    sl = shifts(left)
    text = emit_c(left, ExportConfig(n_samples=50))["ethoedge_model.c"]
    assert f"65535, 256, 32896, 0, {-sl['SH_GX']}, {1 << (sl['SH_GH'] - 1)}, {sl['SH_GH']}" in text
    assert ".gru8" not in emit_c(coarse_n, ExportConfig(n_samples=50))["ethoedge_model.c"]


def test_kernel_set_takes_a_specialised_kernel_only_where_its_precondition_holds():
    """The op functions a W=8 int32 or a W=16 model names (ethoedge_kernels.h gives each one's
    precondition); a model outside one precondition gets the general function there."""
    q = make_qmodel(8, hidden=8, mlp_hidden=8, n_classes=4)
    sh = shifts(q)
    assert sh["SH_RN"] >= 0 and sh["SH_N_TO_H"] >= 0 and min(sh["SH_A"], sh["SH_M"]) > 0
    layer, requant, update, layer_in, gru = kernel_ops(q, ExportConfig())
    assert layer == "ethoedge_layer_s8_pairs"  # see test_pair_layer_only_where_its_bounds_hold
    assert gru == "ethoedge_gru_blocks"  # H = 8: no 16-column pair tiles, no fused GRU
    assert layer_in == f"ethoedge_layer_s8_in{q.n_inputs}"  # the 3- or 6-column input tiles
    assert requant == ("ethoedge_requant_32_rshift" if sh["SH_LOGITS"] > 0
                       else "ethoedge_requant_32")  # fmt: skip
    right = sh["SH_GX"] >= 0 and sh["SH_GH"] >= 0
    assert update == ("ethoedge_update_32_rshift" if right else "ethoedge_update_32_fast")
    # rows not a multiple of 4 (3 classes), or the DSP path off: the general layer
    assert kernel_ops(make_qmodel(8, hidden=8, mlp_hidden=8, n_classes=3), ExportConfig())[0] == (
        "ethoedge_layer_s8"
    )
    assert kernel_ops(q, ExportConfig(use_dsp=False))[0] == "ethoedge_layer_s8"
    assert kernel_ops(q, ExportConfig(use_dsp=False))[3] == "ethoedge_layer_s8"
    # logits with more fraction bits than their accumulator: a left shift, the general requant
    more = dataclasses.replace(q, act_frac={**q.act_frac, "logits": 40})
    assert shifts(more)["SH_LOGITS"] < 0
    assert kernel_ops(more, ExportConfig())[1] == "ethoedge_requant_32"
    # gate accumulators needing a left shift: the fast update with its saturating copy
    left = dataclasses.replace(q, act_frac={**q.act_frac, "a": -6, "h": 7})
    assert shifts(left)["SH_GX"] < 0 and shifts(left)["SH_N_TO_H"] >= 0
    # ... with the shifts inside its passes where none can saturate (test_update32_lshift_*)
    assert update32_lshift_ok(left)
    assert kernel_ops(left, ExportConfig())[2] == "ethoedge_update_32_lshift"
    assert kernel_ops(left, ExportConfig(use_dsp=False))[2] == "ethoedge_update_32_fast"
    # a hidden state with more fraction bits than the gates: the general update
    fine = dataclasses.replace(q, act_frac={**q.act_frac, "h": 9})
    assert shifts(fine)["SH_N_TO_H"] < 0
    assert kernel_ops(fine, ExportConfig())[2] == "ethoedge_update_32"
    # W=16: the requantisation and the update without saturation where the shifts and the
    # proofs allow them, the general functions (the library's set, if both) otherwise
    q16 = make_qmodel(16, hidden=8, n_classes=4)
    sh16 = shifts(q16)
    assert 0 < sh16["SH_GX"] < 32 and 0 < sh16["SH_GH"] < 32 and 32 <= sh16["SH_RN"] < 64
    assert all(0 < sh16[k] < 32 for k in ("SH_A", "SH_M", "SH_LOGITS"))
    assert update64_rshift_ok(q16) and requant64_rshift_ok(q16)
    assert kernel_ops(q16, ExportConfig()) == (
        "ethoedge_layer_s16",
        "ethoedge_requant_64_rshift",
        "ethoedge_update_64_rshift",
        "ethoedge_layer_s16",
        "ethoedge_gru_blocks",
    )
    # r * (W_hn h + b_hn) with fewer fraction bits than the gates (sh_rn < 32), or a hidden
    # state with more fraction bits than the gates (sh_n_to_h < 0): the general update
    coarse = dataclasses.replace(q16, act_frac={**q16.act_frac, "h": 2})
    assert shifts(coarse)["SH_RN"] < 32
    assert kernel_ops(coarse, ExportConfig())[2] == "ethoedge_update_64"
    fine16 = dataclasses.replace(q16, act_frac={**q16.act_frac, "h": 17})
    assert shifts(fine16)["SH_N_TO_H"] < 0
    assert kernel_ops(fine16, ExportConfig())[2] == "ethoedge_update_64"
    # logits with as many fraction bits as their accumulator (a shift of 0): the general
    # requantisation; with the general update too, the library's set
    even = dataclasses.replace(fine16, act_frac={**fine16.act_frac, "logits": 40})
    assert shifts(even)["SH_LOGITS"] <= 0
    assert kernel_ops(even, ExportConfig()) == "ethoedge_ops_s16"
    # a bias so large that a rounded gate value could leave int32: the general update; an
    # output bias so large that a rounded logit could: the general requantisation
    assert not update64_rshift_ok(_huge_bias(q16, "gru.bias_ih"))
    assert not requant64_rshift_ok(_huge_bias(q16, "out.bias"))
