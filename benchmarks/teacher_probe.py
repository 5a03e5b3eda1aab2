"""Teacher probe on some folds of a finished LOAO run: window length and weight decay.

    python benchmarks/teacher_probe.py --run /work/kdruns2/cattle --window-s 10 \
        --folds loao-1217,loao-1219,loao-1319 --work /work/probe_w10 --out w10.json
    python benchmarks/teacher_probe.py --run /work/kdruns2/cattle --weight-decay 0.01 \
        --folds loao-1217,loao-1219,loao-1319 --work /work/probe_wd --out wd.json

Retrains, on the named folds, the run's teacher (its config, first seed) and its plain student
(``--hidden``, first seed) with one change: the window length (``--window-s``, hop half of it;
the run's strides kept, so a 10 s window with stride 2 still covers the training recordings
once) or the AdamW weight decay of both (``--weight-decay``). It prints the pooled MCC over
those folds of the run's own teacher and student (their kept weights, scored again) beside the
variant's. A longer window also changes the test set (fewer windows, impure ones dropped), so
the two MCCs are over the same animals but not the same windows. An investigation of the
targets on the test animals, not a selection: the committed results keep the run's settings.
Checkpoints in ``--work`` make a killed probe resume.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ethoedge.config import load_yaml
from ethoedge.data import load_dataset, make_windows
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.io import atomic_write_json
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.models.resnet import ResNetTeacher
from ethoedge.pipeline import fold_windows
from ethoedge.train import fit, predict_proba, seed_everything
from kd_sweep import load_teacher


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--folds", required=True, help="comma-separated fold names")
    ap.add_argument("--window-s", type=float, default=0.0, help="0: the run's")
    ap.add_argument("--weight-decay", type=float, default=-1.0, help="<0: the run's")
    ap.add_argument("--hidden", type=int, default=32, help="plain student's H")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    cfg = load_yaml(args.run / "config.yaml")
    var = cfg
    if args.window_s > 0:
        var = replace(var, window=replace(var.window, length_s=args.window_s,
                                          hop_s=args.window_s / 2))  # fmt: skip
    if args.weight_decay >= 0:
        wd = args.weight_decay
        var = replace(var, teacher_train=replace(var.teacher_train, weight_decay=wd),
                      student_train=replace(var.student_train, weight_decay=wd))  # fmt: skip
    wanted = args.folds.split(",")
    data = load_dataset(cfg.data)
    w_run, w_var = make_windows(data, cfg.window), make_windows(data, var.window)
    seed = cfg.seeds[0]
    C, nch = len(w_run.class_names), w_run.X.shape[1]
    scfg = replace(cfg.student, hidden=args.hidden, mlp_hidden=None)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    run_folds = {f.name: f for f in fold_windows(cfg, w_run)}
    var_folds = {f.name: f for f in fold_windows(var, w_var)}
    unknown = sorted(set(wanted) - set(run_folds))
    if unknown:
        ap.error(f"unknown folds {unknown}; the run has {sorted(run_folds)}")
    seconds = {}
    for name in wanted:
        rf, vf = run_folds[name], var_folds[name]
        # The run's own models on this fold (kept weights).
        teacher = load_teacher(args.run, cfg, name, C, nch)
        parts.setdefault("run teacher", []).append(
            (rf.test, predict_proba(teacher, w_run.X[rf.test], rf.normalizer).argmax(1))
        )
        suffix = "" if args.hidden == cfg.student.hidden else f"_h{args.hidden}"
        ck = args.run / "work" / f"{name}_student{suffix}_s{seed}.pt"
        student = GRUStudent(C, scfg, n_channels=nch)
        student.load_state_dict(torch.load(ck, map_location="cpu", weights_only=True)["best_state"])
        parts.setdefault("run student", []).append(
            (rf.test, predict_proba(student.eval(), w_run.X[rf.test], rf.normalizer).argmax(1))
        )
        # The variant, trained as the run trains (first seed, no validation data if none).
        variants = (
            ("teacher", lambda: ResNetTeacher(C, var.teacher, n_channels=nch), vf.teacher_train,
             replace(var.teacher_train, seed=seed)),
            ("student", lambda: GRUStudent(C, scfg, n_channels=nch), vf.train,
             replace(var.student_train, seed=seed)),
        )  # fmt: skip
        for kind, build, idx, tcfg in variants:
            seed_everything(seed)
            model = build()
            t0 = time.perf_counter()
            res = fit(model, w_var.X[idx], w_var.y[idx], vf.normalizer, tcfg,
                      X_val=None if vf.val is None else w_var.X[vf.val],
                      y_val=None if vf.val is None else w_var.y[vf.val],
                      checkpoint=args.work / f"{name}_{kind}.pt")  # fmt: skip
            seconds[f"{name} {kind}"] = time.perf_counter() - t0
            pred = predict_proba(model.eval(), w_var.X[vf.test], vf.normalizer).argmax(1)
            parts.setdefault(f"variant {kind}", []).append((vf.test, pred))
            print(f"{name} variant {kind}: best epoch {res.best_epoch} of {res.epochs_run}, "
                  f"{seconds[f'{name} {kind}']:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    table = {}
    for tag, ps in parts.items():
        w = w_run if tag.startswith("run") else w_var
        idx = np.concatenate([i for i, _ in ps])
        pred = np.concatenate([p for _, p in ps])
        table[tag] = {"mcc": classification_metrics(w.y[idx], pred, w.class_names)["mcc"],
                      "windows": len(idx)}  # fmt: skip
        print(f"{tag}: pooled MCC {table[tag]['mcc']:.3f} over {len(idx)} windows of {wanted}")
    if args.out:
        atomic_write_json(args.out, {
            "run": str(args.run), "folds": wanted, "seed": seed, "hidden": args.hidden,
            "window_s": var.window.length_s, "hop_s": var.window.hop_s,
            "weight_decay": var.teacher_train.weight_decay, "mcc": table, "seconds": seconds,
        })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
