"""Standard hand-made accelerometry features of raw windows, vectorised over the batch.

:func:`window_features` takes windows ``X`` of shape ``(n, 3, L)``, acceleration in g on the
axes x, y, z, sampled at ``rate_hz``, and returns a float64 array ``(n, F)`` with the feature
names (:func:`feature_names`, a stable order). All windows are computed at once with NumPy
(no Python loop over windows; long batches are cut into blocks of windows to bound memory).
Every output is finite, constant windows included.

Conventions:

- Axes: x forward (cranio-caudal), y lateral, z the up/down (dorso-ventral) axis. An axis
  pointing straight up reads +1 g at rest (the sensor measures the force opposing gravity), so
  a level, still animal reads (0, 0, 1) g. Pitch > 0 when sx < 0 (the forward axis tilted
  down, head down); roll > 0 when sy > 0 (the y axis tilted up). A gravity vector rotated by
  +30° about y, (sin 30°, 0, cos 30°), has pitch -30° and roll 0; rotated by +30° about x,
  (0, -sin 30°, cos 30°), roll -30° and pitch 0.
- Static (gravity) component ``s`` = the per-window mean of each axis (a running mean whose
  window is the whole window); dynamic component ``d = a - s``. An axis whose variance over
  the window is at most 1e-12 g² (sd 1 µg) counts as constant: its dynamic component is
  exactly 0 (so its spectrum, dominant frequency and entropy are 0), and its correlations are 0.
- sd is the population standard deviation (ddof=0); quantiles use NumPy's default (linear)
  interpolation.
- Spectra: ``numpy.fft.rfft`` of the dynamic component over the whole window with no taper
  (rectangular window), as the one-sided power ``P_k = c_k |D_k|² / L²`` with ``c_k = 1`` for
  the DC bin (and the Nyquist bin when L is even) and 2 otherwise, so that the band energies of
  an axis add up exactly to its variance (Parseval), in g². Bin ``k`` has frequency
  ``k * rate_hz / L``.
- Bands have fixed edges in Hz, because a behaviour's movement frequencies are physical
  (a stride at 1.5 Hz is the same at 10 Hz and at 50 Hz sampling): [0, 0.5), [0.5, 1), [1, 2),
  [2, 3), and [3, Nyquist]. A band whose lower edge is at or above the Nyquist frequency
  ``rate_hz / 2`` is omitted and the highest band kept ends at Nyquist, closed (at 4 Hz:
  [0, 0.5), [0.5, 1), [1, 2]); so the feature count depends on ``rate_hz`` (not on ``L``). A
  band with no FFT bin (short windows) has energy 0. Names carry the edges, ``x_band_3-5hz``.

Features (``{a}`` is each of x, y, z, in that order; F = 68 for 3 axes at 10 Hz):

============================  =================================================================
name                          formula (over the L samples of one window)
============================  =================================================================
``{a}_mean``                  mean(a)  (= the static component s_a)
``{a}_sd``                    sd(a) = sqrt(mean(d_a²))
``{a}_min``, ``{a}_max``      min(a), max(a)
``{a}_q10`` ... ``{a}_q90``   quantiles 10, 25, 50, 75 and 90 % of a
``{a}_iqr``                   q75 - q25
``{a}_mean_abs_diff``         mean(abs(a[t+1] - a[t])), g per sample step (a jerk proxy)
``mag_mean``, ``mag_sd``,     mean, sd, min, max of the magnitude m = sqrt(x² + y² + z²)
``mag_min``, ``mag_max``
``vedba``                     mean(sqrt(dx² + dy² + dz²))  (vectorial dynamic body acceleration)
``odba``                      mean(abs(dx) + abs(dy) + abs(dz))  (overall dynamic body accel.)
``vedba_sd``                  sd(sqrt(dx² + dy² + dz²))
``pitch``                     atan2(-sx, sqrt(sy² + sz²)) in degrees, in [-90, 90]
``roll``                      atan2(sy, sz) in degrees, in [-180, 180]
``pitch_sd``                  sd over t of atan2(-x[t], sqrt(y[t]² + z[t]²)), degrees
``roll_sd``                   sd over t of atan2(y[t], z[t]) - roll wrapped to [-180, 180), deg.
``{a}_band_LO-HIhz``          sum of P_k of d_a over the bins with LO <= f_k < HI (see above)
``{a}_dom_freq``              f_k of the largest P_k over k >= 1 (lowest on ties); 0 if constant
``{a}_spec_entropy``          -sum p_k ln p_k / ln K, p_k = P_k / sum P over the K bins k >= 1;
                              in [0, 1]; 0 if constant or K = 1
``corr_xy``, ``corr_xz``,     Pearson correlation of the two axes over the window, clipped to
``corr_yz``                   [-1, 1]; 0 where either axis is constant
============================  =================================================================

Order: the per-axis statistics (``x_mean`` ... ``x_mean_abs_diff``, then y, then z), the
magnitude, ``vedba``, ``odba``, ``vedba_sd``, ``pitch``, ``roll``, ``pitch_sd``, ``roll_sd``,
the spectral features per axis (bands, ``dom_freq``, ``spec_entropy``; x, then y, then z), and
the three correlations.

>>> X = np.tile(np.array([0.0, 0.0, 1.0])[None, :, None], (2, 1, 50))  # still and level
>>> F, names = window_features(X, 10.0)
>>> F.shape, len(names), float(F[0, names.index("vedba")]), float(F[0, names.index("pitch")])
((2, 68), 68, 0.0, 0.0)
"""

