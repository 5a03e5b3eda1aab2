"""Orientation calibration per animal: each animal's windows turned so that its mean gravity
direction lies along one sensor axis.

A collar turned on the neck, or a logger box mounted at another angle, turns every sample of
that animal by one fixed rotation, so the same posture (lying, standing, head down) gives
another gravity direction in the sensor frame, and a model of single windows cannot tell the
mounting from one window. ``window.calibrate: gravity`` removes most of it: for every animal,
the mean of its windows' means (its average gravity direction, no labels used) is turned by
the smallest rotation onto ``window.gravity_axis``; every window of the animal is turned by
that rotation. Postures then differ from the animal's own average the same way on every
animal. The turn about the gravity axis itself (the heading of the box) is not fixed by
this; the students' heading augmentation (``augment.yaw_deg``) covers it.

The estimate comes from the windows given: in training, the animal's labelled windows; in
``classify``, every window of the animal in the data classified (all files). An animal
recorded or labelled in one behaviour only (e.g. only grazing) gets that behaviour's posture
as its average, and calibrating it then moves its postures away from the other animals'.
``docs/results.md`` measures both effects.

>>> R = rotation_onto(np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0]))
>>> np.round(R @ [0.0, 1.0, 0.0], 12).tolist()
[0.0, 0.0, -1.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ethoedge.errors import DataError

AXES = {"x": 0, "y": 1, "z": 2}


def parse_axis(name: str) -> tuple[int, int]:
    """``(index, sign)`` of an axis name: ``"-z"`` -> ``(2, -1)``."""
    key = name.lstrip("+-")
    if key not in AXES:
        raise ValueError(f"unknown axis {name!r} (x, y, z, -x, -y or -z)")
    return AXES[key], -1 if name.startswith("-") else 1


def axis_vector(name: str) -> np.ndarray:
    """The unit vector of ``"x"``, ``"-z"``, ... (float64)."""
    k, sign = parse_axis(name)
    v = np.zeros(3)
    v[k] = sign
    return v


def rotation_onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation ``R`` (3 x 3, float64) with ``R a`` along ``b`` (about the axis
    normal to both); for opposite directions, half a turn about an axis normal to ``a``.
    A zero ``a`` (no direction) gives the identity."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return np.eye(3)
    a, b = a / na, b / nb
    v, c = np.cross(a, b), float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        if c > 0:
            return np.eye(3)
        p = np.eye(3)[int(np.argmin(np.abs(a)))]
        k = np.cross(a, p)
        k /= np.linalg.norm(k)
        return 2.0 * np.outer(k, k) - np.eye(3)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


class GravitySums:
    """Per animal, the sum of its windows' means and their number, merged over blocks, files
    and processes. Exact whatever the order: each window's mean (float64) is counted in
    units of 2^-32 g, as an integer, so the same windows give the same directions bit for
    bit however they were split into blocks (chunks, files, workers)."""

    SCALE = 2.0**32  # units per g of the integer sums (2.3e-10 g: far below any sensor)

    def __init__(self) -> None:
        self.sums: dict[str, list[int]] = {}
        self.counts: dict[str, int] = {}

    @classmethod
    def of_windows(cls, X: np.ndarray, animals: Iterable[str]) -> GravitySums:
        """The sums of windows ``X (n, 3, L)`` of ``animals`` (one id per window)."""
        animals = np.asarray(list(animals)).astype(str)
        sums = cls()
        for a in dict.fromkeys(animals.tolist()):
            sums.add(a, X[animals == a])
        return sums

    def add(self, animal: str, X: np.ndarray) -> None:
        """Add windows ``X (n, 3, L)`` of ``animal``."""
        if len(X) == 0:
            return
        means = np.asarray(X, dtype=np.float64).mean(axis=2)
        if not np.isfinite(means).all():
            raise DataError(
                f"animal {animal!r}: windows with NaN or infinite samples have no mean"
                " direction to calibrate by"
            )
        units = np.rint(means * self.SCALE)
        if np.abs(units).max() * len(units) < 2.0**62:  # int64 sums cannot overflow
            total = [int(v) for v in units.astype(np.int64).sum(axis=0)]
        else:  # absurd values: Python integers
            total = [sum(int(v) for v in col) for col in units.T]
        self._put(str(animal), total, len(X))

    def merge(self, other: GravitySums) -> None:
        for a, s in other.sums.items():
            self._put(a, s, other.counts[a])

    def _put(self, animal: str, total: list[int], n: int) -> None:
        old = self.sums.get(animal, [0, 0, 0])
        self.sums[animal] = [x + y for x, y in zip(old, total, strict=True)]
        self.counts[animal] = self.counts.get(animal, 0) + n

    def directions(self) -> dict[str, np.ndarray]:
        """Each animal's mean gravity direction (the mean of its windows' means)."""
        return {
            # an integer over an integer is rounded once; the scale is a power of two
            a: np.array([v / self.counts[a] / self.SCALE for v in s])
            for a, s in self.sums.items()
        }

    def rotations(self, axis: str, path: object = None) -> dict[str, np.ndarray]:
        """Each animal's calibrating rotation onto ``axis``; a :class:`DataError` (naming
        ``path``, the data) for an animal whose mean is 0 (:func:`no_direction`)."""
        target = axis_vector(axis)
        directions = self.directions()
        for a, d in directions.items():
            if not np.any(d):
                raise no_direction(a, path)
        return {a: rotation_onto(d, target) for a, d in directions.items()}


def no_direction(animal: str, path: object = None) -> DataError:
    """The error for an animal whose windows' mean acceleration is 0: no gravity direction to
    turn its windows by (the identity would leave it uncalibrated without a word)."""
    return DataError(
        f"animal {animal!r}: the mean of its acceleration is 0 (are all its samples 0?), so"
        " the gravity direction the bundle turns its windows by (window.calibrate) is"
        " undefined",
        path=path,
    )


def rotate(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Windows ``X (n, 3, L)`` turned by ``R``: float32, computed in float64."""
    return np.einsum("ij,njl->nil", R, np.asarray(X, dtype=np.float64)).astype(np.float32)


def calibrate_windows(
    X: np.ndarray, animals: Iterable[str], axis: str, path: object = None
) -> tuple[np.ndarray, Mapping[str, np.ndarray]]:
    """Every animal's windows of ``X (n, 3, L)`` turned onto ``axis`` (see the module
    docstring); returns the turned windows (float32) and the rotation of each animal.
    ``path``: the data, named by the error for an animal without a direction."""
    animals = np.asarray(list(animals)).astype(str)
    rots = GravitySums.of_windows(X, animals).rotations(axis, path)
    out = np.empty(X.shape, dtype=np.float32)
    for a, R in rots.items():
        m = animals == a
        out[m] = rotate(X[m], R)
    return out, rots
