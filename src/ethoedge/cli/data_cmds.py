"""``ethoedge data ...``: look at a data set (statistics and plots)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ethoedge.cli.app import app
from ethoedge.cli.options import (
    data_overrides,
    format_opt,
    labels_opt,
    labels_tz_opt,
    nan_policy_opt,
    out_opt,
    units_opt,
    unlabelled_opt,
    video_start_opt,
)

data_app = typer.Typer(
    help="Inspect a data set: statistics and signal plots.", rich_markup_mode=None
)
app.add_typer(data_app, name="data")

DATA_ARG = typer.Argument(
    None,
    metavar="DATA",
    help="Data file (CSV, CSV.gz or Parquet), a folder of per-animal files or a glob pattern"
    " ('logs/cow_*.csv'); omitted: the bundled default cattle subset.",
    show_default=False,
)
FORMAT_OPT = format_opt()
UNITS_OPT = units_opt()


def _load(data: Path | None, fmt: str, units: str | None, **labels: str | None):
    from ethoedge.data import DataConfig, load_dataset

    # unlabelled samples are kept and counted as "(unlabelled)" unless --unlabelled says else
    cfg = data_overrides(
        DataConfig(unlabelled="keep"), path=data, format=fmt, units=units, **labels
    )
    return load_dataset(cfg)


@data_app.command("stats")
def stats(
    data: Path | None = DATA_ARG,
    format: str = FORMAT_OPT,
    units: str | None = UNITS_OPT,
    window_s: float = typer.Option(5.0, "--window-s", help="Window length in seconds."),
    hop_s: float = typer.Option(2.5, "--hop-s", help="Hop between windows in seconds."),
    rate_hz: float | None = typer.Option(
        None, "--rate", help="Resample windows to this rate (Hz) first."
    ),
    labels: Path | None = labels_opt(),
    video_start: str | None = video_start_opt(),
    labels_tz: str | None = labels_tz_opt(),
    unlabelled: str | None = unlabelled_opt("keep: counted as '(unlabelled)'"),
    nan_policy: str | None = nan_policy_opt(),
) -> None:
    """Print per-animal and per-class counts, durations and windows per class (unlabelled
    samples and windows as their own class)."""
    from ethoedge.data import WindowConfig
    from ethoedge.data.stats import dataset_stats

    ds = _load(
        data,
        format,
        units,
        labels=labels,  # type: ignore[arg-type]
        video_start=video_start,
        tz=labels_tz,
        unlabelled=unlabelled,
        nan_policy=nan_policy,
    )
    st = dataset_stats(ds, WindowConfig(length_s=window_s, hop_s=hop_s, target_rate_hz=rate_hz))
    w = st.windows
    con = Console(markup=False)
    if not con.is_terminal:
        # piped or captured: don't squeeze the tables to 80 columns
        con = Console(width=160, markup=False)
    con.print(Text(ds.name, style="bold"), end="")
    con.print(
        f"  {ds.source}\n"
        f"{len(ds.animals)} animals, {len(ds.recordings)} segments, {ds.n_samples:,} samples,"
        f" rates {', '.join(f'{r:g}' for r in ds.rates_hz)} Hz, classes {list(ds.class_names)}\n"
        f"windows: {len(w):,} of {w.n_samples} samples ({w.n_samples / w.rate_hz:g} s at"
        f" {w.rate_hz:g} Hz), hop {hop_s:g} s",
        highlight=False,
    )
    for note in ds.notes:
        con.print(f"note: {note}", highlight=False)
    ta = Table(title="per animal")
    for col in ("animal", "segments", "samples", "duration", "windows", *w.class_names,
                "mean g (x, y, z)"):  # fmt: skip
        ta.add_column(col, justify="left" if col == "animal" else "right")
    pa = st.per_animal
    for animal, row in pa.iterrows():
        ta.add_row(
            str(animal),
            f"{int(row['segments']):,}",
            f"{int(row['samples']):,}",
            _dur(row["duration_s"]),
            f"{int(row['windows']):,}",
            *(f"{int(row[f'windows:{c}']):,}" for c in w.class_names),
            " ".join(f"{row[f'gravity_{a}']:+.2f}" for a in "xyz"),
        )
    ta.add_row(
        "total",
        f"{pa['segments'].sum():,}",
        f"{pa['samples'].sum():,}",
        _dur(pa["duration_s"].sum()),
        f"{pa['windows'].sum():,}",
        *(f"{pa[f'windows:{c}'].sum():,}" for c in w.class_names),
        "",
        style="bold",
    )
    con.print(ta)
    tc = Table(title="per class")
    for col in ("class", "samples", "duration", "animals", "segments", "windows"):
        tc.add_column(col, justify="left" if col == "class" else "right")
    for cls, row in st.per_class.iterrows():
        tc.add_row(
            str(cls),
            f"{int(row['samples']):,}",
            _dur(row["duration_s"]),
            f"{int(row['animals']):,}",
            f"{int(row['segments']):,}",
            f"{int(row['windows']):,}",
        )
    con.print(tc)


def _dur(seconds: float) -> str:
    """``1 h 02 min``-style duration.

    >>> _dur(3725.0), _dur(59.0)
    ('1 h 02 min', '59 s')
    """
    s = float(seconds)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


@data_app.command("plot")
def plot(
    data: Path | None = DATA_ARG,
    animal: str = typer.Option(..., "--animal", help="Animal id."),
    start: float = typer.Option(
        0.0, "--start", help="Start, seconds from the animal's first sample."
    ),
    duration: float = typer.Option(60.0, "--duration", help="Length of the stretch in seconds."),
    out: Path = out_opt("Output PNG file."),
    format: str = FORMAT_OPT,
    units: str | None = UNITS_OPT,
) -> None:
    """Save a stretch of one animal's signal (3 axes, in g) with coloured label bands."""
    from ethoedge.data.plot import plot_recording

    ds = _load(data, format, units)
    path = plot_recording(ds, animal, start, duration, out)
    typer.echo(f"wrote {path}")
