"""Windowing throughput on the larger shared data set, next to pandas alone reading the file.

Measures three stages, each timed on its own (best of ``--repeat``) and then run once more
under ``tracemalloc`` for its peak Python-heap allocation (numpy and pandas buffers are
traced):

1. ``pandas.read_csv``: pandas alone parsing the file (the floor for any CSV loader);
2. ``load_dataset``: read + checks + label map + resampling (the otariid file: per-session
   25 -> 20 Hz);
3. ``make_windows``: 5 s windows, hop 2.5 s, windows below 80 % one label dropped.

Usage::

    python benchmarks/windowing.py [--data FILE] [--repeat N]

``--data`` defaults to the shared otariid file, ``../shared/data/otariids_ladds/
otariids_ladds.csv.gz`` from the repository root. Output: the file's size and rows, the
recordings, samples and windows loaded, then per stage the seconds, the throughput (input rows
per second for stages 1 and 2, resampled samples per second for stage 3) and the peak traced
MiB; the ratio of windowing time to ``read_csv`` time, and the process's peak resident memory
(``ru_maxrss``). Nothing is committed in ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ethoedge.data import DataConfig, WindowConfig, load_dataset, make_windows

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "otariids_ladds" / "otariids_ladds.csv.gz"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, float]:
    """``(result, best seconds, peak traced MiB)``."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    del out
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, best, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT, help="data file (default: otariids)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    cfg = DataConfig(path=str(args.data))
    wcfg = WindowConfig(length_s=5.0, hop_s=2.5)

    df, t_pd, m_pd = timed(lambda: pd.read_csv(args.data), args.repeat)
    n_rows = len(df)
    del df
    ds, t_load, m_load = timed(lambda: load_dataset(cfg), args.repeat)
    w, t_win, m_win = timed(lambda: make_windows(ds, wcfg), args.repeat)
    n_samples = ds.n_samples
    rates = ", ".join(f"{r:g}" for r in sorted(set(ds.rates_hz)))

    print(f"file: {args.data} ({args.data.stat().st_size / 2**20:.1f} MiB), {n_rows:,} rows")
    print(
        f"loaded: {len(ds.recordings)} recordings, {n_samples:,} samples at {rates} Hz;"
        f" windows: {len(w):,} x 3 x {w.n_samples} ({w.X.nbytes / 2**20:.1f} MiB float32)"
    )
    print()
    print(f"{'stage':<16}{'seconds':>10}{'rows or samples/s':>20}{'peak traced MiB':>18}")
    for name, secs, n, mib in (
        ("pandas.read_csv", t_pd, n_rows, m_pd),
        ("load_dataset", t_load, n_rows, m_load),
        ("make_windows", t_win, n_samples, m_win),
    ):
        print(f"{name:<16}{secs:>10.3f}{n / secs:>20,.0f}{mib:>18.1f}")
    print()
    print(f"make_windows / pandas.read_csv time: {t_win / t_pd:.3f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
