r"""Leave-one-animal-out accuracy study on a shared data set: teacher, students, students+KD.

Measures the pooled leave-one-animal-out MCC (per seed, all folds' test windows pooled; mean and
sd over seeds) of the ResNet teacher and of GRU-MLP students of two sizes, trained plainly and
with knowledge distillation, and the paired KD - plain differences. One ``ethoedge`` run
(:func:`ethoedge.experiment.run`, protocol ``loao``, no deployment, no quantization) does the
work in ``--work``; a killed run resumes from its checkpoints there.

Output: ``--out`` is the run's ``results.json`` (the schema of ``ethoedge run``:
``models.teacher``, ``student``, ``student_kd``, ``student_h16``, ``student_kd_h16``;
``paired``; ``dataset``, ``folds``, ``seeds``) plus a ``benchmark`` entry (command, wall
time, threads, device, CPUs). The run's ``report.md`` with its figures and per-class tables is
copied to the folder named like ``--out`` without its suffix (``kd_cattle/report.md``). One
line per model is printed (pooled MCC +- sd, fold MCC, macro F1, parameters), then the paired
comparisons. ``benchmarks/dq_loao.py --run WORK`` adds the fixed-point sweep to such a run.

The committed results (2 CPU cores, no GPU, one torch thread per run)::

    COMMON="--seeds 3 --hidden 32 --sizes 16 --teacher-filters 64,128,128 \
            --teacher-epochs 8 --student-epochs 12 --patience 0 --schedule cosine \
            --batch 128 --threads 1"
    # kd_cattle.json, kd_seals.json: no validation animal, every training animal, last epoch
    python benchmarks/kd_loao.py --dataset cattle $COMMON --val-animals 0 --stride 2 \
        --teacher-stride 2 --work runs/kd_cattle --out benchmarks/results/kd_cattle.json
    python benchmarks/kd_loao.py --dataset seals $COMMON --val-animals 0 --stride 4 \
        --teacher-stride 4 --work runs/kd_seals --out benchmarks/results/kd_seals.json
    # kd_cattle_val1.json, kd_seals_val1.json: the epoch chosen on one validation animal
    python benchmarks/kd_loao.py --dataset cattle $COMMON --stride 2 --teacher-stride 2 \
        --work runs/kd_cattle_val1 --out benchmarks/results/kd_cattle_val1.json
    python benchmarks/kd_loao.py --dataset seals $COMMON --stride 4 --teacher-stride 4 \
        --work runs/kd_seals_val1 --out benchmarks/results/kd_seals_val1.json
    # kd_cattle_teacher_seed1.json (and seed2 with --first-seed 2): the same teacher with
    # another seed, with one H=16 student pair of that seed
    python benchmarks/kd_loao.py --dataset cattle --seeds 1 --first-seed 1 --hidden 16 \
        --teacher-filters 64,128,128 --teacher-epochs 8 --student-epochs 12 --patience 0 \
        --schedule cosine --batch 128 --threads 1 --val-animals 0 --stride 2 \
        --teacher-stride 2 --work runs/kd_cattle_t1 \
        --out benchmarks/results/kd_cattle_teacher_seed1.json

(``--work`` only says where checkpoints go; the command recorded in each file's ``benchmark``
entry names the folders actually used.) That is the published teacher (64/128/128 filters,
kernels 8/5/3, 522 k parameters), students H = 32 and H = 16 (plain and distilled, 3 seeds,
alpha 0.5, T 4), augmentation (rotation up to 30 degrees, scale 10 %, jitter 0.01 g), AdamW
with a per-epoch cosine schedule, every epoch run (patience 0). ``--val-animals 1`` keeps the
weights of the epoch with the best MCC on one held-out *training* animal per fold;
``--val-animals 0`` trains on every training animal and keeps the last epoch. Training windows
are thinned by ``--stride`` (cattle 2: non-overlapping 5 s windows; seals 4); test windows are
all kept. Seals are resampled to 10 Hz, so both data sets have 50-sample windows. Figures and
their discussion: ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ethoedge.config import (
    AugmentConfig,
    DataConfig,
    RunConfig,
    StudentConfig,
    TeacherConfig,
    TrainConfig,
    WindowConfig,
    preset,
    save_yaml,
)
from ethoedge.experiment import run
from ethoedge.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# name -> (default data file, loader format, resampling rate or None)
DATASETS = {
    "cattle": (SHARED / "cattle_collar_ufro" / "cattle_collar_ufro.csv.gz", "cattle_ufro", None),
    "seals": (SHARED / "otariids_ladds" / "otariids_ladds.csv.gz", "otariids_ladds", 10.0),
}


def build_config(args: argparse.Namespace) -> RunConfig:
    """The ``full`` preset with the study's data, sizes, training budget and protocol."""
    base = preset("full")
    default_path, fmt, rate_hz = DATASETS[args.dataset]
    data = DataConfig(path=str(args.data or default_path), format=fmt)
    filters = tuple(int(v) for v in args.teacher_filters.split(","))
    augment = AugmentConfig(
        rotate=args.rotate_deg > 0,
        max_angle_deg=args.rotate_deg,
        scale=args.scale,
        jitter=args.jitter,
    )

    def train(cfg: TrainConfig, epochs: int, lr: float) -> TrainConfig:
        """Settings shared by teacher and students; epochs and learning rate differ."""
        return replace(
            cfg,
            epochs=epochs,
            lr=lr,
            patience=args.patience,
            batch_size=args.batch,
            lr_schedule=args.schedule,
            monitor=args.monitor,
            augment=augment,
            device=args.device,
        )

    return replace(
        base,
        data=data,
        window=WindowConfig(length_s=5.0, hop_s=2.5, target_rate_hz=rate_hz),
        teacher=TeacherConfig(filters=filters, input=args.input),
        student_sizes=tuple(int(h) for h in args.sizes.split(",") if h),
        student=StudentConfig(hidden=args.hidden, input=args.input),
        teacher_train=train(base.teacher_train, args.teacher_epochs, args.teacher_lr),
        student_train=replace(
            train(base.student_train, args.student_epochs, args.student_lr),
            label_smoothing=args.label_smoothing,
        ),
        kd=replace(
            base.kd,
            alpha=args.alpha,
            temperature=args.temperature,
            soft_labels=args.soft_labels,
            cross_fit_groups=args.cross_fit_groups,
            baseline_weight=args.baseline_weight,
        ),
        executor=args.executor,
        workers=args.workers,
        job_threads=args.threads,
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
        val_animals=args.val_animals,
        train_stride=args.stride,
        teacher_stride=args.teacher_stride,
        deploy=False,
        quantize=False,  # accuracy only; benchmarks/dq_loao.py adds the fixed-point sweep
    )


