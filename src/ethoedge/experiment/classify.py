"""``ethoedge classify``: a deployment bundle applied to new recordings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ethoedge.bundle import load_bundle, window_like_bundle
from ethoedge.data.config import DataConfig
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.experiment.report import csv_text, predictions_frame
from ethoedge.inference import Classifier
from ethoedge.io import atomic_write_text


@dataclass
class ClassifyResult:
    """What :func:`classify` produced.

    Attributes:
        predictions: one row per window (animal, segment, start, end, label, score_<class>...,
            true_label: empty where the data carry no label).
        budget: hours per predicted behaviour (columns) per animal (rows).
        metrics: MCC, macro F1, accuracy and n over labelled windows, or None without labels.
        out_csv: where ``predictions`` was written.
    """

    predictions: pd.DataFrame
    budget: pd.DataFrame
    metrics: dict[str, float] | None
    out_csv: Path


def classify(
    bundle_dir: str | Path,
    data_cfg: DataConfig,
    out_csv: str | Path,
    *,
    engine: str = "float",
    bits: int = 8,
    device: str = "cpu",
) -> ClassifyResult:
    """Classify every window of new recordings with a bundle's student.

    ``engine="float"`` runs the float PyTorch student; ``engine="int"`` the integer-only
    reference of ``BUNDLE/quantized/w{bits}.json`` (what the exported C computes; scores are
    the softmax of its logits); ``engine="c"`` that model's exported C compiled for this
    machine (the same logits, bit for bit); all through
    :class:`~ethoedge.inference.Classifier`. Labels
    are the first index of the maximum score. ``device`` (``auto``, ``cpu`` or ``cuda``) is
    where the float engine runs.

    Windows are cut with the bundle's window settings at its sampling rate (recordings at
    another rate are resampled), keeping impure windows (label = majority label), so every
    stretch long enough for a window is classified. Labels are optional
    (``data_cfg.unlabelled="keep"`` keeps unlabelled rows); labels outside the bundle's
    classes count as unlabelled for the metrics.
    Time budget: each window accounts for ``min(hop, length)`` samples of time (the new time
    it covers), summed per animal and predicted behaviour, in hours.
    """
    from ethoedge.data import load_dataset

    clf = Classifier.from_bundle(bundle_dir, engine, bits=bits, device=device)
    bundle = load_bundle(bundle_dir)
    dataset = load_dataset(data_cfg)
    windows = window_like_bundle(bundle, dataset, every_stretch=True)
    pred, probs = clf.predict_with_proba(windows.X)
    # Map the data's labels onto the bundle's classes (-1: none / not a bundle class).
    lut = {n: i for i, n in enumerate(bundle.class_names)}
    y = np.array(
        [lut.get(windows.class_names[v], -1) if v >= 0 else -1 for v in windows.y], dtype=np.int64
    )
    mapped = replace(windows, y=y, class_names=bundle.class_names)
    df = predictions_frame(mapped, np.arange(len(windows)), probs)
    df["label"] = np.asarray(bundle.class_names, dtype=object)[pred]
    wcfg = bundle.window
    hop = wcfg.hop if wcfg.hop is not None else round(wcfg.hop_s * windows.rate_hz)
    per_window_h = min(hop, windows.n_samples) / windows.rate_hz / 3600.0
    budget = (
        df.assign(hours=per_window_h)
        .pivot_table(index="animal", columns="label", values="hours", aggfunc="sum", fill_value=0)
        .reindex(columns=list(bundle.class_names), fill_value=0.0)
    )
    budget.columns.name = None
    metrics = None
    ok = y >= 0
    if ok.any():
        m = classification_metrics(y[ok], pred[ok], bundle.class_names)
        metrics = {k: m[k] for k in ("mcc", "macro_f1", "accuracy", "n")}
    out_csv = Path(out_csv)
    atomic_write_text(out_csv, csv_text(df))
    return ClassifyResult(df, budget, metrics, out_csv)
