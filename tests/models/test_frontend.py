"""The static/dynamic input stage: the causal first-order low-pass and its use in the models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ethoedge.config import RunConfig
from ethoedge.errors import ConfigError
from ethoedge.models import GRUStudent, ResNetTeacher, StudentConfig, TeacherConfig
from ethoedge.models.frontend import StaticDynamicSplit, static_alpha


def _recursion(x: np.ndarray, a: float) -> np.ndarray:
    s = np.empty_like(x)
    s[..., 0] = x[..., 0]
    for t in range(1, x.shape[-1]):
        s[..., t] = a * s[..., t - 1] + (1 - a) * x[..., t]
    return s


def test_split_is_the_causal_recursion():
    x = np.random.default_rng(0).normal(size=(5, 3, 40))
    assert static_alpha(3) == 0.875
    out = StaticDynamicSplit(0.8)(torch.from_numpy(x)).numpy()
    s = _recursion(x, 0.8)
    np.testing.assert_allclose(out[:, 3:], s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[:, :3], x - s, rtol=0, atol=1e-12)
    # Causal: changing a later sample leaves every earlier output alone.
    y = x.copy()
    y[..., 30] += 5.0
    out2 = StaticDynamicSplit(0.8)(torch.from_numpy(y)).numpy()
    np.testing.assert_array_equal(out2[..., :30], out[..., :30])


def test_still_window_is_all_static_and_tilt_moves_only_the_static_part():
    g = np.zeros((1, 3, 30))
    g[:, 2] = 1.0
    out = StaticDynamicSplit(0.9)(torch.from_numpy(g)).numpy()
    assert np.abs(out[:, :3]).max() < 1e-12  # no dynamic part
    np.testing.assert_allclose(out[:, 3:], g, atol=1e-12)


def test_dynamic_stage_is_the_dynamic_half():
    from ethoedge.models.frontend import DynamicPart

    x = torch.randn(3, 3, 20, dtype=torch.float64)
    torch.testing.assert_close(DynamicPart(0.875)(x), StaticDynamicSplit(0.875)(x)[:, :3])
    m = GRUStudent(4, StudentConfig(hidden=8, input="dynamic"))
    assert m.inp.in_features == 3 and m(torch.randn(2, 3, 50)).shape == (2, 4)


@pytest.mark.parametrize("model", ["student", "teacher"])
def test_models_take_raw_windows_and_see_twice_the_channels(model):
    torch.manual_seed(0)
    if model == "student":
        m = GRUStudent(4, StudentConfig(hidden=8, input="static_dynamic"))
        assert m.inp.in_features == 6
    else:
        m = ResNetTeacher(4, TeacherConfig(filters=(4, 4, 4), input="static_dynamic"))
        assert m.blocks[0].body[0].in_channels == 6
    assert m(torch.randn(2, 3, 50)).shape == (2, 4)


def test_folded_normaliser_commutes_with_the_split():
    """Folding the normaliser into the input layer of a static/dynamic student gives the same
    outputs on raw windows as the student on normalised windows."""

    torch.manual_seed(0)
    for stage in ("static_dynamic", "dynamic"):
        _check_folding(GRUStudent(4, StudentConfig(hidden=8, input=stage)).eval())


def _check_folding(m):
    from ethoedge.data import Normalizer
    from ethoedge.quantize.calibrate import fold_normalizer, unfold_normalizer

    X = np.random.default_rng(1).normal(0.3, 0.8, size=(6, 3, 30)).astype(np.float32)
    X[:, 2] += 1.0
    norm = Normalizer((0.3, -0.2, 1.1), (0.7, 0.9, 0.5))
    folded = fold_normalizer(m, norm)
    with torch.no_grad():
        a = m(torch.from_numpy(norm.apply(X)))
        b = folded(torch.from_numpy(X))
        c = unfold_normalizer(folded, norm)(torch.from_numpy(norm.apply(X)))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-4)


def test_shift_is_validated_and_the_stage_is_exportable():
    RunConfig(student=StudentConfig(input="static_dynamic"))  # quantized and exported
    with pytest.raises(ConfigError, match="static_shift"):
        StudentConfig(input="static_dynamic", static_shift=0)
