"""The bundled data in the field's own layout: one logger file per animal plus BORIS intervals.

Splits the bundled default data (one table, a label per sample) into

* ``OUT/loggers/<animal>.csv``: one file per animal, columns ``timestamp, ax, ay, az,
  segment`` copied as text (no ``animal`` column: the file stem is the animal id; no labels);
* ``OUT/boris_aggregated.tsv``: a BORIS "aggregated events" export (tab-separated, one
  observation per animal, ``Start (s)``/``Stop (s)`` relative to the observation's media
  start) with one STATE event per run of equal labels, plus one POINT event per animal that
  the reader ignores;
* ``OUT/video_start.csv``: ``observation, start`` - when each observation's media started.

Interval edges lie half-way between two samples (half a period beyond a run's first or last
sample at a gap), so that rounding BORIS times to milliseconds moves no sample to another
interval; where two samples of one animal share a timestamp (two bouts meeting), the edge is
that timestamp, so both samples take the later bout's label (intervals of one animal cannot
overlap): a bout's last sample there may change label, or be dropped with the rare labels,
which changes no window of the bundled data.

Loading ``OUT/loggers`` with these labels (format ``cattle_ufro``) gives the same recordings
and windows as the single table (``tests/data/test_per_animal_layout.py``). Usage::

    python benchmarks/per_animal_layout.py OUT
    ethoedge data stats OUT/loggers --format cattle_ufro --labels OUT/boris_aggregated.tsv \\
        --video-start OUT/video_start.csv
    ethoedge run OUT/loggers --format cattle_ufro --labels OUT/boris_aggregated.tsv \\
        --video-start OUT/video_start.csv -o RUN_DIR
"""

from __future__ import annotations

import argparse
import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ethoedge.data import default_data_path

RATE_HZ = 10.0
GAP_FACTOR = 1.5
BORIS_COLUMNS = (
    "Observation id",
    "Observation date",
    "Description",
    "Observation type",
    "Source",
    "Total length",
    "FPS",
    "Subject",
    "Behavior",
    "Behavioral category",
    "Modifiers",
    "Behavior type",
    "Start (s)",
    "Stop (s)",
    "Duration (s)",
    "Comment start",
    "Comment stop",
)


def runs_to_intervals(
    t: np.ndarray, labels: np.ndarray, rate_hz: float = RATE_HZ
) -> list[tuple[float, float, str]]:
    """Half-open ``(start, end, label)`` intervals over one animal's samples (any order):
    one per run of equal labels in time order, broken at gaps; intervals that would cover no
    sample are left out.

    >>> runs_to_intervals(np.array([0.0, 0.1, 0.2, 0.3]), np.array(list("aabb")), 10.0)
    [(-0.05, 0.15, 'a'), (0.15, 0.35, 'b')]
    """
    order = np.argsort(t, kind="stable")
    ts, ls = t[order], labels[order]
    n = len(ts)
    gap = GAP_FACTOR / rate_hz
    half = 0.5 / rate_hz
    step = np.diff(ts)
    brk = np.flatnonzero((ls[1:] != ls[:-1]) | (step > gap)) + 1
    starts = np.concatenate([[0], brk])
    stops = np.concatenate([brk, [n]]) - 1  # last index of each run
    out = []
    for i, j in zip(starts, stops, strict=True):
        lo = (ts[i - 1] + ts[i]) / 2 if i > 0 and ts[i] - ts[i - 1] <= gap else ts[i] - half
        hi = (ts[j] + ts[j + 1]) / 2 if j + 1 < n and ts[j + 1] - ts[j] <= gap else ts[j] + half
        if hi > lo and ((ts >= lo) & (ts < hi)).any():
            out.append((round(float(lo), 6), round(float(hi), 6), str(ls[i])))
    return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _boris_row(
    obs: str,
    date: str,
    animal: str,
    total: str,
    behavior: str,
    kind: str,
    start: str,
    stop: str,
    duration: str,
) -> str:
    """One tab-separated line of a BORIS aggregated export (the columns of BORIS_COLUMNS)."""
    return "\t".join(
        [
            obs,
            date,
            "",
            "MEDIA",
            f"player #1:{animal}.mp4",
            total,
            "25.0",
            animal,
            behavior,
            "",
            "",
            kind,
            start,
            stop,
            duration,
            "",
            "",
        ]
    )


def write_layout(out: Path, source: Path | None = None) -> dict[str, Path]:
    """Write the per-animal layout of ``source`` (default: the bundled data) under ``out``.

    Returns the paths: ``loggers`` (folder), ``labels`` (BORIS TSV), ``video_start`` (CSV).
    """
    source = source or default_data_path()
    out = Path(out)
    loggers = out / "loggers"
    loggers.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if source.name.endswith(".gz") else open
    with opener(source, "rt", encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split(",")
        rows = [line.rstrip("\r\n").split(",") for line in f if line.strip()]
    col = {c: k for k, c in enumerate(header)}
    keep = [col[c] for c in ("timestamp", "ax", "ay", "az", "segment")]
    by_animal: dict[str, list[list[str]]] = {}
    for r in rows:
        by_animal.setdefault(r[col["animal"]], []).append(r)
    boris = ["\t".join(BORIS_COLUMNS)]
    video = ["observation,start"]
    for animal, rs in by_animal.items():
        lines = [",".join(header[k] for k in keep)]
        lines += [",".join(r[k] for k in keep) for r in rs]
        (loggers / f"{animal}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        t = np.array([float(r[col["timestamp"]]) for r in rs])
        lab = np.array([r[col["label"]] for r in rs], dtype=object)
        origin = float(np.floor(t.min())) - 60.0  # the camera starts a minute early
        obs = f"obs_{animal}"
        video.append(f"{obs},{_iso(origin)}")
        ivs = runs_to_intervals(t, lab)
        total = f"{ivs[-1][1] - origin:.3f}"
        date = _iso(origin)
        row = (obs, date, animal, total)
        for lo, hi, lb in ivs:
            boris.append(
                _boris_row(
                    *row, lb, "STATE", f"{lo - origin:.3f}", f"{hi - origin:.3f}", f"{hi - lo:.3f}"
                )
            )
        first = f"{ivs[0][0] - origin + 1.0:.3f}"
        boris.append(_boris_row(*row, "camera bumped", "POINT", first, first, "0.000"))
    labels = out / "boris_aggregated.tsv"
    labels.write_text("\n".join(boris) + "\n", encoding="utf-8")
    vs = out / "video_start.csv"
    vs.write_text("\n".join(video) + "\n", encoding="utf-8")
    return {"loggers": loggers, "labels": labels, "video_start": vs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--data", type=Path, default=None, help="source table (default: bundled)")
    args = ap.parse_args()
    paths = write_layout(args.out, args.data)
    for k, p in paths.items():
        print(f"{k}: {p}")


if __name__ == "__main__":
    main()
