"""Wall time of the quick preset on the bundled data, and of one fold of the full preset.

    python benchmarks/timing_quick.py [--threads 2] [--skip-fold]

"One full fold" is one leave-one-animal-out fold with the ``full`` preset's settings (the
teacher, soft labels and every student x seed on 7 training animals, one of them for early
stopping, tested on the 8th): the ``full`` preset with ``protocol="holdout"`` and one test
animal costs exactly that. Prints a JSON object; numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace

import torch

from ethoedge.config import preset
from ethoedge.pipeline import run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-fold", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: dict[str, object] = {"threads": args.threads, "cpus": os.cpu_count(),
                              "load_avg_before": os.getloadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run(preset("quick"), os.path.join(d, "quick"), progress=False)
        out["quick_s"] = time.perf_counter() - t0
        out["quick_stages_s"] = res["timings_s"]
        out["quick_mcc"] = {k: v["mcc"] for k, v in res["models"].items()}
        if not args.skip_fold:
            cfg = replace(preset("full"), protocol="holdout", deploy=False)
            t0 = time.perf_counter()
            run(cfg, os.path.join(d, "fold"), progress=False)
            out["full_fold_s"] = time.perf_counter() - t0
    out["load_avg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
