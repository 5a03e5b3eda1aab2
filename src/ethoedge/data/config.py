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

from pydantic import Field

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

Format = Literal["auto", "generic", "cattle_ufro", "otariids_ladds"]
Units = Literal["g", "m/s2"]
NanPolicy = Literal["error", "drop", "interpolate"]
UnlabelledPolicy = Literal["error", "drop", "keep"]
TimestampPolicy = Literal["error", "sort"]
FORMATS: tuple[str, ...] = typing.get_args(Format)
UNITS: tuple[str, ...] = typing.get_args(Units)
NAN_POLICIES: tuple[str, ...] = typing.get_args(NanPolicy)
UNLABELLED_POLICIES: tuple[str, ...] = typing.get_args(UnlabelledPolicy)
TIMESTAMP_POLICIES: tuple[str, ...] = typing.get_args(TimestampPolicy)


@config_dataclass(key="data", moved={"resample_hz": "window.target_rate_hz"})
class DataConfig:
    """Where the data are and how to read them.

    Attributes:
        path: a CSV / CSV.gz / Parquet file, or a folder holding one (``None``: the bundled
            default cattle subset shipped inside the package).
        format: ``"auto"`` (detect from the columns and file name), ``"generic"``
            (``animal, timestamp, ax, ay, az, label`` + optional ``segment``/``session``),
            ``"cattle_ufro"`` or ``"otariids_ladds"`` (the two shared real data sets).
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
