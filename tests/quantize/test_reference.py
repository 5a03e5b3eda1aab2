"""Integer reference vs simulated-quantized graph (bit-exact), vs float, and model checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ethoedge.errors import ConfigError, DataError
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.qmodel import ACTIVATION_NAMES, WEIGHT_NAMES, QuantizedStudent
from ethoedge.quantize.reference import (
    check_exact,
    predict,
    quantize_input,
    reference_logits,
    shifts,
)
from ethoedge.quantize.rewrite import SimQuantStudent

from .helpers import random_windows


@pytest.fixture(scope="module")
def qmodels(cattle, trained):
    student, norm = trained
    cfg = QuantConfig(calib_windows=512)
    return {
        w: quantize_student(student, norm, cattle.X, w, cfg, cattle.class_names) for w in (8, 16)
    }


@pytest.fixture(scope="module")
def x_int(cattle):
    return quantize_input(cattle.X)


@pytest.fixture(scope="module")
def ref_logits(qmodels, x_int):
    """Integer-reference logits of every bundled window, per word length."""
    return {w: reference_logits(q, x_int) for w, q in qmodels.items()}


@pytest.mark.parametrize("w", [8, 16])
def test_reference_equals_simulated_graph_on_every_bundled_window(qmodels, ref_logits, x_int, w):
    q = qmodels[w]
    ref = ref_logits[w]
    sim = SimQuantStudent(q)(torch.from_numpy(x_int)).numpy()
    assert ref.dtype == np.int64 and ref.shape == (len(x_int), q.n_classes)
    assert np.array_equal(ref, sim)
    assert ref.min() >= -(2 ** (w - 1)) and ref.max() <= 2 ** (w - 1) - 1


@pytest.mark.parametrize("w", [4, 6, 12])
def test_reference_equals_simulated_graph_other_widths(trained, w):
    student, norm = trained
    X = random_windows(48, 16)
    q = quantize_student(student, norm, X, w, QuantConfig(rule="percentile", percentile=99.0))
    xi = quantize_input(X)
    assert np.array_equal(reference_logits(q, xi), SimQuantStudent(q)(torch.from_numpy(xi)).numpy())


def test_quantized_w16_matches_float(qmodels, ref_logits, float_logits):
    q = qmodels[16]
    logits = ref_logits[16] * 2.0 ** -q.frac("logits")
    agree = float(np.mean(logits.argmax(1) == float_logits.argmax(1)))
    assert agree >= 0.99
    assert np.max(np.abs(logits - float_logits)) < 0.05


def test_quantized_w8_mostly_agrees_with_float(ref_logits, float_logits):
    logits = ref_logits[8]
    assert float(np.mean(logits.argmax(1) == float_logits.argmax(1))) >= 0.9


def test_predict_takes_raw_g(qmodels, cattle):
    q = qmodels[8]
    X = cattle.X[:40]
    assert np.array_equal(predict(q, X), reference_logits(q, quantize_input(X)).argmax(1))


def test_quantize_input_saturates_and_rejects_nan():
    x = quantize_input(np.array([[[16.0, -16.0, 17.0, -100.0, 0.00024, 0.00025]]]), 11)
    assert x.dtype == np.int16
    assert x.ravel().tolist() == [32767, -32768, 32767, -32768, 0, 1]
    with pytest.raises(DataError, match="NaN"):
        quantize_input(np.array([[[np.nan]]]))


def test_out_of_range_input_saturates_in_the_model(qmodels):
    """A +-40 g spike (beyond the int16 input range) gives the same logits as +-16 g."""
    q = qmodels[8]
    X = random_windows(4, 10)
    clipped = np.clip(X, -16.0, 16.0 - 2.0**-11)
    assert np.array_equal(
        reference_logits(q, quantize_input(X)), reference_logits(q, quantize_input(clipped))
    )


def test_json_round_trip(qmodels, x_int, tmp_path):
    q = qmodels[8]
    path = q.save(tmp_path / "w8.json")
    back = QuantizedStudent.load(path)
    assert back.checksum() == q.checksum()
    assert set(back.weights) == set(WEIGHT_NAMES) and set(back.act_frac) == set(ACTIVATION_NAMES)
    for name in WEIGHT_NAMES:
        assert np.array_equal(back.weights[name].values, q.weights[name].values)
        assert back.frac(name) == q.frac(name)
    assert np.array_equal(reference_logits(back, x_int[:50]), reference_logits(q, x_int[:50]))
    assert json.loads(path.read_text())["meta"]["rule"] == "max"


def test_formats_follow_the_rule(qmodels, trained):
    """Weights: f = W-1-ceil(log2 max|w|) of the folded weights; values inside W bits."""
    q = qmodels[8]
    assert q.n_bytes() == sum(t.values.size for t in q.weights.values())
    assert qmodels[16].n_bytes() == 2 * q.n_bytes()
    for t in q.weights.values():
        assert t.word_bits == 8 and t.values.min() >= -128 and t.values.max() <= 127
    w = trained[0].gru.weight_hh_l0.detach().numpy()
    assert q.frac("gru.weight_hh") == 7 - int(np.ceil(np.log2(np.abs(w).max())))
    assert q.frac("h") >= 7  # |h| < 1


def test_normalisation_is_folded(qmodels, trained):
    student, norm = trained
    q = qmodels[16]
    w = q.weights["inp.weight"].to_float()
    expected = student.inp.weight.detach().double().numpy() / np.array(norm.std)
    assert np.allclose(w, expected, atol=2.0 ** -q.frac("inp.weight"))


def test_check_exact_rejects_unsupported_models(qmodels):
    q = qmodels[8]
    assert all(-30 <= s <= 62 for s in shifts(q).values())
    wide = QuantizedStudent(**{**q.__dict__, "word_bits": 24})
    with pytest.raises(ConfigError, match="word length 24"):
        check_exact(wide)
    bad = QuantizedStudent(**{**q.__dict__, "act_frac": {**q.act_frac, "logits": 60}})
    with pytest.raises(ConfigError, match="acc_to_logits"):
        reference_logits(bad, np.zeros((1, 3, 4), dtype=np.int16))
    with pytest.raises(DataError, match="integer"):
        reference_logits(q, np.zeros((1, 3, 4)))
    with pytest.raises(ConfigError, match=r"4\.\.16"):
        QuantConfig(word_bits=(8, 32))
