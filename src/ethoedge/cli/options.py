"""Options shared by several commands, defined once so that they are spelled, abbreviated and
described the same everywhere they apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

FORMATS_HELP = "auto, generic, cattle_ufro or otariids_ladds"


def format_opt(default: str | None = "auto") -> Any:
    """``--format``: the layout of a data file."""
    return typer.Option(default, "--format", help=f"Data layout: {FORMATS_HELP}.")


def units_opt() -> Any:
    """``--units``: units of the acceleration columns."""
    return typer.Option(
        None, "--units", help="Units of ax/ay/az: g or m/s2 (default: the format's)."
    )


def device_opt() -> Any:
    """``--device``: where PyTorch runs."""
    return typer.Option(None, "--device", help="auto, cpu or cuda (default: auto).")


def quiet_opt() -> Any:
    """``--quiet``/``-q``: no progress output."""
    return typer.Option(False, "--quiet", "-q", help="No progress bars or progress messages.")


def out_opt(help: str, default: Path | None = None) -> Any:
    """``--out``/``-o``: where a command writes."""
    return typer.Option(... if default is None else default, "--out", "-o", help=help)
