"""Options shared by several commands, defined once so that they are spelled, abbreviated and
described the same everywhere they apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ethoedge.models.device import DEVICES

FORMATS_HELP = "auto, generic, cattle_ufro, otariids_ladds or movebank"


def format_opt(default: str | None = "auto") -> Any:
    """``--format``: the layout of a data file."""
    return typer.Option(default, "--format", help=f"Data layout: {FORMATS_HELP}.")


def units_opt() -> Any:
    """``--units``: units of the acceleration columns."""
    return typer.Option(
        None, "--units", help="Units of ax/ay/az: g or m/s2 (default: the format's)."
    )


def _device(value: str | None) -> str | None:
    if value is not None and value not in DEVICES:
        raise typer.BadParameter(f"must be auto, cpu or cuda, got {value!r}")
    return value


def device_opt() -> Any:
    """``--device``: where PyTorch runs."""
    return typer.Option(
        None, "--device", help="auto, cpu or cuda (default: auto).", callback=_device
    )


def quiet_opt() -> Any:
    """``--quiet``/``-q``: no progress output."""
    return typer.Option(False, "--quiet", "-q", help="No progress bars or progress messages.")


def out_opt(help: str, default: Path | None = None) -> Any:
    """``--out``/``-o``: where a command writes."""
    return typer.Option(... if default is None else default, "--out", "-o", help=help)


def labels_opt() -> Any:
    """``--labels``: an annotation file whose intervals label the samples."""
    return typer.Option(
        None,
        "--labels",
        help="Annotation intervals joined to the samples by time: an 'animal, start, end,"
        " label' table or a BORIS aggregated-events export (see docs/data.md).",
    )


def video_start_opt() -> Any:
    """``--video-start``: when relative (BORIS) annotation times start."""
    return typer.Option(
        None,
        "--video-start",
        help="Start of the annotated media for relative (BORIS) times: one ISO 8601"
        " date-time or a table 'observation, start'.",
    )


def labels_tz_opt() -> Any:
    """``--labels-tz``: time zone of naive annotation times (``--tz`` of ``classify`` is the
    local time zone of its answers, another concept)."""
    return typer.Option(
        None,
        "--labels-tz",
        help="Time zone of naive date-times in --labels / --video-start (e.g. Europe/Berlin).",
    )


def unlabelled_opt(default: str = "the config's, error") -> Any:
    """``--unlabelled``: what to do with samples without a label."""
    return typer.Option(
        None,
        "--unlabelled",
        help="Samples without a label (none in the file, or outside every annotation"
        f" interval): error, drop or keep (default: {default}).",
    )


def nan_policy_opt() -> Any:
    """``--nan-policy``: what to do with samples whose acceleration is NaN or infinite."""
    return typer.Option(
        None,
        "--nan-policy",
        help="Samples with NaN/inf acceleration: error, drop (a window never spans the gap) or"
        " interpolate (reads each file whole). Default: the config's, error.",
    )


def data_overrides(
    base: Any,
    *,
    path: Any = None,
    format: str | None = None,
    units: str | None = None,
    labels: Any = None,
    video_start: str | None = None,
    tz: str | None = None,
    unlabelled: str | None = None,
    nan_policy: str | None = None,
) -> Any:
    """``base`` (a DataConfig) with the command-line data options applied where given."""
    from dataclasses import replace

    from ethoedge.data.config import LabelsConfig

    changes: dict[str, Any] = {}
    if path is not None:
        changes["path"] = str(path)
    if format is not None:
        changes["format"] = format
    if units is not None:
        changes["units"] = units
    if unlabelled is not None:
        changes["unlabelled"] = unlabelled
    if nan_policy is not None:
        changes["nan_policy"] = nan_policy
    lab = base.labels
    if labels is not None:
        lab = LabelsConfig(path=str(labels))
    if (video_start is not None or tz is not None) and lab is None:
        from ethoedge.errors import ConfigError

        raise ConfigError("--video-start and --labels-tz need --labels (an annotation file)")
    if lab is not None:
        lab = replace(
            lab,
            **({"video_start": str(video_start)} if video_start is not None else {}),
            **({"tz": tz} if tz is not None else {}),
        )
    changes["labels"] = lab
    return replace(base, **changes)
