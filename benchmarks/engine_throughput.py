r"""Windows per second of the three inference engines on every bundled window.

The engines of :class:`ethoedge.inference.Classifier`, each timed on ``decision_function`` of
the raw windows in g (so the integer engines include quantizing the input): ``float``
(PyTorch student, ``--threads`` threads, batches of ``--batch`` windows, default the
engine's own: with several threads whole batches run side by side), ``float_numpy`` (the same
student as :class:`~ethoedge.models.student_numpy.NumpyStudent`, what the float engine of a
bundle runs on the CPU; its largest logit difference from PyTorch is recorded), ``int`` (the
NumPy integer reference, :func:`ethoedge.quantize.reference.reference_logits`; its BLAS uses
the threads OpenBLAS is allowed, ``OPENBLAS_NUM_THREADS``, recorded in the output) and ``c``
(the exported C as a host shared library on ``--threads`` threads), the integer engines at
W = 8 and 16. Also timed: the plain int64 form
of the reference (``reference_logits_plain``, the speed of the reference before its float-BLAS
rewrite), unless ``--skip-plain``. The C library is built (or loaded from the cache) and every
engine warmed up on a few windows before timing; each figure is the median of ``--repeat``
calls over every window (default 5); ``c_equals_int`` checks the two integer engines' logits on
every window.

Model: the student of ``--bundle`` (its ``quantized/w{bits}.json`` where present, else
quantized here) with its windows cut as it was trained; or, by default, a seeded untrained
student of the ``quick`` preset's size and input stage (throughput does not depend on the
weights), quantized on the windows, over every window of the bundled data (``WindowConfig``
defaults: 5 s at 10 Hz, hop 2.5 s).

Usage::

    python benchmarks/engine_throughput.py [--bundle DIR] [--threads 2] [--limit N]
        [--skip-plain] [--out FILE.json]

On 2 quiet cores, for ``benchmarks/results/engine_throughput.json``::

    python benchmarks/engine_throughput.py --threads 2 \
        --out benchmarks/results/engine_throughput.json

Output (printed, and written to ``--out``): windows, window samples, hidden size, input
stage, threads, CPUs, machine, load averages before and after (the figures depend on what
else runs), versions, ``windows_per_s`` per engine and ``c_equals_int`` per word length.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ethoedge.bundle import load_bundle
from ethoedge.config import preset
from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset, make_windows
from ethoedge.export.host_engine import host_library
from ethoedge.inference import Classifier, windows_for_bundle
from ethoedge.io import atomic_write_json
from ethoedge.models import GRUStudent
from ethoedge.models.student_numpy import NumpyStudent
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import quantize_input, reference_logits_plain

REPEAT = [5]  # calls per figure (``--repeat``)


def timed(fn, X: np.ndarray) -> tuple[float, np.ndarray]:
    """Windows per second of ``fn(X)``: the median of ``--repeat`` calls (this machine's
    speed drifts between calls a fraction of a second long), and its result."""
    rates = []
    for _ in range(max(1, REPEAT[0])):
        t = time.perf_counter()
        out = fn(X)
        rates.append(len(X) / (time.perf_counter() - t))
    return float(np.median(rates)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle (RUN/model)")
    ap.add_argument("--threads", type=int, default=2, help="torch and C engine threads")
    ap.add_argument("--batch", type=int, default=None,
                    help="windows per float forward pass (default: the Classifier's)")  # fmt: skip
    ap.add_argument("--limit", type=int, default=None, help="first N windows only (smoke run)")
    ap.add_argument("--skip-plain", action="store_true", help="do not time the plain reference")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: print only)")
    ap.add_argument("--repeat", type=int, default=5, help="calls per figure (the median)")
    args = ap.parse_args()
    REPEAT[0] = args.repeat
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    quantized: dict[int, QuantizedStudent] = {}
    if args.bundle is not None:
        b = load_bundle(args.bundle)
        student, norm, names = b.student, b.normalizer, b.class_names
        win = windows_for_bundle(args.bundle)
        for w in (8, 16):
            path = args.bundle / "quantized" / f"w{w}.json"
            if path.is_file():
                quantized[w] = QuantizedStudent.load(path)
    else:
        win = make_windows(load_dataset(DataConfig()), WindowConfig())
        names = win.class_names
        torch.manual_seed(0)
        student = GRUStudent(len(names), preset("quick").student).eval()
        norm = Normalizer.fit(win.X)
    X = win.X if args.limit is None else win.X[: args.limit]
    for w in (8, 16):
        if w not in quantized:
            quantized[w] = quantize_student(student, norm, win.X, w, class_names=names)

    rows: dict[str, float] = {}
    fl = Classifier(student, norm, names, threads=args.threads,
                    **({} if args.batch is None else {"batch_size": args.batch}))  # fmt: skip
    fl.decision_function(X[: 4 * fl.batch_size])  # warm: the engine's threads started
    rows["float_torch"] = timed(fl.decision_function, X)[0]
    state = {k: v.detach().numpy() for k, v in student.state_dict().items()}
    fn = Classifier(NumpyStudent(asdict(student.cfg), state), norm, names, threads=args.threads)
    fn.decision_function(X[: 4 * fn.model.batch_size])
    rows["float_numpy"], z_np = timed(fn.decision_function, X)
    z_torch = fl.decision_function(X)
    same: dict[str, bool] = {}
    for w, q in quantized.items():
        host_library(q, X.shape[2])  # build or load the library before timing
        ci = Classifier(q, engine="int")
        cc = Classifier(q, engine="c", threads=args.threads)
        ci.decision_function(X[:8])
        cc.decision_function(X[:8])
        rows[f"int_w{w}"], z_int = timed(ci.decision_function, X)
        rows[f"c_w{w}"], z_c = timed(cc.decision_function, X)
        same[f"w{w}"] = bool(np.array_equal(z_int, z_c))
        if not args.skip_plain:
            x_int = quantize_input(X, q.in_frac)
            rows[f"int_plain_w{w}"] = timed(lambda x, q=q: reference_logits_plain(q, x), x_int)[0]
    result = {
        "windows": len(X),
        "window_samples": int(X.shape[2]),
        "hidden": int(student.cfg.hidden),
        "input_stage": quantized[8].input_stage,
        "model": str(args.bundle) if args.bundle is not None else "seeded quick-preset student",
        "threads": args.threads,
        "repeat": args.repeat,
        "float_batch": fl.batch_size,
        "blas_threads_env": {
            k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ
        },
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "windows_per_s": {k: round(v, 1) for k, v in rows.items()},
        "c_equals_int": same,
        "float_numpy_max_abs_diff": float(np.abs(z_np - z_torch).max()),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
