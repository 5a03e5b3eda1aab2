"""The static/dynamic input stage through dynamic fixed point and the C: the integer
reference, the integer PyTorch graph and the generated C (window and streaming APIs, host
with sanitizers, emulated Cortex-M4 and M3) agree bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ethoedge.export import ExportConfig, export_c, verify_c
from ethoedge.export.verify import run_c
from ethoedge.quantize.fixedpoint import static_dynamic
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import reference_logits
from ethoedge.quantize.rewrite import SimQuantStudent

from .helpers import make_qmodel, random_inputs, requires_arm, requires_gcc


def test_integer_split_by_hand():
    x = np.array([[100], [100], [-100], [-100], [0]])
    out = static_dynamic(x, 2)  # s += round_shift(x - s, 2), half up
    # rs(v, 2) = (v + 2) >> 2: 100 + rs(-200) = 50; 50 + rs(-150) = 13; 13 + rs(-13) = 10
    s = [100, 100, 50, 13, 10]
    assert out[:, 1].tolist() == s
    assert out[:, 0].tolist() == [x[t, 0] - s[t] for t in range(5)]
    # the dynamic part saturates to int16, the static part stays in range
    big = static_dynamic(np.array([[32767], [-32768]]), 1)
    assert big[:, 0].tolist() == [0, -32768] and big[:, 1].tolist() == [32767, 0]


@pytest.mark.parametrize("bits", [8, 16])
def test_reference_equals_integer_graph(bits):
    dyn = make_qmodel(bits, hidden=13, n_classes=4, seed=1, input_stage="dynamic")
    assert dyn.n_inputs == 3 and dyn.weights["inp.weight"].values.shape == (13, 3)
    Xd = random_inputs(20, 12, seed=3)
    np.testing.assert_array_equal(
        reference_logits(dyn, Xd), SimQuantStudent(dyn)(torch.from_numpy(Xd.astype(np.int64)))
    )
    q = make_qmodel(bits, hidden=13, n_classes=4, seed=1, input_stage="static_dynamic")
    assert q.n_inputs == 6 and q.weights["inp.weight"].values.shape == (13, 6)
    X = random_inputs(40, 12, seed=2)
    ref = reference_logits(q, X)
    sim = SimQuantStudent(q)(torch.from_numpy(X.astype(np.int64))).numpy()
    np.testing.assert_array_equal(ref, sim)
    raw = make_qmodel(bits, hidden=13, n_classes=4, seed=1)
    assert not np.array_equal(reference_logits(raw, X), ref)  # the stage changes the answer
    back = QuantizedStudent.from_json(q.to_json())
    assert (back.input_stage, back.static_shift) == ("static_dynamic", 3)
    assert "input_stage" not in raw.to_json()  # raw models' files are unchanged


@requires_gcc
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("stage", ["static_dynamic", "dynamic"])
@pytest.mark.parametrize("hidden, shift", [(8, 3), (13, 1), (5, 6)])
def test_host_c_bit_exact_window_and_stream(tmp_path: Path, bits, stage, hidden, shift):
    q = make_qmodel(bits, hidden=hidden, n_classes=3, seed=hidden, input_stage=stage,
                    static_shift=shift)  # fmt: skip
    export_c(q, tmp_path, ExportConfig(example_main=False))
    assert (
        f".input_stage = {1 if stage == 'dynamic' else 2},"
        in (tmp_path / "ethoedge_model.c").read_text()
    )
    X = random_inputs(64, 12, seed=hidden)
    res = verify_c(tmp_path, X, reference_logits(q, X))
    assert res.ok, res.summary()
    assert res.stream_mismatches == 0  # streaming: the low-pass restarts with every window


@requires_gcc
@pytest.mark.parametrize("bits", [8, 16])
def test_sanitizers_on_extreme_inputs(tmp_path: Path, bits):
    q = make_qmodel(bits, hidden=13, n_classes=4, seed=3, input_stage="static_dynamic")
    export_c(q, tmp_path, ExportConfig(example_main=False))
    X = random_inputs(40, 12, seed=5)
    X[4] = -32768
    X[6, :, ::3] = 32767
    scores, same = run_c(tmp_path, X, sanitize=True)
    assert same.all()
    np.testing.assert_array_equal(scores, reference_logits(q, X))


@requires_arm
@pytest.mark.qemu
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("stage", ["static_dynamic", "dynamic"])
def test_emulated_mcu_bit_exact(tmp_path: Path, target, bits, stage):
    q = make_qmodel(bits, hidden=13, n_classes=4, seed=7, input_stage=stage)
    export_c(q, tmp_path, ExportConfig(example_main=False))
    X = random_inputs(24, 12, seed=7)
    res = verify_c(tmp_path, X, reference_logits(q, X), target)
    assert res.ok, res.summary()
    assert res.stream_mismatches == 0
