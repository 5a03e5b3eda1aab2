r"""Throughput of the integer-only reference beside float PyTorch, on the same windows.

Measures windows per second (best of ``--repeats``) of the float student (PyTorch forward on
normalised windows, ``--threads`` threads), the NumPy integer reference
(``ethoedge.quantize.reference.reference_logits``, the bit-exact oracle of the C) and the
simulated-quantized PyTorch graph (``ethoedge.quantize.rewrite.SimQuantStudent``) at W = 8
and 16. Windows: every window of ``--data`` (default: the bundled cattle subset, 5 s at 10 Hz:
L = 50). Model: a seeded untrained GRU-MLP of ``--hidden`` units (throughput does not depend
on the weights), or the student of ``--bundle``; its windows are then cut as the bundle was
trained (:func:`ethoedge.inference.windows_for_bundle`, from ``--data`` or, without it, from
that function's default data set).

Usage::

    python benchmarks/quant_throughput.py [--bundle DIR] [--data FILE] [--hidden 32]
        [--threads 2] [--repeats 3] [--out FILE.json]

The committed ``benchmarks/results/quant_throughput.json`` (2 CPU cores)::

    python benchmarks/quant_throughput.py --threads 2 \
        --out benchmarks/results/quant_throughput.json

Output (printed, and written to ``--out``): windows, window samples, hidden size, threads,
CPUs, machine, torch and numpy versions, and ``windows_per_s`` per engine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ethoedge.bundle import load_bundle
from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset, make_windows
from ethoedge.inference import windows_for_bundle
from ethoedge.io import atomic_write_json
from ethoedge.models import GRUStudent, StudentConfig
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.reference import quantize_input, reference_logits
from ethoedge.quantize.rewrite import SimQuantStudent


def best_rate(fn, n: int, repeats: int) -> float:
    """Windows per second of ``fn()`` over ``n`` windows, best of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle (RUN/model)")
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data file (default: the bundled subset; with --bundle: see windows_for_bundle)",
    )
    ap.add_argument("--hidden", type=int, default=32, help="H of the seeded student")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: print only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.bundle is not None:
        b = load_bundle(args.bundle)
        student, norm = b.student, b.normalizer
        win = windows_for_bundle(args.bundle, None if args.data is None else str(args.data))
    else:
        data = DataConfig(path=None if args.data is None else str(args.data))
        win = make_windows(load_dataset(data), WindowConfig())
        torch.manual_seed(0)
        student = GRUStudent(len(win.class_names), StudentConfig(hidden=args.hidden)).eval()
        norm = Normalizer.fit(win.X)
    n = len(win)
    x_norm = torch.from_numpy(norm.apply(win.X))
    x_int = quantize_input(win.X)

    def float_run() -> None:
        with torch.no_grad():
            student(x_norm)

    rows = {"float_torch": best_rate(float_run, n, args.repeats)}
    for w in (8, 16):
        q = quantize_student(student, norm, win.X, w)
        sim = SimQuantStudent(q)
        xt = torch.from_numpy(x_int)
        rows[f"int_reference_numpy_w{w}"] = best_rate(
            lambda q=q: reference_logits(q, x_int), n, args.repeats
        )
        rows[f"sim_quant_torch_w{w}"] = best_rate(lambda sim=sim, xt=xt: sim(xt), n, args.repeats)
    result = {
        "windows": n,
        "window_samples": win.n_samples,
        "hidden": student.cfg.hidden,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "windows_per_s": {k: round(v, 1) for k, v in rows.items()},
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
