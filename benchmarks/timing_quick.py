r"""Wall time of the quick preset on the bundled data, and of one fold of the full preset.

Measures ``ethoedge run --preset quick`` end to end (:func:`ethoedge.experiment.run` on the
bundled cattle subset: cross-validation, deployment models, quantization, C export and
host/QEMU checks) with its per-stage times, and, unless ``--skip-fold``, one
leave-one-animal-out fold at the ``full`` preset's settings (the teacher, its soft labels, the
feature baseline and every student x seed on 7 training animals, tested on the 8th: the
``full`` preset with ``protocol="holdout"`` and one test animal costs exactly that; no
deployment).

Usage::

    python benchmarks/timing_quick.py [--threads 2] [--skip-fold] [--work DIR] [--out FILE]

Runs start from an empty folder (``--work``, which must be empty or absent; default: a
temporary folder, removed at the end), so that nothing resumes from earlier checkpoints. The
committed ``benchmarks/results/timing_quick.json`` (2 CPU cores)::

    python benchmarks/timing_quick.py --threads 2 --skip-fold \
        > benchmarks/results/timing_quick.json

Output: a JSON object (printed, and written to ``--out``): threads, CPUs, the 1/5/15-minute
load averages before and after (the times depend on what else the machine runs),
``quick_s`` and ``quick_stages_s`` (the run's ``timings_s``), the quick run's MCC per model,
and ``full_fold_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from ethoedge.config import preset
from ethoedge.experiment import run
from ethoedge.io import atomic_write_json


def measure(work: Path, skip_fold: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    t0 = time.perf_counter()
    res = run(preset("quick"), work / "quick", progress=False)
    out["quick_s"] = time.perf_counter() - t0
    out["quick_stages_s"] = res["timings_s"]
    out["quick_mcc"] = {k: v["mcc"] for k, v in res["models"].items()}
    if not skip_fold:
        cfg = replace(preset("full"), protocol="holdout", deploy=False)
        t0 = time.perf_counter()
        run(cfg, work / "fold", progress=False)
        out["full_fold_s"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--skip-fold", action="store_true", help="time the quick preset only")
    ap.add_argument("--work", type=Path, default=None, help="empty folder for the runs")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: print only)")
    args = ap.parse_args(argv)
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        ap.error(f"{args.work} is not empty: the runs would resume instead of being timed")
    torch.set_num_threads(args.threads)
    out: dict[str, object] = {"threads": args.threads, "cpus": os.cpu_count(),
                              "load_avg_before": os.getloadavg()}  # fmt: skip
    if args.work is not None:
        out |= measure(args.work, args.skip_fold)
    else:
        with tempfile.TemporaryDirectory() as d:
            out |= measure(Path(d), args.skip_fold)
    out["load_avg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    if args.out is not None:
        atomic_write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
