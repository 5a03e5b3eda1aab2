"""Measured cost on the emulated Cortex-M4: flash, RAM, stack, instructions per MAC."""

from __future__ import annotations

import pytest
import torch

from ethoedge.export import ExportConfig, export_c
from ethoedge.export.cost import (
    McuAssumptions,
    measure_cost,
    measure_dir,
    measure_firmware,
    student_macs,
)
from ethoedge.export.emit_float import export_float_c
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig

from .helpers import make_qmodel, requires_arm

pytestmark = [requires_arm, pytest.mark.qemu]


def test_macs_formula_matches_the_student():
    s = GRUStudent(4, StudentConfig(hidden=32))
    assert student_macs(32, 32, 4, 50) == s.macs(50)


def test_estimates_follow_the_stated_assumptions():
    mcu = McuAssumptions(clock_hz=64e6, cpi=1.0, run_current_ua_per_mhz=50.0, supply_v=2.0)
    assert mcu.time_ms(64_000) == pytest.approx(1.0)
    assert mcu.energy_uj(64_000) == pytest.approx(1e-3 * 3.2e-3 * 2.0 * 1e6)


@pytest.mark.parametrize("bits", [8, 16])
def test_integer_model_cost(bits):
    q = make_qmodel(bits, hidden=32, n_classes=4, n_samples=20)
    c = measure_cost(q)
    assert c["word_bits"] == bits and c["macs"] == student_macs(32, 32, 4, 20)
    assert c["flash_bytes"] < (16 if bits == 8 else 24) * 1024
    assert c["ram_bytes"] == c["static_ram_bytes"] + c["stack_bytes"] and c["ram_bytes"] < 4096
    assert 64 < c["stack_bytes"] < 1024  # state + a few H-sized int16 buffers
    assert c["instructions"] > c["macs"]  # at least one instruction per MAC...
    assert c["instructions_per_mac"] < 3.0  # ...and under the target of 3 (DSP path)
    assert c["est_time_ms"] > 0 and c["est_energy_uj"] > 0


def test_float_variant_cost(tmp_path):
    torch.manual_seed(0)
    s = GRUStudent(4, StudentConfig(hidden=8))
    export_float_c(s, tmp_path, 10)
    c = measure_dir(tmp_path, prefix="ethoedge_float", macs=s.macs(10), is_float=True)
    assert c["flash_bytes"] > 0 and c["instructions"] > s.macs(10)


def test_both_cores_and_the_kernels_kept():
    """The M3 runs the plain C (more instructions than the M4's SMLAD path); flash counts the
    model's object and the kernels the linker keeps (a W=8 model drops the W=16 kernels)."""
    q = make_qmodel(8, hidden=13, mlp_hidden=7, n_classes=4, n_samples=10)
    m4, m3 = measure_cost(q), measure_cost(q, target="cortex-m3")
    assert (m4["target"], m3["target"]) == ("cortex-m4", "cortex-m3")
    assert m3["instructions"] > m4["instructions"] > m4["macs"]
    for c in (m4, m3):
        assert c["flash_bytes"] == c["flash_model_bytes"] + c["flash_kernels_bytes"]
        assert 1028 < c["flash_kernels_bytes"] < 8 * 1024  # the two tables and some code


def test_two_models_share_one_kernel_library(tmp_path):
    qs = {"a8": make_qmodel(8, hidden=13, n_samples=10), "b16": make_qmodel(16, n_samples=10)}
    for prefix, q in qs.items():
        export_c(q, tmp_path, ExportConfig(prefix=prefix, example_main=False))
    fw = measure_firmware(tmp_path, list(qs))
    alone = {p: measure_dir(tmp_path, prefix=p, macs=1) for p in qs}
    kernels = fw["flash_kernels_bytes"]
    assert fw["flash_bytes"] == kernels + sum(m["flash_bytes"] for m in fw["models"].values())
    for p in qs:
        assert fw["models"][p]["flash_bytes"] == alone[p]["flash_model_bytes"]
        # the same kernels run; only the call site's argument setup may differ
        assert abs(fw["models"][p]["instructions"] - alone[p]["instructions"]) < 16
        assert kernels >= alone[p]["flash_kernels_bytes"]  # the union of what both use...
    # ...counted once: less than one copy per model
    assert kernels < sum(a["flash_kernels_bytes"] for a in alone.values())


def test_a_calibrated_model_counts_its_orientation():
    """A model trained on calibrated windows: its cost includes the orientation code in the
    kernels' flash and the turn of its window's samples in the instructions (the rotation
    itself is computed before the markers: once per animal)."""
    q = make_qmodel(8, hidden=8, n_classes=4, n_samples=20)
    plain = measure_cost(q)
    turned = measure_cost(q, gravity_axis="-z")
    extra_flash = turned["flash_kernels_bytes"] - plain["flash_kernels_bytes"]
    assert turned["flash_model_bytes"] == plain["flash_model_bytes"]
    assert 0 < extra_flash < 1280
    per_sample = (turned["instructions"] - plain["instructions"]) / 20
    assert 10 < per_sample < 120  # 9 multiply-adds and 3 saturations per sample, and a call
