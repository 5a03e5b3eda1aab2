"""Quantize the student of a model bundle at several word lengths (``ethoedge quantize``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ethoedge.distill.config import KDConfig
from ethoedge.errors import ConfigError, unwritable
from ethoedge.io import atomic_write_files
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.sweep import evaluate_word_lengths


def quantize_bundle(
    bundle_dir: str | Path,
    cfg: QuantConfig | None = None,
    data: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    windows: Any = None,
    *,
    data_format: str | None = None,
    units: str | None = None,
    kd: KDConfig | None = None,
) -> list[dict[str, Any]]:
    """Quantize a bundle's student at every ``cfg.word_bits`` and write
    ``BUNDLE/quantized/w{bits}.json`` (plus ``quant_config.json``), atomically.

    Calibration (and, with ``cfg.qat``, fine-tuning, with the bundle teacher's soft labels
    when it has a teacher, weighted by ``kd``: the run's ``cfg.kd``, None for the
    :class:`~ethoedge.distill.KDConfig` defaults) uses the windows of the bundle's data set
    (``data`` replaces its path, ``data_format`` and ``units`` its format and units), cut
    with the bundle's window settings. The returned rows are those of
    :func:`~ethoedge.quantize.sweep.evaluate_word_lengths` scored on the same windows (the
    training data: ``agreement`` with the float student is the meaningful figure here).
    Nothing is written unless every word length succeeds. ``windows`` (a
    :class:`~ethoedge.data.Windows` with the bundle's classes, e.g. the windows a run trained
    the bundle on) replaces loading the data.
    """
    from ethoedge.bundle import load_bundle
    from ethoedge.data import DataConfig, load_dataset, make_windows

    cfg = cfg or QuantConfig()
    bundle_dir = Path(bundle_dir)
    b = load_bundle(bundle_dir, teacher=bool(cfg.qat))  # the teacher only for fine-tuning
    dcfg = DataConfig.from_dict(b.data) if b.data else DataConfig()
    if data is not None and str(data) != dcfg.path:
        # the training data's annotation file does not label other data
        dcfg = dataclasses.replace(dcfg, path=str(data), labels=None)
    if data_format is not None:
        dcfg = dataclasses.replace(dcfg, format=data_format)
    if units is not None:
        dcfg = dataclasses.replace(dcfg, units=units)
    if windows is None:
        ds = load_dataset(dcfg)
        win = make_windows(ds, b.window)
        data_source = ds.source
    else:
        win = windows
        data_source = "the run's windows"
    if tuple(win.class_names) != tuple(b.class_names):
        raise ConfigError(
            f"the data's classes {list(win.class_names)} differ from the bundle's "
            f"{list(b.class_names)}",
            path=data if data is not None else dcfg.path,
        )
    if len(win) == 0:
        raise ConfigError("the data give no windows to calibrate on", path=dcfg.path)
    soft = None
    if cfg.qat and b.teacher is not None:
        with torch.no_grad():
            soft = np.concatenate(
                [
                    b.teacher(torch.from_numpy(b.normalizer.apply(win.X[i : i + 1024]))).numpy()
                    for i in range(0, len(win), 1024)
                ]
            )
    results = evaluate_word_lengths(
        b.student,
        b.normalizer,
        win.X,
        win.X,
        win.y,
        cfg,
        b.class_names,
        soft_labels=soft,
        train_y=win.y,
        log=log,
        kd=kd,
    )
    source = {"bundle": str(bundle_dir), "data": str(data_source), "windows": len(win)}
    docs = {}
    for r in results:
        q = r["qmodel"]
        q = dataclasses.replace(q, meta={**q.meta, "method": r["method"], **source})
        r["qmodel"] = q
        docs[f"w{r['word_bits']}.json"] = q.to_json()
    docs["quant_config.json"] = cfg.to_dict()
    out = bundle_dir / "quantized"
    try:
        atomic_write_files(out, {n: json.dumps(d, indent=2) + "\n" for n, d in docs.items()})
    except OSError as e:
        raise unwritable(out, e, folder=True) from None
    return results
