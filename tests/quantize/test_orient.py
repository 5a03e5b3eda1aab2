"""The orientation calibration in integers (:mod:`ethoedge.quantize.orient`) against the float
calibration training uses (:mod:`ethoedge.data.calibrate`). The C kernels' equality with it is
tested in ``tests/export/test_kernels.py``."""

from __future__ import annotations

import numpy as np
import pytest

from ethoedge.data.calibrate import axis_vector, rotate, rotation_onto
from ethoedge.quantize.orient import ORIENT_FRAC, mean_q, orient_q, orientation_q
from ethoedge.quantize.reference import quantize_input

AXES = ["x", "y", "z", "-x", "-y", "-z"]
ONE = 1 << ORIENT_FRAC


def _means(rng: np.random.Generator, n: int, g: float) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return np.round(v / np.linalg.norm(v, axis=1, keepdims=True) * g * 2048).astype(int)


@pytest.mark.parametrize("axis", AXES)
def test_integer_rotation_is_the_float_one_rounded(axis: str):
    rng = np.random.default_rng(0)
    b = axis_vector(axis)
    for m in _means(rng, 300, 1.0):
        R = orientation_q(m, axis).astype(np.float64) / ONE
        np.testing.assert_allclose(R, rotation_onto(m.astype(float), b), atol=8 / ONE)
        # a rotation to the same precision, taking the mean onto the axis
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=16 / ONE)
        np.testing.assert_allclose(R @ m / np.linalg.norm(m), b, atol=16 / ONE)


@pytest.mark.parametrize("axis", AXES)
def test_along_and_opposite_the_axis(axis: str):
    b = axis_vector(axis)
    along = (b * 2048).astype(int)
    np.testing.assert_array_equal(orientation_q(along, axis), np.eye(3, dtype=int) * ONE)
    # opposite: the float calibration's half turn, exactly
    half = orientation_q(-along, axis).astype(np.float64) / ONE
    np.testing.assert_array_equal(half, rotation_onto(-b, b))
    np.testing.assert_array_equal(orientation_q([0, 0, 0], axis), np.eye(3, dtype=int) * ONE)


def test_turned_windows_match_the_float_calibration_within_one_unit():
    """On windows of a tilted collar: quantize, then turn in integers (the firmware) against
    turn in float, then quantize (training): at most one input unit apart."""
    rng = np.random.default_rng(1)
    tilt = rotation_onto(np.array([0.3, -0.4, -0.85]), np.array([0.0, 0.0, -1.0])).T
    X = np.einsum("ij,njl->nil", tilt, np.array([0.0, 0.0, -1.0])[None, :, None]
                  + 0.2 * rng.normal(size=(20, 3, 50)))  # fmt: skip
    g = X.mean(axis=(0, 2))
    R_float = rotation_onto(g, axis_vector("-z"))
    want = quantize_input(rotate(X, R_float), 11).astype(int)
    got = orient_q(quantize_input(X, 11), orientation_q(mean_q(g, 11), "-z")).astype(int)
    assert np.abs(got - want).max() <= 1
    assert (got == want).mean() > 0.5


def test_orient_saturates_and_takes_samples_or_windows():
    R = orientation_q([0, 2048, 0], "-z")  # y onto -z: (x, y, z) -> (x, z, -y)
    samples = np.array([[1, 2, 3], [-32768, -32768, -32768]], dtype=np.int16)
    np.testing.assert_array_equal(orient_q(samples, R), [[1, 3, -2], [-32768, -32768, 32767]])
    windows = np.stack([samples.T, samples.T[:, ::-1]])  # (2, 3, 2)
    got = orient_q(windows, R)
    for n in range(2):
        np.testing.assert_array_equal(got[n].T, orient_q(windows[n].T, R))


def test_bad_means_and_axes():
    with pytest.raises(ValueError, match="int16"):
        orientation_q([0, 40000, 0], "-z")
    with pytest.raises(ValueError, match="3 int16"):
        orientation_q([0, 1], "-z")
    with pytest.raises(ValueError, match="unknown axis"):
        orientation_q([0, 0, 1], "w")
