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


def plot_ethogram(
    bouts: pd.DataFrame, animal: str, behaviours: tuple[str, ...], tz: str, path: Path
) -> Path:
    """One animal's bouts (``start``, ``end``, ``behaviour``) as colour bands per local day."""
    from matplotlib.collections import PolyCollection
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
    fig = _figure(figsize=(10, 0.45 * max(len(days), 1) + 1.9), layout="constrained")
    ax = fig.subplots()
    x0 = x1 = np.zeros(0)
    if len(i):
        beh = bouts["behaviour"].to_numpy(object)[i]
        local = pd.to_datetime(s, unit="s", utc=True).tz_convert(tz)
        midnight = (
            local.tz_localize(None)
            .normalize()
            .tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
        )
        x0 = (local - midnight) / pd.Timedelta(hours=1)
        x0 = np.asarray(x0, dtype=float)
        x1 = x0 + (e - s) / 3600.0
        y = np.array([row[d] for d in day], dtype=float)
        # One collection of rectangles per behaviour (a bar artist per bout is far slower:
        # a month of 2.5 s windows can have tens of thousands of bouts).
        for b in dict.fromkeys(beh.tolist()):
            m = beh == b
            lo, hi = y[m] - 0.4, y[m] + 0.4
            verts = np.stack(
                [np.stack(p, axis=1) for p in
                 ((x0[m], lo), (x1[m], lo), (x1[m], hi), (x0[m], hi))], axis=1
            )  # fmt: skip
            ax.add_collection(PolyCollection(verts, facecolors=[colours[b]], linewidths=0))
    lo_h, hi_h = clock_range(x0, x1)
    ax.set_xlim(lo_h, hi_h)
    span = hi_h - lo_h
    step = 3 if span >= 12 else 1 if span >= 3 else 0.25
    ax.set_xticks(np.arange(lo_h, hi_h + 1e-9, step))
    ax.set_xlabel(f"local time (h, {tz})")
    ax.set_yticks(range(len(days)), days)
    ax.set_ylim(len(days) - 0.5, -0.5)
    ax.set_title(f"ethogram: {animal}")
    handles = [Patch(color=colours[b], label=b) for b in colours]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6),
               fontsize=8, frameon=False)  # fmt: skip
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
    fig.tight_layout()
    _save(fig, path)
    return path
