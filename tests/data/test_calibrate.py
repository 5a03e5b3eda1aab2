"""Orientation calibration per animal: the rotation onto an axis, and windows turned so that
each animal's mean gravity lies along it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ethoedge.data import WindowConfig, make_windows
from ethoedge.data.calibrate import (
    GravitySums,
    axis_vector,
    calibrate_windows,
    rotate,
    rotation_onto,
)
from ethoedge.errors import ConfigError, DataError


def _turn(axis: int, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


@pytest.mark.parametrize(
    "a",
    [[0.3, -0.4, -0.85], [0.0, 0.0, -1.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [-0.2, 0.9, 0.1]],
)
def test_rotation_onto_is_a_proper_rotation_taking_a_onto_b(a):
    a = np.asarray(a, dtype=float)
    b = axis_vector("-z")
    R = rotation_onto(a, b)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b, atol=1e-12)


def test_rotation_onto_is_the_smallest_turn():
    # A tilt of 30 degrees about x is undone by the same turn back, nothing more.
    R = _turn(0, 30.0)
    a = R @ axis_vector("-z")
    np.testing.assert_allclose(rotation_onto(a, axis_vector("-z")), R.T, atol=1e-12)
    np.testing.assert_array_equal(rotation_onto(np.zeros(3), axis_vector("x")), np.eye(3))


def test_axis_names():
    np.testing.assert_array_equal(axis_vector("y"), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(axis_vector("-x"), [-1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="unknown axis"):
        axis_vector("w")


def test_a_tilted_collar_gives_the_same_windows_after_calibration(default_windows):
    w = default_windows
    cow = w.animal == w.animal[0]
    X = w.X[cow]
    tilted = rotate(X, _turn(0, 25.0))  # the same cow, the collar turned 25 degrees on the neck
    both = np.concatenate([X, tilted])
    out, rots = calibrate_windows(both, ["a"] * len(X) + ["b"] * len(X), "-z")
    # Both copies now have their mean gravity along -z, and are the same windows again up to
    # a turn about z (the heading, which calibration leaves open): the same z component,
    # the same horizontal magnitude, sample by sample.
    a, b = out[: len(X)], out[len(X) :]
    for part in (a, b):
        mean = part.astype(np.float64).mean(axis=(0, 2))
        np.testing.assert_allclose(mean / np.linalg.norm(mean), [0, 0, -1], atol=1e-6)
    assert set(rots) == {"a", "b"}
    assert np.abs(X[:, 2] - tilted[:, 2]).max() > 0.1  # the tilt moved gravity's share
    np.testing.assert_allclose(a[:, 2], b[:, 2], atol=1e-5)
    np.testing.assert_allclose(
        np.linalg.norm(a[:, :2], axis=1), np.linalg.norm(b[:, :2], axis=1), atol=1e-5
    )


def test_make_windows_calibrates_each_animal(default_dataset, default_windows):
    w = make_windows(default_dataset, WindowConfig(calibrate="gravity", gravity_axis="-z"))
    np.testing.assert_array_equal(w.start, default_windows.start)  # the same windows, turned
    assert not np.array_equal(w.X, default_windows.X)
    for a in np.unique(w.animal):
        mean = w.X[w.animal == a].astype(np.float64).mean(axis=(0, 2))
        np.testing.assert_allclose(mean / np.linalg.norm(mean), [0, 0, -1], atol=1e-6)
        # a rotation: every sample keeps its magnitude
        m = w.animal == a
        np.testing.assert_allclose(
            np.linalg.norm(w.X[m], axis=1), np.linalg.norm(default_windows.X[m], axis=1),
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip


def test_gravity_sums_are_exact_however_the_windows_are_split(default_windows):
    """The directions do not depend on how the windows were split into blocks (chunks,
    files, worker processes) or in which order the parts were merged: bit for bit, so that
    every executor and chunk size turns the windows alike."""
    w = default_windows
    whole = GravitySums.of_windows(w.X, w.animal)
    rng = np.random.default_rng(0)
    for _ in range(5):
        parts = []
        for a in np.unique(w.animal):
            X = w.X[w.animal == a]
            cuts = np.sort(rng.choice(np.arange(1, len(X)), size=6, replace=False))
            for block in np.split(X, cuts):
                part = GravitySums()
                part.add(a, block)
                parts.append(part)
        merged = GravitySums()
        for i in rng.permutation(len(parts)):
            merged.merge(parts[i])
        for a, d in whole.directions().items():
            assert np.array_equal(merged.directions()[a], d), a
    for a, d in whole.directions().items():  # the mean of the windows' means
        mean = w.X[w.animal == a].astype(np.float64).mean(axis=2).mean(axis=0)
        np.testing.assert_allclose(d, mean, rtol=0, atol=1e-9)


def test_gravity_sums_refuse_non_finite_windows():
    X = np.zeros((2, 3, 4), np.float32)
    X[1, 2, 3] = np.nan
    with pytest.raises(DataError, match=r"animal 'a'.*NaN"):
        GravitySums().add("a", X)


def test_an_animal_whose_acceleration_averages_zero_is_named_not_left_unturned(default_dataset):
    """Training windows of an animal whose samples are all 0 have no gravity direction: an
    error naming the data and the animal, where the identity would leave it uncalibrated."""
    a = default_dataset.recordings[0].animal
    recs = [
        replace(r, acc=np.zeros_like(r.acc)) if r.animal == a else r
        for r in default_dataset.recordings
    ]
    dead = replace(default_dataset, recordings=recs)
    with pytest.raises(DataError, match=rf"animal '{a}': the mean of its acceleration is 0") as e:
        make_windows(dead, WindowConfig(calibrate="gravity", gravity_axis="-z"))
    assert e.value.path == default_dataset.source
    X = np.zeros((3, 3, 5), np.float32)
    X[2] = 1.0
    with pytest.raises(DataError, match="animal 'a': the mean of its acceleration is 0"):
        calibrate_windows(X, ["a", "a", "b"], "-z")


def test_calibrate_setting_is_checked():
    with pytest.raises(ConfigError, match="calibrate"):
        WindowConfig(calibrate="magnetic")
    with pytest.raises(ConfigError, match="gravity_axis"):
        replace(WindowConfig(), gravity_axis="up")
