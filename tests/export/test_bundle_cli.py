"""`ethoedge export-c` / `verify-c` on a bundle over the bundled default cattle data, and the
emulated Cortex-M4 and Cortex-M3 against the host on real windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ethoedge.cli import main
from ethoedge.export.verify import run_c, verify_c
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import quantize_input, reference_logits_batched

from .helpers import requires_arm, requires_gcc

pytestmark = requires_gcc


@pytest.fixture(scope="module")
def exported(tiny_bundle, tmp_path_factory):
    bundle_dir = tiny_bundle[0]
    out = {}
    for bits in (8, 16):
        d = tmp_path_factory.mktemp(f"c{bits}")
        assert main(["export-c", str(bundle_dir), "--bits", str(bits), "--out", str(d)]) == 0
        out[bits] = d
    return out


@pytest.mark.parametrize("bits", [8, 16])
def test_export_writes_module_and_metadata(exported, tiny_bundle, bits):
    d = exported[bits]
    names = {p.name for p in d.iterdir()}
    assert names == {"ethoedge_model.h", "ethoedge_model.c", "main.c", "export.json",
                     "quantized.json", "ethoedge_kernels.h", "ethoedge_kernels.c"}  # fmt: skip
    meta = json.loads((d / "export.json").read_text())
    q = QuantizedStudent.load(d / "quantized.json")
    assert meta["word_bits"] == bits == q.word_bits
    assert meta["model_checksum"] == q.checksum()
    assert meta["n_samples"] == tiny_bundle[1].n_samples
    assert Path(meta["bundle"]) == tiny_bundle[0].resolve()


def test_verify_c_cli_every_bundled_window(exported, tiny_bundle, capsys):
    """`ethoedge verify-c DIR` (W=8): host C == integer reference, window and streaming API,
    on every window of the bundled data, windowed from the CSV as the bundle was trained."""
    n, L = len(tiny_bundle[1]), tiny_bundle[1].n_samples
    assert main(["verify-c", str(exported[8])]) == 0
    out = capsys.readouterr().out
    assert f"host (window): {n}/{n} windows identical" in out
    k = 2 * n - 1  # the windows joined into one stream, a window every L/2 samples
    assert f"host (streaming, hop {L // 2}): {k}/{k} windows identical" in out


def test_w16_every_bundled_window(exported, tiny_bundle):
    """The same at W=16 through the Python API (the windows are already in memory)."""
    q = QuantizedStudent.load(exported[16] / "quantized.json")
    X = quantize_input(tiny_bundle[1].X, q.in_frac)
    res = verify_c(exported[16], X, reference_logits_batched(q, X))
    assert res.ok and res.n_windows == len(X), res.summary()


def test_missing_quantized_model_says_how_to_make_it(tiny_bundle, tmp_path, capsys):
    bundle_dir = tmp_path / "unquantized"
    bundle_dir.mkdir()
    for name in ("bundle.json", "student.npz"):
        (bundle_dir / name).write_bytes((tiny_bundle[0] / name).read_bytes())
    code = main(["export-c", str(bundle_dir), "--bits", "16", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "ethoedge quantize" in err and "--bits 16" in err
    assert not (tmp_path / "x").exists()


def test_unsupported_width_and_bad_prefix_fail_cleanly(tiny_bundle, tmp_path, capsys):
    b = str(tiny_bundle[0])
    assert main(["export-c", b, "--bits", "12", "--out", str(tmp_path / "a")]) == 2
    assert main(["export-c", b, "--out", str(tmp_path / "b"), "--prefix", "9x"]) == 2
    err = capsys.readouterr().err
    assert "supported: 8, 16" in err and "not a C identifier" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_verify_c_cli_reports_a_difference(exported, tmp_path, capsys):
    """Tamper with one bias in the C: verify-c prints the first difference and exits 1."""
    import shutil

    d = tmp_path / "tampered"
    shutil.copytree(exported[8], d)
    src = (d / "ethoedge_model.c").read_text()
    head, tail = src.split("ethoedge_model_out_bias_acc[", 1)
    body, rest = tail.split("};", 1)
    nums = body.split("{", 1)[1].split(",")
    nums[0] = str(int(nums[0]) + 100000)
    tampered = head + "ethoedge_model_out_bias_acc[" + body.split("{", 1)[0] + "{"
    (d / "ethoedge_model.c").write_text(tampered + ",".join(nums) + "};" + rest)
    code = main(["verify-c", str(d), "--max-windows", "50"])
    out = capsys.readouterr().out
    assert code == 1
    assert "host (window): " in out and "/50 windows identical" in out
    assert "first differing window" in out and "reference scores" in out


@requires_arm
@pytest.mark.qemu
@pytest.mark.parametrize("bits", [8, 16])
def test_cortex_m4_and_m3_match_host_on_500_windows(exported, tiny_bundle, bits):
    """The same C on emulated Cortex-M4 (DSP path) and Cortex-M3 (plain C, no FPU/DSP)."""
    q = QuantizedStudent.load(exported[bits] / "quantized.json")
    X = quantize_input(tiny_bundle[1].X[:500], q.in_frac)
    host, host_same = run_c(exported[bits], X)
    assert host_same.all()
    for target in ("cortex-m4", "cortex-m3"):
        scores, same = run_c(exported[bits], X, target=target)
        assert same.all(), target
        np.testing.assert_array_equal(scores, host, err_msg=target)


def test_export_verify_cost_for_the_pipeline(tiny_bundle, tmp_path):
    """The pipeline's one call: export, verify (host; QEMU where installed), cost."""
    from ethoedge.export.deploy import export_verify_cost
    from ethoedge.export.toolchain import have_arm

    bundle_dir, windows = tiny_bundle
    r = export_verify_cost(bundle_dir, 8, tmp_path / "c", windows.X[:40], qemu_windows=20)
    assert r["verified"] and r["verify"]["host"] == {"windows": 40, "identical": 40,
                                                     "first_diff": None}  # fmt: skip
    hop = windows.n_samples // 2  # the streaming API with overlapping windows, one stream
    assert r["verify"][f"host streaming, hop {hop}"]["identical"] == 2 * 40 - 1
    if have_arm():
        assert r["verify"]["cortex-m3"]["identical"] == 20
        for core in ("cortex-m4", "cortex-m3"):
            assert r["verify"][f"{core} streaming, hop {hop}"]["identical"] == 2 * 10 - 1
        assert r["flash_bytes"] > 0 and r["instructions"] > r["macs"]
        assert r["m3_instructions"] > r["instructions"] and r["m3_flash_bytes"] > 0
