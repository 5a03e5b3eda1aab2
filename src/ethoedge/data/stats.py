"""Per-animal and per-class counts, durations and windows of a data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ethoedge.data.dataset import Dataset
from ethoedge.data.recording import UNLABELLED
from ethoedge.data.windows import WindowConfig, Windows, make_windows


@dataclass(frozen=True)
class DataStats:
    """Summary tables of one data set and its windows.

    Attributes:
        per_animal: index animal; columns ``segments, samples, duration_s, windows``, one
            ``windows:<class>`` column per class, and ``gravity_x, gravity_y, gravity_z``: the
            mean acceleration of the animal's samples in g (the direction gravity lies along on
            average; collars that sit otherwise differ here, see ``window.calibrate``).
        per_class: index class; columns ``samples, duration_s, animals, segments, windows``.
        windows: the windows the counts come from.
    """

    per_animal: pd.DataFrame
    per_class: pd.DataFrame
    windows: Windows


def dataset_stats(dataset: Dataset, cfg: WindowConfig | None = None) -> DataStats:
    """Count samples, durations, segments and windows per animal and per class.

    Samples without a label count as the class ``(unlabelled)``, and so do windows cut from
    them (with the purity rule of labelled windows), so that an unlabelled recording - or
    the unannotated stretches of a partly annotated one - has its windows counted too."""
    w = make_windows(_unlabelled_as_a_class(dataset), cfg)
    rows = []
    acc_sum: dict[str, np.ndarray] = {}
    for r in dataset.recordings:
        acc_sum[r.animal] = acc_sum.get(r.animal, np.zeros(3)) + np.asarray(
            r.acc, dtype=np.float64
        ).sum(axis=0)
        labels = np.where(pd.isna(r.labels), UNLABELLED, r.labels).astype(str)
        for lab, n in zip(*np.unique(labels, return_counts=True), strict=True):
            rows.append((r.animal, f"{r.animal}/{r.segment}", str(lab), int(n), n / r.rate_hz))
    s = pd.DataFrame(rows, columns=["animal", "segment", "label", "samples", "duration_s"])
    per_animal = s.groupby("animal").agg(
        segments=("segment", "nunique"),
        samples=("samples", "sum"),
        duration_s=("duration_s", "sum"),
    )
    wy = pd.Series(np.asarray(w.class_names, dtype=object)[w.y], dtype=object)
    wa = pd.crosstab(pd.Series(w.animal, name="animal"), wy.rename("label"))
    wa = wa.reindex(index=per_animal.index, columns=list(w.class_names), fill_value=0)
    per_animal["windows"] = wa.sum(axis=1)
    for c in w.class_names:
        per_animal[f"windows:{c}"] = wa[c]
    mean = (
        np.stack([acc_sum[str(a)] for a in per_animal.index])
        / np.maximum(per_animal["samples"].to_numpy(dtype=np.float64), 1.0)[:, None]
    )
    for k, axis in enumerate("xyz"):
        per_animal[f"gravity_{axis}"] = mean[:, k]
    order = [*dataset.class_names, *([UNLABELLED] if UNLABELLED in set(s["label"]) else [])]
    per_class = (
        s.groupby("label")
        .agg(
            samples=("samples", "sum"),
            duration_s=("duration_s", "sum"),
            animals=("animal", "nunique"),
            segments=("segment", "nunique"),
        )
        .reindex(order, fill_value=0)
    )
    per_class["windows"] = wy.value_counts().reindex(order, fill_value=0).astype(int)
    per_class.index.name = "class"
    return DataStats(per_animal=per_animal, per_class=per_class, windows=w)


def _unlabelled_as_a_class(dataset: Dataset) -> Dataset:
    """``dataset`` with its samples without a label labelled ``(unlabelled)`` (a last class)."""
    from dataclasses import replace

    if not any(pd.isna(r.labels).any() for r in dataset.recordings):
        return dataset
    recs = [
        replace(r, labels=np.where(pd.isna(r.labels), UNLABELLED, r.labels).astype(object))
        for r in dataset.recordings
    ]
    return replace(dataset, recordings=recs, class_names=(*dataset.class_names, UNLABELLED))
