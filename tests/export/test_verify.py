"""The C against the integer reference: random models and inputs, sanitizers, extremes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ethoedge.export import ExportConfig, export_c, verify_c
from ethoedge.export.verify import run_c
from ethoedge.quantize.reference import reference_logits

from .helpers import make_qmodel, random_inputs, requires_gcc

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