from __future__ import annotations

import math

import numpy as np

from ethoedge.errors import DataError

AXES = ("x", "y", "z")
BAND_EDGES_HZ = (0.0, 0.5, 1.0, 2.0, 3.0)
"""Lower edges of the spectral bands; each band ends at the next edge, the last at Nyquist."""
CONSTANT_VAR = 1e-12
"""An axis with at most this variance over a window (g²) counts as constant."""
_QUANTILES = (10, 25, 50, 75, 90)
_AXIS_STATS = (
    "mean",
    "sd",
    "min",
    "max",
    *(f"q{q}" for q in _QUANTILES),
    "iqr",
    "mean_abs_diff",
)
_BLOCK = 16384  # windows per vectorised block (bounds the temporaries' memory)


def _check_shape(n_channels: int, rate_hz: float, length: int) -> None:
    if n_channels != len(AXES):
        raise DataError(f"features need 3 axes (x, y, z), got {n_channels} channels")
    if length < 2:
        raise DataError(f"features need windows of at least 2 samples, got {length}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise DataError(f"the sampling rate must be a positive number of Hz, got {rate_hz!r}")


def bands(rate_hz: float) -> tuple[tuple[float, float], ...]:
    """The spectral bands ``(lo, hi)`` in Hz at ``rate_hz``; the last one is closed at Nyquist.

    >>> bands(10.0)
    ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0))
    >>> bands(4.0)
    ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0))
    """
    nyquist = rate_hz / 2
    lows = [lo for lo in BAND_EDGES_HZ if lo < nyquist]
    return tuple(zip(lows, [*lows[1:], nyquist], strict=True))


def feature_names(n_channels: int, rate_hz: float, L: int) -> tuple[str, ...]:
    """Names of the columns :func:`window_features` returns for windows ``(n, n_channels, L)``
    at ``rate_hz`` (``n_channels`` must be 3 and ``L`` at least 2; the names depend on the rate
    only, through the spectral bands)."""
    _check_shape(n_channels, rate_hz, L)
    names = [f"{a}_{s}" for a in AXES for s in _AXIS_STATS]
    names += ["mag_mean", "mag_sd", "mag_min", "mag_max", "vedba", "odba", "vedba_sd"]
    names += ["pitch", "roll", "pitch_sd", "roll_sd"]
    for a in AXES:
        names += [f"{a}_band_{lo:g}-{hi:g}hz" for lo, hi in bands(rate_hz)]
        names += [f"{a}_dom_freq", f"{a}_spec_entropy"]
    names += ["corr_xy", "corr_xz", "corr_yz"]
    return tuple(names)


def window_features(X: np.ndarray, rate_hz: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """The features of the module docstring for every window of ``X``.

    Args:
        X: raw windows ``(n, 3, L)`` in g (any float dtype; computed in float64), L >= 2;
            ``n`` may be 0.
        rate_hz: sampling rate of ``X``.

    Returns:
        ``(F, names)``: float64 ``(n, len(names))``, all finite, and the column names.

    Raises:
        DataError: not three axes, fewer than 2 samples, a non-positive rate, or a non-finite
            sample.
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise DataError(f"windows must be (n, 3, L), got shape {X.shape}")
    rate_hz = float(rate_hz)
    names = feature_names(X.shape[1], rate_hz, X.shape[2])
    if not np.isfinite(X).all():
        raise DataError("windows contain a non-finite sample (NaN or infinity)")
    n = X.shape[0]
    out = np.empty((n, len(names)), dtype=np.float64)
    for start in range(0, n, _BLOCK):  # blocks of windows, each vectorised
        out[start : start + _BLOCK] = _features(X[start : start + _BLOCK], rate_hz)
    assert np.isfinite(out).all(), "a feature is not finite"
    return out, names


def _features(X: np.ndarray, rate_hz: float) -> np.ndarray:
    """The feature matrix of one block of windows (n, 3, L) (validated by the caller)."""
    X = X.astype(np.float64, copy=False)
    n, _, L = X.shape
    cols: list[np.ndarray] = []  # blocks of columns, each (n, k)

    # per-axis statistics
    s = X.mean(axis=2)  # static component (n, 3)
    D = X - s[:, :, None]
    var = np.mean(D * D, axis=2)
    const = var <= CONSTANT_VAR
    D[const] = 0.0
    var[const] = 0.0
    sd = np.sqrt(var)
    q = np.percentile(X, _QUANTILES, axis=2)  # (5, n, 3)
    mad = np.abs(np.diff(X, axis=2)).mean(axis=2)
    per_axis = np.stack([s, sd, X.min(axis=2), X.max(axis=2), *q, q[3] - q[1], mad], axis=2)
    cols.append(per_axis.reshape(n, -1))  # (n, 3 * 11), axis-major

    # magnitude and dynamic body acceleration
    mag = np.sqrt(np.sum(X * X, axis=1))  # (n, L)
    vec = np.sqrt(np.sum(D * D, axis=1))
    odba = np.abs(D).sum(axis=1)
    cols.append(
        np.stack(
            [
                *(mag.mean(axis=1), mag.std(axis=1), mag.min(axis=1), mag.max(axis=1)),
                *(vec.mean(axis=1), odba.mean(axis=1), vec.std(axis=1)),
            ],
            axis=1,
        )
    )

    # posture from the static component, and its variation from per-sample angles
    pitch = np.degrees(np.arctan2(-s[:, 0], np.hypot(s[:, 1], s[:, 2])))
    roll = np.degrees(np.arctan2(s[:, 1], s[:, 2]))
    pitch_t = np.degrees(np.arctan2(-X[:, 0], np.hypot(X[:, 1], X[:, 2])))
    roll_dev = np.degrees(np.arctan2(X[:, 1], X[:, 2])) - roll[:, None]
    roll_dev = (roll_dev + 180.0) % 360.0 - 180.0
    cols.append(np.stack([pitch, roll, pitch_t.std(axis=1), roll_dev.std(axis=1)], axis=1))

    # spectra of the dynamic component
    power = np.abs(np.fft.rfft(D, axis=2)) ** 2 / L**2  # (n, 3, K)
    power[:, :, 1 : (L + 1) // 2] *= 2.0  # one-sided: every bin but DC and (even L) Nyquist
    K = power.shape[2]
    freqs = np.arange(K) * rate_hz / L
    tol = 1e-9 * rate_hz  # frequencies on a band edge belong to the upper band
    members = np.stack(
        [
            (freqs >= lo - tol) & ((freqs < hi - tol) if i < len(bands(rate_hz)) - 1 else True)
            for i, (lo, hi) in enumerate(bands(rate_hz))
        ],
        axis=1,
    ).astype(np.float64)  # (K, B)
    band_energy = power @ members  # (n, 3, B)
    ac = power[:, :, 1:]  # the bins above DC
    total = ac.sum(axis=2)
    has_power = total > 0
    dom = np.where(has_power, freqs[1 + np.argmax(ac, axis=2)], 0.0)
    p = ac / np.where(has_power, total, 1.0)[:, :, None]
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=2) / math.log(K - 1) if K > 2 else np.zeros_like(total)
    entropy = np.clip(entropy, 0.0, 1.0)
    spectral = np.concatenate([band_energy, dom[:, :, None], entropy[:, :, None]], axis=2)
    cols.append(spectral.reshape(n, -1))  # (n, 3 * (B + 2)), axis-major

    # inter-axis correlations
    corr = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        cov = np.mean(D[:, i] * D[:, j], axis=1)
        ok = ~(const[:, i] | const[:, j])
        r = cov / np.where(ok, sd[:, i] * sd[:, j], 1.0)
        corr.append(np.where(ok, np.clip(r, -1.0, 1.0), 0.0))
    cols.append(np.stack(corr, axis=1))

    return np.concatenate(cols, axis=1) + 0.0  # + 0.0: no negative zeros


FEATURES_DOC: str = __doc__ or ""
"""The feature documentation (this module's docstring: conventions and the table)."""

__all__ = [
    "AXES",
    "BAND_EDGES_HZ",
    "CONSTANT_VAR",
    "FEATURES_DOC",
    "bands",
    "feature_names",
    "window_features",
]
