"""Contiguous runs and resampling of one recording.

A *run* is a stretch of samples with no gap: every step between timestamps is positive and at
most ``max_gap_factor`` sample periods. Resampling works run by run, so it never interpolates
across a gap.
"""

from __future__ import annotations

import numpy as np


def run_bounds(t: np.ndarray, rate_hz: float, max_gap_factor: float) -> np.ndarray:
    """Start/stop indices ``(n_runs, 2)`` of the gap-free runs of timestamps ``t``.

    >>> run_bounds(np.array([0.0, 0.1, 0.2, 0.5, 0.6]), 10.0, 1.5).tolist()
    [[0, 3], [3, 5]]
    """
    n = int(t.shape[0])
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    step = np.diff(t)
    breaks = np.flatnonzero((step <= 0) | (step > max_gap_factor / rate_hz)) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [n]])
    return np.stack([starts, stops], axis=1).astype(np.int64)


def resample_run(
    t: np.ndarray, acc: np.ndarray, labels: np.ndarray, rate_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample one gap-free run to ``rate_hz``.

    The new grid is ``t[0] + k / rate_hz`` up to ``t[-1]``. Acceleration ``(n, 3)`` is
    interpolated linearly; labels take the value of the nearest original sample.

    >>> t = np.arange(5) * 0.04  # 25 Hz
    >>> acc = np.stack([t, t, t], axis=1).astype(np.float32)
    >>> t2, a2, l2 = resample_run(t, acc, np.array(list("aabbb"), dtype=object), 20.0)
    >>> t2.tolist(), a2[:, 0].astype(float).round(3).tolist(), l2.tolist()
    ([0.0, 0.05, 0.1, 0.15], [0.0, 0.05, 0.1, 0.15], ['a', 'a', 'b', 'b'])
    """
    if t.shape[0] < 2:
        return t.copy(), acc.copy(), labels.copy()
    n_new = int(np.floor((t[-1] - t[0]) * rate_hz + 1e-6)) + 1
    t_new = t[0] + np.arange(n_new, dtype=np.float64) / rate_hz
    acc_new = np.empty((n_new, acc.shape[1]), dtype=np.float32)
    for axis in range(acc.shape[1]):
        acc_new[:, axis] = np.interp(t_new, t, acc[:, axis])
    # Nearest original sample: the right neighbour unless the left one is closer (ties: left).
    right = np.clip(np.searchsorted(t, t_new, side="left"), 1, t.shape[0] - 1)
    left = right - 1
    nearest = np.where(t_new - t[left] <= t[right] - t_new, left, right)
    return t_new, acc_new, labels[nearest]


def resample(
    t: np.ndarray,
    acc: np.ndarray,
    labels: np.ndarray,
    rate_in: float,
    rate_out: float,
    max_gap_factor: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample a recording run by run (gaps stay gaps). Returns ``(t, acc, labels)``."""
    parts = [
        resample_run(t[a:b], acc[a:b], labels[a:b], rate_out)
        for a, b in run_bounds(t, rate_in, max_gap_factor)
    ]
    if not parts:
        return t.copy(), acc.copy(), labels.copy()
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )
