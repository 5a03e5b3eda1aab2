"""The data configuration: which file, which layout, which labels, what to do with bad rows.

A :class:`DataConfig` is saved beside every artefact (``to_dict``/``from_dict`` round-trip
through YAML/JSON) so a run can be repeated exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ethoedge.errors import ConfigError

FORMATS = ("auto", "generic", "cattle_ufro", "otariids_ladds")
UNITS = ("g", "m/s2")
NAN_POLICIES = ("error", "drop", "interpolate")
UNLABELLED_POLICIES = ("error", "drop", "keep")
TIMESTAMP_POLICIES = ("error", "sort")


@dataclass(frozen=True)
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
        resample_hz: resample every recording to this rate on load (linear interpolation for
            acceleration, nearest sample for labels; ``None``: keep, except the otariid preset
            which resamples its mixed 25/20 Hz sessions to 20 Hz).
        max_gap_factor: on load, resampling never interpolates over a step longer than this
            many sample periods (the same rule as :class:`~ethoedge.data.windows.WindowConfig`).
    """

    path: str | None = None
    format: str = "auto"
    units: str | None = None
    label_column: str | None = None
    label_map: dict[str, str | None] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    nan_policy: str = "error"
    unlabelled: str = "error"
    timestamp_policy: str = "error"
    rate_hz: float | None = None
    resample_hz: float | None = None
    max_gap_factor: float = 1.5

    def __post_init__(self) -> None:
        def check(name: str, value: object, allowed: tuple[object, ...]) -> None:
            if value not in allowed:
                raise ConfigError(f"data.{name} must be one of {list(allowed)}, got {value!r}")

        check("format", self.format, FORMATS)
        if self.units is not None:
            check("units", self.units, UNITS)
        check("nan_policy", self.nan_policy, NAN_POLICIES)
        check("unlabelled", self.unlabelled, UNLABELLED_POLICIES)
        check("timestamp_policy", self.timestamp_policy, TIMESTAMP_POLICIES)
        if not isinstance(self.label_map, dict):
            raise ConfigError(f"data.label_map must be a mapping, got {self.label_map!r}")
        for k, v in self.label_map.items():
            if not isinstance(k, str) or not (v is None or isinstance(v, str)):
                raise ConfigError(f"data.label_map entry {k!r}: {v!r} must map a str to a str/null")
        if self.classes is not None:
            classes = tuple(self.classes)
            if not classes or len(set(classes)) != len(classes):
                raise ConfigError(f"data.classes must be distinct and non-empty, got {classes}")
            object.__setattr__(self, "classes", classes)
        for name in ("rate_hz", "resample_hz"):
            v = getattr(self, name)
            if v is not None and not (float(v) > 0):
                raise ConfigError(f"data.{name} must be positive, got {v!r}")
        if not self.max_gap_factor > 1.0:
            raise ConfigError(f"data.max_gap_factor must be > 1, got {self.max_gap_factor!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), for YAML/JSON.

        >>> DataConfig(classes=("a", "b")).to_dict()["classes"]
        ['a', 'b']
        """
        d = asdict(self)
        if d["classes"] is not None:
            d["classes"] = list(d["classes"])
        d["label_map"] = dict(d["label_map"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`.

        >>> c = DataConfig(format="cattle_ufro", label_map={"trotting": "walking"})
        >>> DataConfig.from_dict(c.to_dict()) == c
        True
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown data config keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        if d.get("classes") is not None:
            d["classes"] = tuple(d["classes"])
        if d.get("label_map") is None:
            d["label_map"] = {}
        return cls(**d)
