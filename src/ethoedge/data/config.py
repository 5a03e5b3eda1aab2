"""The data configuration: which file, which layout, which labels, what to do with bad rows.

A :class:`DataConfig` is saved beside every artefact (``to_dict``/``from_dict`` round-trip
through YAML/JSON) so a run can be repeated exactly.

Resampling is a window setting, ``window.target_rate_hz``
(:class:`~ethoedge.data.windows.WindowConfig`), not a data setting: the rate is part of what a
model is trained on, as the window length is, and windowing resamples each gap-free run (the
same rule a bundle uses to window new data at its own rate). Only a format whose files mix
rates (``otariids_ladds``: 25 and 20 Hz sessions) is brought to one rate on load.
"""

from __future__ import annotations

import typing
from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from ethoedge.configbase import (
    Float,
    LabelMap,
    PosFloat,
    Str,
    config_dataclass,
    from_plain,
    to_plain,
)
from ethoedge.errors import ConfigError

Format = Literal["auto", "generic", "cattle_ufro", "otariids_ladds", "movebank"]
Units = Literal["g", "m/s2"]
NanPolicy = Literal["error", "drop", "interpolate"]
UnlabelledPolicy = Literal["error", "drop", "keep"]
TimestampPolicy = Literal["error", "sort"]
FORMATS: tuple[str, ...] = typing.get_args(Format)
UNITS: tuple[str, ...] = typing.get_args(Units)
NAN_POLICIES: tuple[str, ...] = typing.get_args(NanPolicy)
UNLABELLED_POLICIES: tuple[str, ...] = typing.get_args(UnlabelledPolicy)
TIMESTAMP_POLICIES: tuple[str, ...] = typing.get_args(TimestampPolicy)


E_OBS_ZERO = 2048.0
"""Default zero point of raw e-obs acceleration counts (the middle of the 12-bit range)."""
E_OBS_G_PER_COUNT = 1.0 / 1024.0
"""Default slope of raw e-obs acceleration counts in g per count (an assumption: +-2 g over the
12-bit range); a tag's own calibration belongs in ``data.movebank``."""


@config_dataclass(key="data.labels")
class LabelsConfig:
    """Annotation intervals joined to the sensor samples by time
    (:func:`~ethoedge.data.annotations.read_annotations`).

    Attributes:
        path: a generic ``animal, start, end, label`` table or a BORIS aggregated-events export
            (CSV, TSV, CSV.gz).
        video_start: where the annotation clock starts when its times are relative to a video
            (BORIS): one ISO 8601 date-time for every observation, or a table file with columns
            ``observation`` (an observation id or media file name) and ``start``.
        tz: the time zone (IANA name such as ``Europe/Berlin``, or ``UTC``) of naive date-times
            in the annotation file or ``video_start``; ``None``: naive times are an error.
        behaviours: the behaviours an annotation may name (``None``: the data's ``classes``
            and ``label_map`` keys when ``classes`` is set, else any).
    """

    path: Str
    video_start: Str | None = None
    tz: Str | None = None
    behaviours: tuple[Str, ...] | None = None


@config_dataclass(key="data.movebank")
class MovebankConfig:
    """How raw accelerometer counts of a Movebank export become g:
    ``g = (count - zero) * g_per_count`` (the same for every axis).

    The defaults assume an e-obs tag recording 12-bit counts centred on 2048 at +-2 g full
    scale; they are *not* a calibration. Set the values from your tags' calibration (e-obs
    publishes them per tag and sensitivity); tilt columns (already in g) are not scaled.

    Attributes:
        zero: the count that means 0 g.
        g_per_count: g per count.
    """

    zero: Float = E_OBS_ZERO
    g_per_count: PosFloat = E_OBS_G_PER_COUNT


