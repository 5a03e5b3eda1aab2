"""Throughput of the integer-only reference beside float PyTorch, on the same windows.

Usage::

    .venv/bin/python benchmarks/quant_throughput.py [--bundle DIR] [--hidden 32] [--threads 2]
        [--repeats 3] [--out benchmarks/results/quant_throughput.json]

Windows: every window of the bundled default cattle subset (5 s at 10 Hz: L = 50). Model:
the bundle's student, or a seeded untrained GRU-MLP of ``--hidden`` units (throughput does
not depend on the weights). Reported: windows per second (best of ``--repeats``) of the
float student (PyTorch, ``--threads`` threads), the NumPy integer reference
(``reference_logits``) and the simulated-quantized PyTorch graph (``SimQuantStudent``) at
W = 8 and 16.
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

from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset, make_windows
from ethoedge.io import atomic_write_json
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
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
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    win = make_windows(load_dataset(DataConfig()), WindowConfig())
    if args.bundle is not None:
        from ethoedge.bundle import load_bundle

        b = load_bundle(args.bundle)
        student, norm = b.student, b.normalizer
    else:
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
