"""The data model: one animal's time-stamped tri-axial acceleration with per-sample labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNLABELLED = "(unlabelled)"
"""The label that stands for samples without one (``None`` in :attr:`Recording.labels`) where
a name is needed: a row of the data statistics, a placeholder class when every stretch of new
data is windowed for classification."""


@dataclass(frozen=True)
class Recording:
    """One continuous stretch of one animal's recording (one bout/session/segment).

    Windows never cross two recordings. Acceleration is always in g (converted on load).

    Attributes:
        animal: animal id, as a string.
        segment: bout/session id within the animal, as a string ("0" where the source has none).
        t: (n,) float64 timestamps in seconds, strictly increasing.
        acc: (n, 3) float32 acceleration in g, axes x, y, z.
        labels: (n,) object array of behaviour labels (str) after the label map;
            ``None`` entries mark unlabelled samples (kept only where allowed by config).
        rate_hz: nominal sampling rate in Hz.
        source: the file it came from (for error messages).
    """

    animal: str
    segment: str
    t: np.ndarray
    acc: np.ndarray
    labels: np.ndarray
    rate_hz: float
    source: str = ""

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def duration_s(self) -> float:
        return float(len(self) / self.rate_hz)
