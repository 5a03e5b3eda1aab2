"""The C against the integer reference: random models and inputs, sanitizers, extremes."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ethoedge.errors import EthoedgeError
from ethoedge.export import ExportConfig, export_c, verify_c
from ethoedge.export.emit import kernel_ops
from ethoedge.export.toolchain import compile_arm, compile_host, run_qemu
from ethoedge.export.verify import (
    SANITIZE_FLAGS,
    c_sources,
    run_c,
    stream_windows,
    verify_stream,
)
from ethoedge.quantize.reference import reference_logits

from .helpers import make_qmodel, random_inputs, requires_arm, requires_gcc

pytestmark = requires_gcc


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("hidden, mlp, classes", [(8, 8, 3), (13, 6, 5), (32, 32, 4)])
def test_host_bit_exact_random_models(tmp_path: Path, bits, hidden, mlp, classes):
    q = make_qmodel(bits, hidden=hidden, mlp_hidden=mlp, n_classes=classes, seed=hidden)
    export_c(q, tmp_path, ExportConfig(example_main=False))
    X = random_inputs(64, 12, seed=hidden)
    res = verify_c(tmp_path, X, reference_logits(q, X))
    assert res.ok, res.summary()
    assert res.n_windows == 64 and res.stream_mismatches == 0


def test_a_difference_is_reported(tmp_path: Path):
    q = make_qmodel(8)
    export_c(q, tmp_path)
    X = random_inputs(10, 12)
    expected = reference_logits(q, X)
    expected[7, 1] += 1
    res = verify_c(tmp_path, X, expected)
    assert not res.ok and res.n_identical == 9 and res.first_diff == 7
    assert res.expected == expected[7].tolist() and res.c_scores != res.expected
    assert "9/10 windows identical" in res.summary()


@pytest.mark.parametrize("bits", [8, 16])
def test_sanitizers_and_saturation_on_extreme_inputs(tmp_path: Path, bits):
    """ASan + UBSan build fed random, full-scale, alternating and constant inputs."""
    # large weights and fine activation formats so that accumulators and outputs saturate
    q = make_qmodel(bits, hidden=13, n_classes=4, seed=3)
    export_c(q, tmp_path, ExportConfig(example_main=False))
    X = random_inputs(40, 12, seed=5)
    X[4] = -32768  # constant negative full scale
    X[5, 0], X[5, 1], X[5, 2] = 32767, -32768, 12345
    X[6, :, ::3] = 32767  # a periodic pattern
    scores, same = run_c(tmp_path, X, sanitize=True)
    assert same.all()
    np.testing.assert_array_equal(scores, reference_logits(q, X))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert scores.min() >= lo and scores.max() <= hi
    assert len(np.unique(scores[:4], axis=0)) > 1  # extremes give different answers


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("hidden, stage", [(13, "raw"), (8, "static_dynamic")])
def test_streaming_hop_equals_the_window_api_on_every_overlapping_window(
    tmp_path: Path, bits, hidden, stage
):
    """hop = L/2 and L/3: every window the device emits equals the reference on that window."""
    q = make_qmodel(bits, hidden=hidden, mlp_hidden=7, n_classes=5, seed=hidden,
                    input_stage=stage)  # fmt: skip
    X = random_inputs(12, 12, seed=hidden)
    for hop in (6, 4):
        d = tmp_path / f"hop{hop}"
        export_c(q, d, ExportConfig(example_main=False, hop=hop))
        header = (d / "ethoedge_model.h").read_text()
        assert f"#define ETHOEDGE_MODEL_N_STATES {12 // hop}" in header
        _, windows = stream_windows(X, hop)
        assert len(windows) == (12 * 12 - 12) // hop + 1
        res = verify_stream(d, X, reference_logits(q, windows))
        assert res.ok and res.n_windows == len(windows), res.summary()
        res = verify_c(d, X, reference_logits(q, X))  # the window API is unchanged
        assert res.ok and res.stream_mismatches == 0, res.summary()


def test_hop_must_divide_the_window(tmp_path: Path):
    with pytest.raises(EthoedgeError, match="must divide the window length 12"):
        export_c(make_qmodel(8), tmp_path / "out", ExportConfig(hop=5))
    assert not (tmp_path / "out").exists()


def _two_models(tmp_path: Path) -> tuple[Path, dict]:
    models = {
        "cow8": make_qmodel(8, hidden=13, mlp_hidden=7, n_classes=5, seed=1),
        "cow16": make_qmodel(16, hidden=6, n_classes=3, seed=2, input_stage="static_dynamic"),
    }
    for prefix, q in models.items():
        export_c(q, tmp_path, ExportConfig(prefix=prefix, example_main=False))
    return tmp_path, models


def _two_model_main(models: dict) -> str:
    calls = []
    for p in models:
        pu = p.upper()
        calls.append(f"""    {{
        static int16_t x[{pu}_N_SAMPLES][3];
        int32_t s[{pu}_N_CLASSES];
        int t, c;
        for (t = 0; t < {pu}_N_SAMPLES; ++t) {{
            for (c = 0; c < 3; ++c) {{
                x[t][c] = (int16_t)((t * 977 + c * 131) % 8000 - 4000);
            }}
        }}
        (void){p}_classify((const int16_t(*)[3])x, s);
        for (c = 0; c < {pu}_N_CLASSES; ++c) {{
            printf("%ld\\n", (long)s[c]);
        }}
    }}""")
    heads = "\n".join(f'#include "{p}.h"' for p in models)
    body = "\n".join(calls)
    return f"#include <stdio.h>\n{heads}\n\nint main(void)\n{{\n{body}\n    return 0;\n}}\n"


def _two_model_expected(models: dict) -> list[int]:
    out = []
    for q in models.values():
        L = q.meta["n_samples"]
        t, c = np.meshgrid(np.arange(L), np.arange(3), indexing="ij")
        x = ((t * 977 + c * 131) % 8000 - 4000).astype(np.int16).T[None]  # (1, 3, L)
        out += reference_logits(q, x)[0].tolist()
    return out


def test_two_models_in_one_program(tmp_path: Path):
    """Two exported models (W=8 and W=16, different prefixes) link into one program with one
    copy of the kernels and give the reference's scores."""
    d, models = _two_models(tmp_path)
    assert sorted(p.name for p in d.glob("*.c")) == ["cow16.c", "cow8.c", "ethoedge_kernels.c"]
    (d / "main.c").write_text(_two_model_main(models))
    exe = compile_host(
        [*c_sources(d), d / "main.c"], d / "two", include=[d], opt="-O1", extra=SANITIZE_FLAGS
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30, check=True)
    assert [int(v) for v in out.stdout.split()] == _two_model_expected(models)


