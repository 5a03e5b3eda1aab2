"""Leave-one-animal-out KD experiment on a shared data set: teacher, students, students+KD.

    python benchmarks/kd_loao.py --dataset cattle --seeds 3 --out benchmarks/results/kd_cattle.json

Writes the run's ``results.json`` (same schema as ``ethoedge run``: ``models.teacher``,
``student``, ``student_kd`` and per-size ``student_h16``/``student_kd_h16``; ``dataset``,
``protocol``, ``folds``, ``seeds``) to ``--out`` and the report beside it (``.md``). The full
run directory (figures, predictions, checkpoints; a killed run resumes) is ``--work``.

Compute budget (2 CPU cores shared with three other engineers' jobs, no GPU). The published
ResNet costs 25.9 M MACs per 50-sample window forward, about 3x that to train; measured on
this machine under that load, a 64/128/128 teacher trained at about 65 s per epoch on 1,300
windows and even a 32/64/64 teacher at 35-50 s per epoch on 750 windows, so LOAO at full
width would take hours. The defaults therefore keep the teacher's architecture (3 blocks,
kernels 8/5/3, BN, 1x1-conv+BN shortcuts, GAP) at reduced width (24/48/48 filters: 74 k
parameters, 3.7 M MACs per window; ``--teacher-filters 64,128,128`` for the published size);
one student size, H = 16 (the smallest size the targets name; 2.2 k parameters, 3 % of this
teacher, 0.4 % of the published one; ``--sizes 32`` adds H = 32); 5 s windows at 10 Hz
(seals resampled from 25/20 Hz to 10 Hz); training and validation windows thinned by
``--stride`` (cattle 8: every 4th non-overlapping window; test windows are all kept); at most
8 teacher epochs (batch 128, patience 3) and 10 student epochs (batch 256, patience 3), early
stopping on the MCC of one held-out *training* animal per fold. No setting was tuned on test
animals.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ethoedge.config import RunConfig, preset, save_yaml
from ethoedge.data.config import DataConfig
from ethoedge.data.windows import WindowConfig
from ethoedge.io import atomic_write_json
from ethoedge.models.gru_mlp import StudentConfig
from ethoedge.models.resnet import TeacherConfig
from ethoedge.pipeline import run

DATASETS = {
    "cattle": DataConfig(path="../shared/data/cattle_collar_ufro", format="cattle_ufro"),
    "seals": DataConfig(
        path="../shared/data/otariids_ladds", format="otariids_ladds", resample_hz=10.0
    ),
}


def build_config(args: argparse.Namespace) -> RunConfig:
    base = preset("full")
    root = Path(__file__).resolve().parents[1]
    data = DATASETS[args.dataset]
    data = replace(data, path=str((root / data.path).resolve()))
    filters = tuple(int(v) for v in args.teacher_filters.split(","))
    return replace(
        base,
        data=data,
        window=WindowConfig(length_s=5.0, hop_s=2.5),
        teacher=TeacherConfig(filters=filters),
        student_sizes=tuple(int(h) for h in args.sizes.split(",") if h),
        student=StudentConfig(hidden=args.hidden),
        teacher_train=replace(
            base.teacher_train,
            epochs=args.teacher_epochs,
            patience=args.patience,
            batch_size=args.batch,
            device=args.device,
        ),
        student_train=replace(
            base.student_train,
            epochs=args.student_epochs,
            patience=args.patience,
            batch_size=args.batch,
            device=args.device,
        ),
        seeds=tuple(range(args.seeds)),
        train_stride=args.stride,
        deploy=False,
        quantize=False,  # the KD comparison only (benchmarks/dq_loao.py covers quantization)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=16, help="hidden size H of the student")
    ap.add_argument("--sizes", default="", help="extra student hidden sizes, e.g. 32")
    ap.add_argument("--teacher-filters", default="24,48,48")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--teacher-epochs", type=int, default=8)
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128, help="batch size (teacher and student)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    cfg = build_config(args)
    work = args.work or Path("/tmp") / f"ethoedge_kd_{args.dataset}"
    work.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, work / "benchmark_config.yaml")
    t0 = time.perf_counter()
    results = run(cfg, work, progress=False)
    results["benchmark"] = {
        "command": "python benchmarks/kd_loao.py " + " ".join(argv or sys.argv[1:]),
        "wall_s": time.perf_counter() - t0,
        "torch_threads": args.threads,
        "device": args.device,
        "machine": "2 shared CPU cores (no GPU)",
    }
    atomic_write_json(args.out, results)
    shutil.copyfile(work / "report.md", args.out.with_suffix(".md"))
    m = results["models"]
    for name, e in m.items():
        print(
            f"{name:18s} MCC {e['mcc']:.3f} ± {e['mcc_std']:.3f}  fold {e['mcc_fold_mean']:.3f}"
            f" ± {e['mcc_fold_std']:.3f}  F1 {e['macro_f1']:.3f}  params {e['params']:,}"
        )
    print(json.dumps(results["paired"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
