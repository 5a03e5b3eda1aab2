r"""Wall time and peak memory of ``ethoedge classify`` on long unlabelled recordings.

Generates per-animal files of unlabelled 10 Hz acceleration (no animal column: the file stem
is the animal id), 1, 4 and 16 animal-days by default (1 x 1, 2 x 2 and 4 x 4 animals x
days; one file per animal), as Parquet or CSV, written an hour at a time; then classifies
each size with ``python -m ethoedge classify BUNDLE DIR --out OUT --quiet`` in a subprocess,
serially and with ``--executor processes --workers 2``, ``--repeat`` times each (default 3)
and once more for memory, and records per size and executor: the median wall time of the
timed runs (and every one; the command's own wall time from start to exit, nothing else
measured meanwhile), windows, windows per second, the peak RSS of the largest single
process (``ru_maxrss`` of the command and its waited-for descendants, from ``wait4``), and,
in the extra run, the peak RSS and PSS summed over the process tree (sampled from
``/proc/PID/smaps_rollup`` every 0.1 s; Linux only, else None; PSS splits pages shared
between processes, e.g. the libraries each worker maps). Until the memory was sampled in a
run of its own, every timed run also carried the sampling and a wrapper process that
started the command (``classify_long_calibrated_3.json`` and earlier).

Model: the student of ``--bundle``, or a seeded untrained GRU-MLP of ``--hidden`` units over
5 s / 2.5 s windows at 10 Hz (speed does not depend on the weights).

Targets on 2 quiet cores: peak RSS < 600 MB at every size, time linear in length, at least
25,000 windows/s end to end with the float engine.

Usage::

    python benchmarks/classify_long.py [--sizes 1,4,16] [--format parquet|csv]
        [--bundle DIR] [--hidden 16] [--engine float] [--workers 2] [--day-hours 24]
        [--workdir DIR] [--repeat 3] [--out benchmarks/results/classify_long.json]

A smoke run on tiny "days" (3 minutes each)::

    python benchmarks/classify_long.py --sizes 1,4 --day-hours 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

T0 = 1_717_200_000.0  # 2024-06-01 00:00 UTC
LAYOUT = {1: (1, 1), 4: (2, 2), 16: (4, 4)}  # animal-days -> (animals, days)


def layout(size: int) -> tuple[int, int]:
    """(animals, days) for ``size`` animal-days (a square where it can be)."""
    if size in LAYOUT:
        return LAYOUT[size]
    a = int(np.sqrt(size))
    while size % a:
        a -= 1
    return a, size // a


def generate(folder: Path, size: int, fmt: str, rate: float, day_hours: float) -> int:
    """Write ``size`` animal-days of unlabelled recordings to ``folder``; returns samples."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    animals, days = layout(size)
    per_hour = round(3600 * rate)
    total = round(days * day_hours * 3600 * rate)
    n_written = 0
    for a in range(animals):
        rng = np.random.default_rng(a)
        path = folder / f"cow_{a:03d}.{'parquet' if fmt == 'parquet' else 'csv'}"
        writer = None
        for first in range(0, total, per_hour):
            n = min(per_hour, total - first)
            k = np.arange(first, first + n)
            phase = np.sin(2 * np.pi * k / (rate * 3600 * 3.0))[:, None]  # slow behaviour drift
            acc = rng.normal(scale=0.15, size=(n, 3)) + phase * [0.4, -0.3, 0.2] + [0, 0, 1]
            df = pd.DataFrame(
                {
                    "timestamp": T0 + k / rate,
                    "ax": acc[:, 0].astype(np.float32),
                    "ay": acc[:, 1].astype(np.float32),
                    "az": acc[:, 2].astype(np.float32),
                }
            )
            if fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            else:
                df.to_csv(path, mode="a", header=first == 0, index=False)
            n_written += n
        if writer is not None:
            writer.close()
    return n_written


def tiny_bundle(folder: Path, hidden: int) -> Path:
    """A seeded untrained student over the default windows at 10 Hz."""
    import torch

    from ethoedge.bundle import Bundle, save_bundle
    from ethoedge.data import Normalizer, WindowConfig
    from ethoedge.models import GRUStudent, StudentConfig

    torch.manual_seed(0)
    classes = ("grazing", "resting", "standing", "walking")
    student = GRUStudent(len(classes), StudentConfig(hidden=hidden))
    norm = Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3))
    return save_bundle(Bundle(student, norm, classes, WindowConfig(), 10.0), folder)


