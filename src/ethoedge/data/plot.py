"""Plot a stretch of one animal's signal with coloured label bands."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from ethoedge.data.dataset import Dataset
from ethoedge.errors import ConfigError, DataError, unwritable
from ethoedge.io import atomic_path


def plot_recording(
    dataset: Dataset,
    animal: str,
    start_s: float,
    duration_s: float,
    path: str | Path,
    max_gap_factor: float = 1.5,
) -> Path:
    """Save a PNG of ``animal``'s three axes from ``start_s`` for ``duration_s`` seconds.

    ``start_s`` counts from the animal's first sample. Gaps (between bouts, or longer than
    ``max_gap_factor`` sample periods) are left blank; each label's stretches are shaded in
    one colour, with a legend. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"--duration must be a positive number of seconds, got {duration_s}")
    if not math.isfinite(start_s):
        raise ConfigError(f"--start must be a number of seconds, got {start_s}")
    if Path(path).suffix.lower() != ".png" and not Path(path).is_dir():  # a folder: below
        raise ConfigError(f"the plot is a PNG: give a file name ending in .png, got {path}")
    recs = dataset.for_animal(animal)
    if not recs:
        raise ConfigError(
            f"animal {animal!r} not in the data (animals: {list(dataset.animals)})",
            path=dataset.source,
        )
    t0 = min(float(r.t[0]) for r in recs)
    t_end = max(float(r.t[-1]) for r in recs) - t0
    stop_s = start_s + duration_s
    spans = f"0 to {t_end:g} s from its first sample"
    if start_s > t_end:
        raise DataError(
            f"--start {start_s:g} s is past the end of animal {animal!r}'s recording, which"
            f" spans {spans}",
            path=dataset.source,
        )
    if stop_s < 0:
        raise DataError(
            f"the stretch ends at {stop_s:g} s, before animal {animal!r}'s first sample (--start"
            f" counts from it; the recording spans {spans})",
            path=dataset.source,
        )
    # t0 added last: (t0 + start_s) + duration_s loses t0 beside a start_s of -1e20
    lo, hi = t0 + start_s, t0 + stop_s
    colours = {c: plt.get_cmap("Set2")(i % 8) for i, c in enumerate(dataset.class_names)}
    fig, ax = plt.subplots(figsize=(12, 4), dpi=110)
    seen: set[str] = set()
    n_shown = 0
    axis_lines: list = []
    for r in recs:
        m = (r.t >= lo) & (r.t <= hi)
        if not m.any():
            continue
        t, acc, lab = r.t[m] - t0, r.acc[m], r.labels[m]
        n_shown += int(m.sum())
        # Break the line at gaps.
        gap = np.flatnonzero(np.diff(t) > max_gap_factor / r.rate_hz) + 1
        tt = np.insert(t, gap, np.nan)
        for k, (name, col) in enumerate(
            zip(("x", "y", "z"), ("#222222", "#d62728", "#1f4e9c"), strict=True)
        ):
            line = ax.plot(tt, np.insert(acc[:, k], gap, np.nan), lw=0.8, color=col)
            if len(axis_lines) < 3 and k == len(axis_lines):
                line[0].set_label(f"a{name}")
                axis_lines.append(line[0])
        # Label bands: one span per run of equal labels.
        change = np.flatnonzero(lab[1:] != lab[:-1]) + 1
        edges = np.concatenate([[0], change, [len(lab)]])
        half = 0.5 / r.rate_hz
        for a, b in itertools.pairwise(edges):
            name = lab[a]
            if name is None:
                continue
            ax.axvspan(
                t[a] - half,
                t[b - 1] + half,
                color=colours.get(name, "grey"),
                alpha=0.45,
                lw=0,
                label=None if name in seen else name,
            )
            seen.add(name)
    if n_shown < 2:  # one sample draws no line
        plt.close(fig)
        raise DataError(
            f"animal {animal!r} has {'only one sample' if n_shown else 'no samples'} in the"
            f" {duration_s:g} s from {start_s:g} s (its recording spans {spans}, with gaps between"
            " bouts)",
            path=dataset.source,
        )
    # The axis spans the stretch as far as the recording goes: a --duration of 1e9 s would
    # squeeze the signal into the axis's first pixel.
    x_lo, x_hi = max(start_s, 0.0), min(stop_s, t_end)
    ax.set_xlabel(f"time since the animal's first sample (s); animal {animal}")
    ax.set_ylabel("acceleration (g)")
    ax.set_title(f"{dataset.name}: animal {animal}, {x_lo:g} to {x_hi:g} s")
    ax.set_xlim(x_lo, x_hi)
    ax.legend(loc="upper right", ncols=2, fontsize=8, framealpha=0.8)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    except OSError as e:
        raise unwritable(path, e, folder=False) from None
    finally:
        plt.close(fig)
    return path
