"""Pictures of the answers (matplotlib, Agg): an ethogram per animal (behaviour colour bands
over local clock time, one row per local day: 0-24 h, or the hours a short recording covers)
and a stacked daily time-budget chart (one panel per animal, one bar per local day)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethoedge.experiment.bouts import split_days
from ethoedge.io import atomic_path


def import_matplotlib() -> None:
    """Import what the plots use (the slow part of a first plot: about half a second), e.g.
    in a helper process while the windows are still being classified."""
    import matplotlib.collections
    import matplotlib.figure
    import matplotlib.patches  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401


def _colours(behaviours: tuple[str, ...] | list[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(behaviours) <= 10 else "tab20"]
    return {b: cmap(i % cmap.N) for i, b in enumerate(behaviours)}


def _figure(**kw: Any) -> Any:
    """A figure outside pyplot (no GUI state to close, and a lighter import)."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def clock_range(x0: np.ndarray, x1: np.ndarray) -> tuple[float, float]:
    """Hours of the day an ethogram shows for bouts from ``x0`` to ``x1`` (local clock hours
    within their day): the whole day, 0-24, once the bouts reach over 12 hours of it; else
    from the whole hour before the first bout to the whole hour after the last (short
    recordings would be slivers on a 24 h axis).

    >>> clock_range(np.array([13.2, 14.4]), np.array([13.5, 15.7]))
    (13.0, 16.0)
    >>> clock_range(np.array([1.0]), np.array([20.0]))
    (0.0, 24.0)
    """
    if not len(x0):
        return 0.0, 24.0
    lo, hi = float(np.floor(x0.min())), float(np.ceil(x1.max()))
    if hi - lo > 12:
        return 0.0, 24.0
    return lo, max(hi, lo + 1.0)


COLUMNS = 8192  # an ethogram row's image columns across the hours shown


def raster(
    row: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    code: np.ndarray,
    n_rows: int,
    lo: float,
    hi: float,
    n_cols: int = COLUMNS,
) -> np.ndarray:
    """Behaviour codes on a grid of ``n_rows`` x ``n_cols``: column ``j`` of a row takes the
    code of the piece of that row whose ``[x0, x1)`` holds the column's centre (``lo + (j +
    0.5) (hi - lo) / n_cols``), -1 where none does. Pieces of one row must not overlap.

    >>> raster(np.array([0, 0, 1]), np.array([0.0, 2.0, 1.0]), np.array([2.0, 3.0, 4.0]),
    ...        np.array([5, 6, 7]), 2, 0.0, 4.0, 4).tolist()
    [[5, 5, 6, -1], [-1, 7, 7, 7]]
    """
    cells = n_rows * n_cols  # int32 indices: a year of rows is 3 M cells
    out = np.full(cells, -1, dtype=np.int32)
    if not len(row):
        return out.reshape(n_rows, n_cols)
    w = (hi - lo) / n_cols
    # first and one-past-last column whose centre lies in [x0, x1)
    c0 = np.clip(np.ceil((np.asarray(x0) - lo) / w - 0.5), 0, n_cols).astype(np.int64)
    c1 = np.clip(np.ceil((np.asarray(x1) - lo) / w - 0.5), 0, n_cols).astype(np.int64)
    keep = c1 > c0
    row, c0, c1, code = np.asarray(row)[keep], c0[keep], c1[keep], np.asarray(code)[keep]
    order = np.lexsort((c0, row))
    row, c0, c1, code = row[order], c0[order], c1[order], code[order]
    # each piece marks its first cell; a cell belongs to the last piece marked at or before it
    # (pieces in order along the flattened grid), if that piece reaches it
    owner = np.full(cells, -1, dtype=np.int32)
    owner[row * n_cols + c0] = np.arange(len(row), dtype=np.int32)
    np.maximum.accumulate(owner, out=owner)
    cell = np.arange(cells, dtype=np.int32)
    ok = owner >= 0
    k = owner[ok]
    inside = cell[ok] < row[k] * n_cols + c1[k]
    hit = np.flatnonzero(ok)[inside]
    out[hit] = code[k[inside]]
    return out.reshape(n_rows, n_cols)