def publish_report(work: Path, out: Path) -> None:
    """Copy the run's report, figures and per-class tables to ``out`` without its suffix
    (e.g. ``kd_cattle/report.md``), so that the report's image links work."""
    dest = out.with_suffix("")
    dest.mkdir(parents=True, exist_ok=True)
    for f in [work / "report.md", *work.glob("*.png"), *work.glob("per_class_*.csv")]:
        shutil.copyfile(f, dest / f.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data file (default: the shared file of --dataset, ../shared/data/...)",
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are FIRST..FIRST+SEEDS-1; the teacher uses the first (another teacher seed)",
    )
    ap.add_argument("--hidden", type=int, default=16, help="hidden size H of the student")
    ap.add_argument("--sizes", default="", help="extra student hidden sizes, e.g. 32")
    ap.add_argument("--teacher-filters", default="24,48,48")
    ap.add_argument("--stride", type=int, default=8, help="keep every N-th training window")
    ap.add_argument("--teacher-epochs", type=int, default=8)
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument("--patience", type=int, default=3, help="early-stopping patience; 0: off")
    ap.add_argument("--batch", type=int, default=128, help="batch size (teacher and student)")
    ap.add_argument("--teacher-stride", type=int, default=0, help="0: same as --stride")
    ap.add_argument("--teacher-lr", type=float, default=1e-3)
    ap.add_argument("--student-lr", type=float, default=3e-3)
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    ap.add_argument("--monitor", choices=("mcc", "loss"), default="mcc")
    ap.add_argument("--rotate-deg", type=float, default=30.0, help="augmentation; 0: off")
    ap.add_argument("--scale", type=float, default=0.1, help="augmentation scale range")
    ap.add_argument("--jitter", type=float, default=0.01, help="augmentation noise (g)")
    ap.add_argument("--alpha", type=float, default=0.5, help="KD weight of the soft term")
    ap.add_argument("--temperature", type=float, default=4.0, help="KD temperature")
    ap.add_argument(
        "--val-animals",
        type=int,
        default=1,
        help="training animals held out per fold to choose the epoch; 0: none, keep the last",
    )
    ap.add_argument(
        "--input",
        choices=("raw", "dynamic", "static_dynamic"),
        default="raw",
        help="input stage of teacher and students",
    )
    ap.add_argument(
        "--soft-labels", choices=("in_fold", "cross_fit", "consistent"), default="in_fold"
    )
    ap.add_argument(
        "--baseline-weight",
        type=float,
        default=0.0,
        help="ensemble teacher: weight of the feature baseline in the soft labels",
    )
    ap.add_argument("--cross-fit-groups", type=int, default=4, help="K of --soft-labels cross_fit")
    ap.add_argument(
        "--label-smoothing", type=float, default=0.0, help="of the plain students' loss"
    )
    ap.add_argument("--executor", choices=("serial", "processes", "ray"), default="serial")
    ap.add_argument("--workers", type=int, default=1, help="jobs at once (processes, ray)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--device", default="cpu", help="auto, cpu or cuda")
    ap.add_argument("--out", type=Path, required=True, help="results JSON file")
    ap.add_argument(
        "--work",
        type=Path,
        default=None,
        help="run directory (checkpoints; a killed run resumes); default: runs/<OUT stem>",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    cfg = build_config(args)
    work = args.work or ROOT / "runs" / args.out.stem
    work.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, work / "benchmark_config.yaml")
    t0 = time.perf_counter()
    results = run(cfg, work, progress=False)
    results["benchmark"] = {
        "command": "python benchmarks/kd_loao.py " + " ".join(argv or sys.argv[1:]),
        "wall_s": time.perf_counter() - t0,
        "torch_threads": args.threads,
        "device": args.device,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    atomic_write_json(args.out, results)
    publish_report(work, args.out)
    for name, e in results["models"].items():
        print(
            f"{name:18s} MCC {e['mcc']:.3f} ± {e['mcc_std']:.3f}  fold {e['mcc_fold_mean']:.3f}"
            f" ± {e['mcc_fold_std']:.3f}  F1 {e['macro_f1']:.3f}  params {e.get('params')}"
        )
    print(json.dumps(results["paired"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
