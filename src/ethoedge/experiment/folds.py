"""Stage 1 of a run: the folds. Which windows each fold trains, validates and tests on, and
the normaliser fitted on its training windows; plus the data-dependent checks of a config."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ethoedge.config import RunConfig
from ethoedge.data.windows import Normalizer, Windows
from ethoedge.errors import ConfigError
from ethoedge.evaluate.cv import make_splits


def check_config_against_data(cfg: RunConfig, windows: Windows, dataset: Any = None) -> None:
    """Data-dependent checks with clear messages: classes, window length, number of animals."""
    if cfg.data.classes is not None:
        known = set(windows.class_names)
        if dataset is not None:
            known |= {str(lb) for r in dataset.recordings for lb in set(r.labels) if lb is not None}
        unknown = [c for c in cfg.data.classes if c not in known]
        if unknown:
            raise ConfigError(
                f"unknown class(es) {unknown} in data.classes; the data have {sorted(known)}"
            )
    if len(windows) == 0:
        longest = ""
        if dataset is not None and dataset.recordings:
            r = max(dataset.recordings, key=lambda r: r.duration_s)
            longest = f" (the longest recording lasts {r.duration_s:.1f} s)"
        w = cfg.window
        what = f"{w.length} samples" if w.length is not None else f"{w.length_s} s"
        raise ConfigError(
            f"no windows: the window ({what}) is longer than every recording{longest}, or no "
            "window is pure enough (window.min_purity)"
        )
    n_animals = len(np.unique(windows.animal))
    if n_animals < cfg.min_animals:
        what = {"loao": "leave-one-animal-out", "kfold": f"{cfg.k}-fold by animal"}.get(
            cfg.protocol, f"a holdout of {cfg.test_animals} test + {cfg.val_animals} val animals"
        )
        plain = replace(cfg, kd=replace(cfg.kd, soft_labels="in_fold", baseline_weight=0.0))
        why = ""
        if cfg.cross_fits and n_animals >= plain.min_animals:  # cross-fitting needs the more
            why = (
                " (soft labels cross-fitted within each fold's training animals need 2 of them:"
                " kd.soft_labels: cross_fit or kd.baseline_weight > 0, as in the presets; use"
                " kd.soft_labels: in_fold and kd.baseline_weight: 0 for fewer animals)"
            )
        raise ConfigError(
            f"{what} needs at least {cfg.min_animals} animals{why}; the data have {n_animals}"
        )
    present = np.unique(windows.y)
    if len(present) < 2:
        raise ConfigError(f"the windows hold only {len(present)} class; need at least 2")


def stride(idx: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th index (all of them for ``step <= 1``)."""
    return idx[::step] if step > 1 else idx


@dataclass(frozen=True)
class FoldWindows:
    """The windows of one fold as a run uses them (sorted indices into the windows).

    ``train``/``val``: thinned by ``train_stride``; ``teacher_train``: by ``teacher_stride``;
    ``test``: all; ``normalizer``: fitted on ``train``.
    """

    name: str
    train: np.ndarray
    teacher_train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    normalizer: Normalizer


def fold_windows(cfg: RunConfig, w: Windows) -> list[FoldWindows]:
    """The folds of ``cfg.protocol`` on ``w``, exactly as a run trains and tests them."""
    splits = make_splits(
        w.animal,
        cfg.protocol,
        k=cfg.k,
        seed=cfg.split_seed,
        val_animals=cfg.val_animals,
        test_animals=cfg.test_animals,
    )
    out = []
    for split in splits:
        tr = stride(np.sort(split.train), cfg.train_stride)
        has_val = split.val is not None and len(split.val)
        out.append(
            FoldWindows(
                split.name,
                tr,
                stride(np.sort(split.train), cfg.teacher_stride or cfg.train_stride),
                stride(np.sort(split.val), cfg.train_stride) if has_val else None,
                np.sort(split.test),
                Normalizer.fit(w.X[tr]),
            )
        )
    return out


def all_animals(cfg: RunConfig, w: Windows) -> FoldWindows:
    """Every animal as training data (the deployment models): no validation, no test."""
    idx = np.arange(len(w))
    tr = stride(idx, cfg.train_stride)
    return FoldWindows(
        "all",
        tr,
        stride(idx, cfg.teacher_stride or cfg.train_stride),
        None,
        idx[:0],
        Normalizer.fit(w.X[tr]),
    )
