"""Bit-exactness of the generated C on every window of a data set, at W=8 and W=16.

Measures whether the exported C computes exactly the integer scores of the NumPy integer
reference (``ethoedge.quantize.reference``), window by window, on realistic weight and
activation ranges: a GRU-MLP student (H=32) is trained briefly on all windows of the data set
(accuracy is not the point), quantized at W=8 and W=16 with calibration on those windows,
exported as C (into a temporary folder), compiled with the host gcc and run on every window,
in the window API, the streaming API (hop = L) and the streaming API with overlapping windows
(hop = L / 2, exported afresh; every overlapping window of the joined stream against the
reference), and the ``c`` engine (the batch kernels as a host library, with and without their
AVX2 versions) on every window. The student has the presets' ``static_dynamic`` input stage
unless ``--input`` says otherwise. With ``--qemu N`` the first N windows also run on the
emulated Cortex-M4 (``mps2-an386``) and Cortex-M3 (``mps2-an385``).

Usage::

    python benchmarks/c_bitexact_shared.py --dataset cattle    # ../shared/data cattle file
    python benchmarks/c_bitexact_shared.py --dataset seals     # ../shared/data otariid file
    python benchmarks/c_bitexact_shared.py --dataset default   # bundled subset
    python benchmarks/c_bitexact_shared.py --dataset cattle --qemu 200

Output: per word length and target, ``N/N windows identical; streaming mismatches K``, then
the wall time; exit status 1 on any difference. The output of the last runs (every window on
QEMU: the bundled subset with ``--qemu 3073``, cattle with ``--qemu 6128``, seals with
``--qemu 11723``) is in ``benchmarks/results/c_bitexact_shared.txt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset, make_windows
from ethoedge.export import ExportConfig, export_c, verify_c
from ethoedge.export.deploy import verify_half_hop
from ethoedge.export.emit import kernel_ops
from ethoedge.export.host_engine import host_library
from ethoedge.models import GRUStudent, StudentConfig
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.reference import quantize_input, reference_logits_batched
from ethoedge.train import AugmentConfig, TrainConfig, fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DATASETS = {
    "default": None,  # the bundled subset
    "cattle": SHARED / "cattle_collar_ufro" / "cattle_collar_ufro.csv.gz",
    "seals": SHARED / "otariids_ladds" / "otariids_ladds.csv.gz",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="cattle")
    ap.add_argument(
        "--data", type=Path, default=None, help="data file (default: the file of --dataset)"
    )
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--input",
        choices=("raw", "dynamic", "static_dynamic"),
        default="static_dynamic",
        help="the student's input stage",
    )
    ap.add_argument("--qemu", type=int, default=0, help="windows to run on QEMU M4/M3 (0: none)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    path = args.data or DATASETS[args.dataset]
    ds = load_dataset(DataConfig(path=None if path is None else str(path)))
    w = make_windows(ds, WindowConfig())
    print(f"{ds.name}: {len(w):,} windows of {w.n_samples} samples, classes {w.class_names}")
    seed_everything(0)
    student = GRUStudent(len(w.class_names), StudentConfig(hidden=32, input=args.input))
    norm = Normalizer.fit(w.X)
    cfg = TrainConfig(
        epochs=args.epochs,
        patience=0,
        batch_size=128,
        lr=3e-3,
        device="cpu",
        augment=AugmentConfig(rotate=False, scale=0.0, jitter=0.0),
    )
    fit(student, w.X, w.y, norm, cfg)
    failed = False
    for bits in (8, 16):
        q = quantize_student(student, norm, w.X, bits, class_names=w.class_names)
        X16 = quantize_input(w.X, q.in_frac)
        expected = reference_logits_batched(q, X16)
        with tempfile.TemporaryDirectory() as d:
            ecfg = ExportConfig(n_samples=w.n_samples)
            export_c(q, d, ecfg)
            print(f"W={bits:2d} kernels: {kernel_ops(q, ecfg)}")
            targets = [("host", len(w))]
            if args.qemu:
                targets += [("cortex-m4", args.qemu), ("cortex-m3", args.qemu)]
            for target, n in targets:
                r = verify_c(d, X16[:n], expected[:n], target=target)
                ok = r.n_identical == r.n_windows and not r.stream_mismatches
                failed |= not ok
                print(
                    f"W={bits:2d} {target:10s} {r.n_identical}/{r.n_windows} windows identical"
                    f"; streaming mismatches {r.stream_mismatches}"
                )
            cfg_half = ExportConfig(n_samples=w.n_samples)
            for target, n in targets:
                for r in verify_half_hop(q, cfg_half, X16[:n], (target,)):
                    ok = r.n_identical == r.n_windows
                    failed |= not ok
                    print(f"W={bits:2d} {r.target:10s} {r.api}: {r.n_identical}/{r.n_windows}"
                          " windows identical")  # fmt: skip
        # the c engine (batch kernels, with their AVX2 versions where they run, and without)
        lib = host_library(q, w.n_samples)
        for on in (True, False):
            lib.set_simd(on)
            same = int((lib.logits(X16, threads=2) == expected).all(axis=1).sum())
            failed |= same != len(w)
            parts = [k for k in ("matvec", "update") if getattr(lib, f"simd_{k}")]
            kind = "AVX2 " + " and ".join(parts) if parts else "plain loops"
            print(f"W={bits:2d} c engine   ({kind}): {same}/{len(w)} windows identical")
    print(f"wall {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