@requires_arm
@pytest.mark.qemu
def test_two_models_in_one_firmware_on_the_m4(tmp_path: Path):
    d, models = _two_models(tmp_path)
    (d / "main.c").write_text(_two_model_main(models))
    elf = compile_arm([*c_sources(d), d / "main.c"], d / "two.elf", target="cortex-m4",
                      include=[d])  # fmt: skip
    res = run_qemu(elf, target="cortex-m4", timeout=60, cwd=d)
    assert res.returncode == 0, res.stderr
    assert [int(v) for v in res.stdout.split()] == _two_model_expected(models)


@requires_arm
@pytest.mark.qemu
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
@pytest.mark.parametrize(
    "hidden, stage, left",
    [(32, "raw", False), (32, "static_dynamic", True), (16, "dynamic", False),
     (16, "static_dynamic", True)],
)  # fmt: skip
def test_exported_fused_gru_models_on_the_mcu(tmp_path: Path, target, hidden, stage, left):
    """Exported W=8 models whose GRU op is fused (16- and 32-column pair tiles, both shift
    forms, the 3- and 6-column input layers requantised in their tiles): the window and the
    streaming API on the emulated M4 (the fused passes) and M3 (their fallbacks) against the
    reference, extremes included."""
    q = make_qmodel(8, hidden=hidden, mlp_hidden=hidden, n_classes=4, seed=3, input_stage=stage)
    if left:  # gate accumulators of W_ih a shifted left (common in trained models)
        q = dataclasses.replace(q, act_frac={**q.act_frac, "a": -6, "h": 7})
    gru = kernel_ops(q, ExportConfig())[4]
    assert gru == f"ethoedge_gru_s8_pairs{hidden}_{'lshift' if left else 'rshift'}"
    export_c(q, tmp_path, ExportConfig(example_main=False))
    assert "ethoedge_input_s8_in" in (tmp_path / "ethoedge_model.c").read_text()
    X = random_inputs(24, 12, seed=hidden)
    res = verify_c(tmp_path, X, reference_logits(q, X), target)
    assert res.ok, res.summary()
    assert res.stream_mismatches == 0
