"""Fixed-length windows over recordings.

Output shape convention, kept everywhere: ``X`` is ``(n_windows, 3, n_samples)`` float32
in g (raw, *not* normalised: normalisation is a fitted :class:`Normalizer`, applied by the
model pipeline and folded into the first layer by the quantizer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from ethoedge.configbase import Bool, Float, PosFloat, PosInt, UnitFloat, config_dataclass
from ethoedge.data.resample import resample_run, run_bounds
from ethoedge.errors import ConfigError, DataError

if TYPE_CHECKING:
    from ethoedge.data.dataset import Dataset


@config_dataclass(key="window")
class WindowConfig:
    """How recordings are cut into labelled windows.

    ``target_rate_hz`` is the one resampling setting of a run (``data`` has none): the rate
    belongs with the window length to what a model is trained on, and a bundle windows new
    data with these settings at its own rate.

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
        calibrate: ``"gravity"``: turn each animal's windows so that its mean gravity
            direction (the mean of its windows' means) lies along ``gravity_axis``
            (:mod:`ethoedge.data.calibrate`: a collar that sits otherwise on one animal no
            longer moves its postures); ``"none"``: windows as recorded.
        gravity_axis: the sensor axis every animal's mean gravity is turned onto (``x``, ``y``,
            ``z``, ``-x``, ``-y``, ``-z``).
    """

    length_s: PosFloat = 5.0
    hop_s: PosFloat = 2.5
    length: PosInt | None = None
    hop: PosInt | None = None
    target_rate_hz: PosFloat | None = None
    min_purity: UnitFloat = 0.8
    drop_impure: Bool = True
    max_gap_factor: Annotated[Float, Field(gt=1)] = 1.5
    calibrate: Literal["none", "gravity"] = "none"
    gravity_axis: Literal["x", "y", "z", "-x", "-y", "-z"] = "-z"

    @property
    def turned_onto(self) -> str | None:
        """The axis each animal's windows are turned onto (None: not calibrated)."""
        return None if self.calibrate == "none" else str(self.gravity_axis)


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


def window_geometry(cfg: WindowConfig, rate_hz: float) -> tuple[int, int]:
    """``(length, hop)`` in samples at ``rate_hz``.

    >>> window_geometry(WindowConfig(), 10.0)
    (50, 25)
    >>> window_geometry(WindowConfig(length=64, hop=32), 20.0)
    (64, 32)
    """
    length = cfg.length if cfg.length is not None else round(cfg.length_s * rate_hz)
    hop = cfg.hop if cfg.hop is not None else round(cfg.hop_s * rate_hz)
    if length < 1 or hop < 1:
        raise ConfigError(
            f"window length and hop must be at least one sample, got {length} and {hop}"
            f" at {rate_hz:g} Hz"
        )
    return length, hop


MAX_UPSAMPLE = 10.0  # the most samples resampling may make for each recorded one