def _labels_shorthand(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


LabelsField = Annotated[LabelsConfig | None, BeforeValidator(_labels_shorthand)]
"""``data.labels``: a :class:`LabelsConfig`, or just the annotation file's path."""


@config_dataclass(key="data", moved={"resample_hz": "window.target_rate_hz"})
class DataConfig:
    """Where the data are and how to read them.

    Attributes:
        path: a CSV / CSV.gz / Parquet file, a folder of per-animal files or a glob pattern
            such as ``logs/cow_*.csv`` (``None``: the bundled default cattle subset shipped
            inside the package). A folder holding a file named like the folder reads that
            file only. Without an ``animal`` column a file's animal id is its stem
            (``cow_17.csv.gz`` -> ``cow_17``); all files must share one layout.
        format: ``"auto"`` (detect from the columns and file name), ``"generic"``
            (``animal, timestamp, ax, ay, az, label`` + optional ``segment``/``session``),
            ``"cattle_ufro"`` or ``"otariids_ladds"`` (the two shared real data sets), or
            ``"movebank"`` (a Movebank accelerometer export: e-obs bursts or one sample per
            row).
        units: acceleration units in the file, ``"g"`` or ``"m/s2"`` (``None``: the preset's,
            ``"g"`` for generic data). Converted to g on load.
        label_map: rename/merge labels (``{"trotting": "walking"}``); a value of ``None``
            drops that label's rows. Applied before ``classes``.
        label_column: the column holding the labels (``None``: the preset's, ``label``; the
            otariid preset uses ``label_group``, its five groups; ``"label"`` gives its 28 fine
            behaviours).
        classes: the classes kept, in this order (class id = position); rows with any other
            label are dropped. ``None``: the preset's (cattle: grazing, resting, standing,
            walking), else every label present, sorted.
        nan_policy: NaN/inf acceleration values: ``"error"`` (default; counted and reported),
            ``"drop"`` the rows, or ``"interpolate"`` linearly in time within the recording.
        unlabelled: rows with an empty label: ``"error"``, ``"drop"``, or ``"keep"`` (kept as
            unlabelled samples; windows count them as impure).
        timestamp_policy: non-increasing timestamps within a segment: ``"error"``, or
            ``"sort"`` (sort by time and drop exact duplicate timestamps, keeping the first).
        rate_hz: declared sampling rate in Hz (``None``: inferred from the median timestamp
            step; the otariid preset reads it per session from ``fs_hz``).
        max_gap_factor: where a format brings its recordings to one rate on load (the
            otariid preset resamples its mixed 25/20 Hz sessions to 20 Hz), resampling never
            interpolates over a step longer than this many sample periods (the same rule as
            :class:`~ethoedge.data.windows.WindowConfig`). To resample to another rate, set
            ``window.target_rate_hz``.
        labels: annotation intervals that label the samples by time (a
            :class:`LabelsConfig`, or just its path); the file's own label column is then
            ignored and samples outside every interval are unlabelled (see ``unlabelled``).
        movebank: the conversion of raw Movebank/e-obs counts to g (:class:`MovebankConfig`).
    """

    path: Str | None = None
    format: Format = "auto"
    units: Units | None = None
    label_column: Str | None = None
    label_map: LabelMap = field(default_factory=dict)
    classes: tuple[Str, ...] | None = None
    nan_policy: NanPolicy = "error"
    unlabelled: UnlabelledPolicy = "error"
    timestamp_policy: TimestampPolicy = "error"
    rate_hz: PosFloat | None = None
    max_gap_factor: Annotated[Float, Field(gt=1)] = 1.5
    labels: LabelsField = None
    movebank: MovebankConfig = field(default_factory=MovebankConfig)

    def __post_init__(self) -> None:
        if self.classes is not None and (
            not self.classes or len(set(self.classes)) != len(self.classes)
        ):
            raise ConfigError(f"data.classes must be distinct and non-empty, got {self.classes}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), for YAML/JSON.

        >>> DataConfig(classes=("a", "b")).to_dict()["classes"]
        ['a', 'b']
        """
        return to_plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`.

        >>> c = DataConfig(format="cattle_ufro", label_map={"trotting": "walking"})
        >>> DataConfig.from_dict(c.to_dict()) == c
        True
        """
        return from_plain(cls, d)
