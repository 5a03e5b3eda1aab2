"""A loaded data set: recordings (in g, labels mapped) plus the class list."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ethoedge.data.recording import Recording


@dataclass(frozen=True)
class Dataset:
    """Recordings of one data set, ready to be windowed.

    Attributes:
        name: data set name (``"cattle_collar_ufro"``, ``"otariids_ladds"``, or the file stem).
        recordings: one :class:`Recording` per (animal, segment), in order of first appearance.
        class_names: the kept classes in class-id order; every label in the recordings is one
            of them (or ``None`` for unlabelled samples kept by ``unlabelled="keep"``).
        source: the file the data came from.
        notes: what the loader changed or noticed (rows dropped, values interpolated, ...).
    """

    name: str
    recordings: list[Recording]
    class_names: tuple[str, ...]
    source: str
    notes: tuple[str, ...] = ()

    @property
    def animals(self) -> tuple[str, ...]:
        """Distinct animal ids, sorted."""
        return tuple(sorted({r.animal for r in self.recordings}))

    @property
    def rates_hz(self) -> tuple[float, ...]:
        """Distinct sampling rates of the recordings, sorted."""
        return tuple(sorted({float(r.rate_hz) for r in self.recordings}))

    @property
    def n_samples(self) -> int:
        return int(sum(len(r) for r in self.recordings))

    def for_animal(self, animal: str) -> list[Recording]:
        """The recordings of one animal, in time order of their first sample."""
        recs = [r for r in self.recordings if r.animal == animal]
        return sorted(recs, key=lambda r: float(r.t[0]) if len(r) else np.inf)
