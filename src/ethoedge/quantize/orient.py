"""The orientation calibration in integers: what the firmware computes for a bundle trained
with ``window.calibrate: gravity``, the same integers as the kernel library's
``ethoedge_orientation`` and ``ethoedge_orient``.

Training turns each animal's windows by the smallest rotation that takes the animal's mean
gravity direction onto ``window.gravity_axis`` (:mod:`ethoedge.data.calibrate`, float64). On
the collar the same is done on the model's int16 input samples (g at ``in_frac`` fraction
bits): the rotation from the animal's mean acceleration in those units, as a 3 x 3 matrix at
:data:`ORIENT_FRAC` fraction bits, then every sample turned by it.

The rotation, for a mean ``m`` (int16 x, y, z) and the axis ``b = s e_k``: with
``n = round(sqrt(|m|^2))`` (halves up), ``p = s m_k`` and ``w = m x b``,
``R = (p I + [w]x) / n + w w^T / (n (n + p))`` (``R = c I + [v]x + v v^T / (1 + c)`` for the
unit vectors), each entry rounded once to nearest (halves away from zero) at ``ORIENT_FRAC``
bits and clamped to +-1. Where ``p < 0`` (the mean points away from the axis) the last term
is computed as ``w w^T (n - p) / (n |w|^2)`` (the same value, ``n + p = |w|^2 / (n - p)``,
well conditioned there). A mean exactly opposite the axis gets half a turn about ``e_r``
(``r = 2``, or 1 for ``k = 2``), as the float calibration does; a zero mean the identity.
Every intermediate fits int64 (``|m_i| <= 2^15``).

A sample is turned as ``sat16(round_shift(R x, ORIENT_FRAC))`` (int32 sums: ``|R| <= 2^14``).
The integer rotation differs from the float one (:func:`ethoedge.data.calibrate.rotation_onto`
of the same mean) by the rounding of ``n`` and of its entries: measured on random means of
about 1 g (2^11 at 11 fraction bits), by at most 8 units of 2^-14 in any entry (more for
smaller means: 21 at 0.3 to 0.5 g), under one input unit on a 1 g sample. With the rounding
of the samples before the turn, a turned sample is within two units of the one turned in float
and then quantized.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ethoedge.data.calibrate import parse_axis
from ethoedge.quantize.fixedpoint import round_shift, saturate

ORIENT_FRAC = 14  # fraction bits of the rotation's entries (ETHOEDGE_ORIENT_FRAC)
_ONE = 1 << ORIENT_FRAC


def _isqrt_round(v: int) -> int:
    r = math.isqrt(v)
    return r + 1 if v - r * r > r else r


def _div_round(num: int, den: int) -> int:
    """``num / den`` to nearest, halves away from zero (``den > 0``; C's truncating division)."""
    return (num + den // 2) // den if num >= 0 else -((-num + den // 2) // den)


def orientation_q(mean_q: Sequence[int], axis: str) -> np.ndarray:
    """The rotation (3 x 3 int16 at :data:`ORIENT_FRAC` fraction bits) that turns an animal
    whose mean input sample is ``mean_q`` (int16 x, y, z) onto ``axis`` (``"-z"``, ...).

    >>> orientation_q([0, 0, -2048], "-z").tolist()
    [[16384, 0, 0], [0, 16384, 0], [0, 0, 16384]]
    >>> orientation_q([0, 2048, 0], "-z").tolist()
    [[16384, 0, 0], [0, 0, 16384], [0, -16384, 0]]
    """
    m = [int(v) for v in mean_q]
    if len(m) != 3 or any(not -(1 << 15) <= v < (1 << 15) for v in m):
        raise ValueError(f"the mean must be 3 int16 values, got {mean_q!r}")
    k, s = parse_axis(axis)
    k1, k2 = (k + 1) % 3, (k + 2) % 3
    rot = np.eye(3, dtype=np.int64) * _ONE
    s2 = m[0] * m[0] + m[1] * m[1] + m[2] * m[2]
    if s2 == 0:
        return rot.astype(np.int16)
    n = _isqrt_round(s2)
    p = s * m[k]
    w = [0, 0, 0]
    w[k1], w[k2] = s * m[k2], -s * m[k1]
    ww = w[k1] * w[k1] + w[k2] * w[k2]
    if p < 0 and ww == 0:  # opposite the axis: half a turn
        r = 1 if k == 2 else 2
        return np.array(
            [[_ONE if i == j == r else -_ONE if i == j else 0 for j in range(3)]
             for i in range(3)], dtype=np.int16,
        )  # fmt: skip
    cross = [[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]]
    for i in range(3):
        for j in range(3):
            x = p if i == j else cross[i][j]
            if p >= 0:
                v = _div_round((x * (n + p) + w[i] * w[j]) * _ONE, n * (n + p))
            else:
                v = _div_round((x * ww + w[i] * w[j] * (n - p)) * _ONE, n * ww)
            rot[i, j] = min(max(v, -_ONE), _ONE)
    return rot.astype(np.int16)


def orient_q(X_q: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Input windows ``X_q (n, 3, L)``, or samples ``(n, 3)``, turned by ``rot``
    (:func:`orientation_q`): int16, sample by sample as ``ethoedge_orient``."""
    X = np.asarray(X_q, dtype=np.int64)
    R = np.asarray(rot, dtype=np.int64)
    acc = np.einsum("ij,nj...->ni...", R, X)  # exact: |acc| <= 3 * 2^29
    return saturate(round_shift(acc, ORIENT_FRAC), 16).astype(np.int16)


def mean_q(mean_g: Sequence[float], in_frac: int) -> np.ndarray:
    """An animal's mean acceleration in g as the model's int16 input units (the
    ``ethoedge_orientation`` argument): ``sat16(round(mean * 2^in_frac))``."""
    from ethoedge.quantize.reference import quantize_input

    return quantize_input(np.asarray(mean_g, dtype=np.float64), in_frac)


def turn_like_firmware(
    X_g: np.ndarray, animals: Sequence[str], axis: str, in_frac: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows as recorded ``X_g (n, 3, L)`` (g) of ``animals`` as the firmware of a calibrated
    model sees them: ``(X_q, means, X_turned)``, the int16 input samples as recorded, each
    window's animal's mean sample (int16 ``(n, 3)``: the mean of the animal's windows' means,
    as :class:`~ethoedge.data.calibrate.GravitySums` estimates it, quantized) and the samples
    turned by :func:`orientation_q` of that mean (int16 ``(n, 3, L)``)."""
    from ethoedge.data.calibrate import GravitySums
    from ethoedge.quantize.reference import quantize_input

    animals = np.asarray(list(animals)).astype(str)
    X_q = quantize_input(X_g, in_frac)
    means = np.zeros((len(X_q), 3), dtype=np.int16)
    turned = np.empty_like(X_q)
    for a, g in GravitySums.of_windows(X_g, animals).directions().items():
        sel = animals == a
        m = mean_q(g, in_frac)
        means[sel] = m
        turned[sel] = orient_q(X_q[sel], orientation_q(m, axis))
    return X_q, means, turned