def _tree_memory(pid: int) -> tuple[int, int]:
    """Resident and proportional (shared pages split between the processes that map them)
    bytes of ``pid`` and its descendants (Linux /proc), 0 where unreadable."""
    rss, pss, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return rss, pss


def measure(cmd: list[str], *, sample: bool) -> dict:
    """Run ``cmd``: its wall time (from start to exit, nothing else in between), exit code and
    the peak RSS of its largest process (``ru_maxrss`` of the command and its waited-for
    descendants, from ``wait4``); with ``sample``, also the peak RSS and PSS of its process
    tree, read from /proc every 0.1 s on a thread (Linux only; that reading costs CPU beside
    the command, so timed runs leave it off)."""
    peak = [0, 0]
    linux = sample and Path("/proc/self/smaps_rollup").exists()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)

    def poll() -> None:
        while proc.returncode is None and Path(f"/proc/{proc.pid}").exists():
            rss, pss = _tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.1)

    th = threading.Thread(target=poll, daemon=True)
    if linux:
        th.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if linux:
        th.join()
    return {
        "rc": proc.returncode,
        "wall_s": round(wall, 3),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "tree_rss_mb": round(peak[0] / 2**20, 1) if linux else None,
        "tree_pss_mb": round(peak[1] / 2**20, 1) if linux else None,
    }


def _combine(timed: list[dict], sampled: dict) -> dict:
    """One row: the median wall time of the timed runs (the machine's speed drifts) and every
    one of them, the largest memory figures of all runs (the tree's from the sampled run),
    and a failing exit code if any."""
    walls = sorted(t["wall_s"] for t in timed)
    out: dict = {"rc": next((t["rc"] for t in [*timed, sampled] if t["rc"] != 0), 0)}
    out["wall_s"] = walls[len(walls) // 2] if len(walls) % 2 else round(
        (walls[len(walls) // 2 - 1] + walls[len(walls) // 2]) / 2, 3)  # fmt: skip
    out["wall_s_runs"] = [t["wall_s"] for t in timed]
    out["max_rss_mb"] = max(t["max_rss_mb"] for t in [*timed, sampled])
    out["tree_rss_mb"], out["tree_pss_mb"] = sampled["tree_rss_mb"], sampled["tree_pss_mb"]
    out["sampled_run_wall_s"] = sampled["wall_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,16", help="animal-days, comma-separated")
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--day-hours", type=float, default=24.0, help="hours per 'day' (smoke: <1)")
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--engine", default="float")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executors", default="serial,processes")
    ap.add_argument("--workdir", type=Path, default=None, help="keep data and outputs here")
    ap.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size and executor")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="classify_long."))
    work.mkdir(parents=True, exist_ok=True)
    bundle = args.bundle or tiny_bundle(work / "bundle", args.hidden)
    runs = []
    for size in [int(s) for s in args.sizes.split(",")]:
        data = work / f"data_{size}"
        t = time.perf_counter()
        samples = generate(data, size, args.format, args.rate, args.day_hours)
        gen_s = time.perf_counter() - t
        for ex in args.executors.split(","):
            out = work / f"out_{size}_{ex}"
            cmd = [sys.executable, "-m", "ethoedge", "classify", str(bundle), str(data),
                   "--out", str(out), "--quiet", "--engine", args.engine]  # fmt: skip
            if ex != "serial":
                cmd += ["--executor", ex, "--workers", str(args.workers)]
            # timed runs, then one run whose process tree's memory is sampled
            timed = [measure(cmd, sample=False) for _ in range(max(1, args.repeat))]
            m = _combine(timed, measure(cmd, sample=True))
            n_windows = 0
            if m["rc"] == 0:
                with open(out / "windows.csv") as f:
                    n_windows = sum(1 for _ in f) - 1
            row = {
                "animal_days": size,
                "animals_x_days": list(layout(size)),
                "day_hours": args.day_hours,
                "samples": samples,
                "executor": ex,
                "workers": 1 if ex == "serial" else args.workers,
                "windows": n_windows,
                "windows_per_s": round(n_windows / m["wall_s"], 1) if m["wall_s"] else None,
                "generate_s": round(gen_s, 2),
                **m,
            }
            runs.append(row)
            print(json.dumps(row))
    doc = {
        "what": "ethoedge classify on long unlabelled recordings",
        "format": args.format,
        "rate_hz": args.rate,
        "engine": args.engine,
        "bundle": str(args.bundle) if args.bundle else f"untrained GRU-MLP H={args.hidden}",
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "runs": runs,
    }
    if args.out is not None:
        from ethoedge.io import atomic_write_json

        atomic_write_json(args.out, doc)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