def plot_ethogram(
    bouts: pd.DataFrame, animal: str, behaviours: tuple[str, ...], tz: str, path: Path
) -> Path:
    """One animal's bouts (``start``, ``end``, ``behaviour``) as colour bands per local day.

    Each day's band is an image of :data:`COLUMNS` columns across the hours shown (about 10 s
    each on a whole day; a column takes the behaviour at its centre), so drawing costs the
    same whatever the number of bouts."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    others = sorted(set(bouts["behaviour"]) - set(behaviours)) if len(bouts) else []
    colours = _colours([*behaviours, *others])
    i, day, s, e = (
        split_days(bouts["start"].to_numpy(float), bouts["end"].to_numpy(float), tz)
        if len(bouts)
        else (np.zeros(0, int), np.zeros(0, object), np.zeros(0), np.zeros(0))
    )
    days = sorted(set(day.tolist()))
    row = {d: k for k, d in enumerate(days)}
    fig = _figure(figsize=(10, 0.45 * max(len(days), 1) + 1.6))
    ax = fig.subplots()
    x0 = x1 = np.zeros(0)
    if len(i):
        beh = np.asarray(bouts["behaviour"].to_numpy(object), dtype=object)[i]
        local = pd.to_datetime(s, unit="s", utc=True).tz_convert(tz)
        midnight = (
            local.tz_localize(None)
            .normalize()
            .tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
        )
        x0 = (local - midnight) / pd.Timedelta(hours=1)
        x0 = np.asarray(x0, dtype=float)
        x1 = x0 + (e - s) / 3600.0
        y = np.array([row[d] for d in day], dtype=np.int64)
        code_of = {b: k for k, b in enumerate(colours)}
        code = np.array([code_of[b] for b in beh.tolist()], dtype=np.int64)
    lo_h, hi_h = clock_range(x0, x1)
    if len(i):
        grid = raster(y, x0, x1, code, len(days), lo_h, hi_h)
        palette = np.array([to_rgba(c) for c in colours.values()] + [(0, 0, 0, 0)])
        for r in range(len(days)):  # one band per day, with a gap between days
            ax.imshow(palette[grid[r]][None], aspect="auto", interpolation="nearest",
                      extent=(lo_h, hi_h, r + 0.4, r - 0.4))  # fmt: skip
    ax.set_xlim(lo_h, hi_h)
    span = hi_h - lo_h
    step = 3 if span >= 12 else 1 if span >= 3 else 0.25
    ax.set_xticks(np.arange(lo_h, hi_h + 1e-9, step))
    ax.set_xlabel(f"local time (h, {tz})")
    ax.set_yticks(range(len(days)), days)
    ax.set_ylim(len(days) - 0.5, -0.5)
    ax.set_title(f"ethogram: {animal}")
    # fixed margins, in inches (a layout engine measures every artist at each draw)
    w_in, h_in = fig.get_size_inches()
    fig.subplots_adjust(left=1.0 / w_in, right=1 - 0.15 / w_in, top=1 - 0.35 / h_in,
                        bottom=0.9 / h_in)  # fmt: skip
    handles = [Patch(color=colours[b], label=b) for b in colours]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    _save(fig, path)
    return path


def plot_budget(daily: pd.DataFrame, behaviours: tuple[str, ...], tz: str, path: Path) -> Path:
    """Stacked bars of hours per behaviour per local day, one panel per animal, on one scale:
    0-24 h where the busiest day has 12 h or more, else up to that day (minutes under an
    hour)."""
    animals = list(dict.fromkeys(daily["animal"].tolist())) or ["(none)"]
    others = sorted(set(daily["behaviour"]) - set(behaviours)) if len(daily) else []
    order = [*behaviours, *others]
    colours = _colours(order)
    n_days = daily.groupby("animal")["date"].nunique().max() if len(daily) else 1
    size = (max(6, 0.35 * n_days + 3), 1.9 * len(animals) + 1)
    fig = _figure(figsize=size)
    axes = fig.subplots(len(animals), 1, squeeze=False)
    # One scale for every panel: whole days on 0-24 h; short recordings (the busiest day
    # under 12 h) on their own scale, in minutes when it is under an hour.
    top = float(daily.groupby(["animal", "date"])["hours"].sum().max()) if len(daily) else 0.0
    scale, unit = (60.0, "minutes") if 0 < top < 1 else (1.0, "hours")
    for ax, a in zip(axes[:, 0], animals, strict=True):
        d = daily[daily["animal"] == a]
        wide = d.pivot_table(index="date", columns="behaviour", values="hours", aggfunc="sum")
        wide = wide.reindex(columns=[b for b in order if b in wide.columns], fill_value=0.0)
        bottom = np.zeros(len(wide))
        for b in wide.columns:
            v = wide[b].to_numpy() * scale
            ax.bar(range(len(wide)), v, bottom=bottom, color=colours[b], label=b, width=0.8)
            bottom += v
        ax.set_xticks(range(len(wide)), list(wide.index), rotation=45, ha="right", fontsize=7)
        if top >= 12:
            ax.set_ylim(0, 25)
            ax.set_yticks([0, 6, 12, 18, 24])
        else:
            ax.set_ylim(0, max(top * scale * 1.1, 1e-6))
        ax.set_ylabel(unit)
        ax.set_title(str(a), fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=7, ncol=min(len(order), 6), loc="lower right",
                      bbox_to_anchor=(1.0, 1.0), frameon=False)  # fmt: skip
    fig.suptitle(f"daily time budget (local dates, {tz})", fontsize=10)
    # fixed margins, in inches: rotated dates below each panel, titles and legend above
    w_in, h_in = size
    gap, top, bottom = 1.1, 0.8, 0.85
    axes_h = (h_in - top - bottom - gap * (len(animals) - 1)) / len(animals)
    fig.subplots_adjust(left=0.75 / w_in, right=1 - 0.2 / w_in, top=1 - top / h_in,
                        bottom=bottom / h_in, hspace=gap / axes_h)  # fmt: skip
    _save(fig, path)
    return path