def make_windows(dataset: Dataset, cfg: WindowConfig | None = None) -> Windows:
    """Cut every recording of ``dataset`` into fixed-length labelled windows.

    Each recording is split into gap-free runs (a step of more than ``max_gap_factor``
    sample periods is a gap); a window never crosses a run or a recording (segment) boundary.
    With ``target_rate_hz`` each run is first resampled (linear for acceleration, nearest
    sample for labels). Window starts are ``0, hop, 2*hop, ...`` within each run. The label is
    the majority class (ties: the lower class id); purity is the majority count over the
    window length, so unlabelled samples count as impure. Windows below ``min_purity`` are
    dropped when ``drop_impure`` (else kept with the majority label); windows with no labelled
    sample are always dropped.

    With ``calibrate="gravity"`` every animal's kept windows are then turned onto
    ``gravity_axis`` (:func:`ethoedge.data.calibrate.calibrate_windows`).

    Raises :class:`DataError` if no window fits (naming the window length and the longest
    gap-free stretch) or if every window is too impure.
    """
    cfg = cfg if cfg is not None else WindowConfig()
    recs = dataset.recordings
    if not recs:
        raise DataError("the data set has no recordings", path=dataset.source)
    rates = sorted({float(r.rate_hz) for r in recs})
    if cfg.target_rate_hz is None and len(rates) > 1:
        raise ConfigError(
            f"recordings have different sampling rates {rates} Hz; set window.target_rate_hz"
            " (ethoedge data stats: --rate)",
            path=dataset.source,
        )
    rate = float(cfg.target_rate_hz) if cfg.target_rate_hz is not None else rates[0]
    length, hop = window_geometry(cfg, rate)
    class_names = tuple(dataset.class_names)
    n_cls = len(class_names)

    accs: list[np.ndarray] = []
    times: list[np.ndarray] = []
    codes_l: list[np.ndarray] = []
    run_len: list[int] = []
    run_animal: list[str] = []
    run_segment: list[str] = []
    longest = (0, "", "")
    # Class ids of all samples in one vectorised lookup (-1: unlabelled or not a class).
    rec_off = np.cumsum([0, *(len(r) for r in recs)])
    raw_codes, raw_uniq = pd.factorize(
        np.concatenate([np.asarray(r.labels, dtype=object) for r in recs]), use_na_sentinel=True
    )
    class_id = {c: i for i, c in enumerate(class_names)}
    lookup = np.array([class_id.get(u, -1) for u in raw_uniq] + [-1], dtype=np.int64)
    all_codes = lookup[raw_codes]
    for i, rec in enumerate(recs):
        if cfg.target_rate_hz is not None and rec.rate_hz * MAX_UPSAMPLE < rate:
            raise DataError(
                f"recording ({rec.animal}, {rec.segment}) is sampled at {rec.rate_hz:g} Hz:"
                f" resampling it to {rate:g} Hz would make up more than {MAX_UPSAMPLE:g}"
                " samples for each recorded one (interpolation, not behaviour); record at a"
                " higher rate or use a model trained at this one",
                path=rec.source or dataset.source,
            )
        codes = all_codes[rec_off[i] : rec_off[i + 1]]
        for a, b in run_bounds(rec.t, rec.rate_hz, cfg.max_gap_factor):
            t, acc, c = rec.t[a:b], rec.acc[a:b], codes[a:b]
            if cfg.target_rate_hz is not None and abs(rec.rate_hz - rate) > 1e-9:
                t, acc, c = resample_run(t, acc, c, rate)
            n = int(t.shape[0])
            if n > longest[0]:
                longest = (n, rec.animal, rec.segment)
            if n < length:
                continue
            accs.append(acc)
            times.append(t)
            codes_l.append(c)
            run_len.append(n)
            run_animal.append(rec.animal)
            run_segment.append(rec.segment)
    if not accs:
        raise DataError(
            f"no window fits: a window is {length} samples ({length / rate:g} s at {rate:g} Hz)"
            f" but the longest gap-free recording is {longest[0]} samples"
            f" ({longest[0] / rate:g} s; animal {longest[1]!r}, segment {longest[2]!r})",
            path=dataset.source,
        )

    acc_all = np.concatenate(accs).astype(np.float32, copy=False)  # (N, 3)
    t_all = np.concatenate(times)
    c_all = np.concatenate(codes_l)
    lens = np.asarray(run_len, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
    per_run = (lens - length) // hop + 1
    first = np.repeat(np.cumsum(per_run) - per_run, per_run)
    starts = np.repeat(offsets, per_run) + hop * (np.arange(int(per_run.sum())) - first)

    # Class counts per window from cumulative one-hot sums: O(N * C).
    onehot = np.zeros((c_all.shape[0] + 1, max(n_cls, 1)), dtype=np.int32)
    lab = c_all >= 0
    onehot[1:][lab, c_all[lab]] = 1
    cum = np.cumsum(onehot, axis=0)
    counts = cum[starts + length] - cum[starts]  # (n, C)
    y = counts.argmax(axis=1).astype(np.int64)
    purity = counts.max(axis=1) / float(length)
    keep = counts.max(axis=1) > 0
    if cfg.drop_impure:
        keep &= purity >= cfg.min_purity - 1e-12
    if not keep.any():
        raise DataError(
            f"all {len(starts):,} windows of {length} samples are below min_purity"
            f" {cfg.min_purity:g} (or unlabelled); lower min_purity or set drop_impure=False",
            path=dataset.source,
        )
    starts = starts[keep]
    view = np.lib.stride_tricks.sliding_window_view(acc_all, length, axis=0)  # (N-L+1, 3, L)
    X = np.ascontiguousarray(view[starts], dtype=np.float32)  # (n, 3, L)
    animal = np.repeat(np.asarray(run_animal, dtype=str), per_run)[keep]
    segment = np.repeat(np.asarray(run_segment, dtype=str), per_run)[keep]
    if cfg.calibrate == "gravity":
        from ethoedge.data.calibrate import calibrate_windows

        X, _ = calibrate_windows(X, animal, cfg.gravity_axis, dataset.source)
    return Windows(
        X=X,
        y=y[keep],
        animal=animal,
        segment=segment,
        start=t_all[starts],
        end=t_all[starts + length - 1] + 1.0 / rate,
        class_names=class_names,
        rate_hz=rate,
    )
