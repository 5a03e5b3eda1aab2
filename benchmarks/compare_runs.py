"""Side by side: the models of several finished ``ethoedge run`` folders, one markdown table.

For each run (a folder with ``results.json``, or such a file itself): pooled
leave-one-animal-out MCC (mean +- sd over seeds) of the baseline, the teacher, the ensemble
teacher and every float student, and the paired KD - plain differences of pooled MCC by seed
with their 95 % intervals. Optionally the quantized students' MCC.

    python benchmarks/compare_runs.py runs/v0_raw runs/v1_sd runs/v1_dyn [--quantized]
    python benchmarks/compare_runs.py benchmarks/results/bundled/v1_dyn.json ...

Prints the table on standard output; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FLOAT = ["baseline", "teacher", "ensemble", "student", "student_kd", "student_h16",
         "student_kd_h16", "student_h8", "student_kd_h8"]  # fmt: skip


def fmt(e: dict | None) -> str:
    if e is None:
        return "-"
    sd = f" ± {e['mcc_std']:.3f}" if e.get("n_seeds", 1) > 1 else ""
    return f"{e['mcc']:.3f}{sd}"


def paired(p: dict | None) -> str:
    if p is None:
        return "-"
    b = p["pooled_by_seed"]
    if b["n"] < 2 or b["ci_low"] is None:
        return f"{b['mean']:+.3f}"
    return f"{b['mean']:+.3f} [{b['ci_low']:+.3f}, {b['ci_high']:+.3f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "runs", nargs="+", type=Path, help="run folders (with results.json) or results files"
    )
    ap.add_argument("--quantized", action="store_true", help="also the quantized students")
    args = ap.parse_args(argv)
    docs = {}
    for r in args.runs:
        f = r / "results.json" if r.is_dir() else r
        if not f.is_file():
            raise SystemExit(f"{f}: not found (a finished run folder or its results.json?)")
        docs[r] = json.loads(f.read_text())
    names = [n for n in FLOAT if any(n in d["models"] for d in docs.values())]
    if args.quantized:
        names += sorted(
            {n for d in docs.values() for n in d["models"] if "_w" in n},
            key=lambda n: (n.split("_w")[0], -int(n.split("_w")[1])),
        )
    print("| model | " + " | ".join(r.stem if r.is_file() else r.name for r in args.runs) + " |")
    print("|---|" + "---:|" * len(args.runs))
    for n in names:
        print(f"| {n} | " + " | ".join(fmt(d["models"].get(n)) for d in docs.values()) + " |")
    pairs = sorted({k for d in docs.values() for k in d["paired"]})
    for k in pairs:
        cells = " | ".join(paired(d["paired"].get(k)) for d in docs.values())
        print(f"| {k.replace('_vs_', ' − ')} (Δ by seed) | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
