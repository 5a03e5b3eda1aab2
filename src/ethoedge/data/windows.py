"""Fixed-length windows over recordings.

Output shape convention, kept everywhere: ``X`` is ``(n_windows, 3, n_samples)`` float32
in g (raw, *not* normalised: normalisation is a fitted :class:`Normalizer`, applied by the
model pipeline and folded into the first layer by the quantizer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowConfig:
    """How recordings are cut into labelled windows.

    Attributes:
        length_s: window length in seconds (used when ``length`` is None).
        hop_s: hop between window starts in seconds (used when ``hop`` is None).
        length: window length in samples (overrides ``length_s``).
        hop: hop in samples (overrides ``hop_s``).
        target_rate_hz: resample every recording to this rate first (None: keep; all
            recordings must then share one rate).
        min_purity: minimum fraction of samples carrying the majority label.
        drop_impure: drop windows below ``min_purity`` (else keep them with the majority label).
        max_gap_factor: a step between timestamps larger than this many sample periods is a
            gap; no window crosses it.
    """

    length_s: float = 5.0
    hop_s: float = 2.5
    length: int | None = None
    hop: int | None = None
    target_rate_hz: float | None = None
    min_purity: float = 0.8
    drop_impure: bool = True
    max_gap_factor: float = 1.5


@dataclass(frozen=True)
class Windows:
    """Labelled windows. All arrays share the first dimension ``n``.

    Attributes:
        X: (n, 3, L) float32, acceleration in g.
        y: (n,) int64 class indices into ``class_names``.
        animal: (n,) str animal ids.
        segment: (n,) str segment ids.
        start: (n,) float64 start time (s) of each window.
        end: (n,) float64 end time (s) of each window (time of the last sample + 1/rate).
        class_names: class names, index = class id.
        rate_hz: sampling rate of X.
    """

    X: np.ndarray
    y: np.ndarray
    animal: np.ndarray
    segment: np.ndarray
    start: np.ndarray
    end: np.ndarray
    class_names: tuple[str, ...]
    rate_hz: float

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, idx: np.ndarray) -> Windows:
        """Windows at the given indices (a boolean mask or integer indices)."""
        return Windows(
            X=self.X[idx],
            y=self.y[idx],
            animal=self.animal[idx],
            segment=self.segment[idx],
            start=self.start[idx],
            end=self.end[idx],
            class_names=self.class_names,
            rate_hz=self.rate_hz,
        )

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[2])


@dataclass(frozen=True)
class Normalizer:
    """Per-axis z-score: ``(x - mean[axis]) / std[axis]``, fitted on training animals only."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def fit(cls, X: np.ndarray) -> Normalizer:
        """Fit on windows ``X`` of shape (n, 3, L)."""
        mean = X.mean(axis=(0, 2), dtype=np.float64)
        std = X.std(axis=(0, 2), dtype=np.float64)
        std = np.where(std < 1e-6, 1.0, std)
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))  # type: ignore[arg-type]

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Normalised copy of ``X`` (n, 3, L), float32."""
        m = np.asarray(self.mean, dtype=np.float32)[None, :, None]
        s = np.asarray(self.std, dtype=np.float32)[None, :, None]
        return ((X - m) / s).astype(np.float32)
