"""KD settings probe on a finished LOAO run: alpha and T for one student size, one seed.

    python benchmarks/kd_sweep.py --run /work/kdruns/cattle --hidden 16 --kd 0.9:4,0.5:2
    python benchmarks/kd_sweep.py --run RUN_B --ensemble RUN_A --hidden 16 --kd 0:1,0.5:4
    python benchmarks/kd_sweep.py --run RUN --consistent --hidden 16 --kd 0.5:4

Re-uses the run's per-fold soft labels (``work/{fold}_soft_labels.npz``: raw teacher logits,
so any T applies) and its student training settings (``config.yaml``); trains one student per
fold and KD setting (seed ``--seed``) and prints the pooled LOAO MCC of the weights the run's
rule keeps (best validation epoch, or the last one when the run has no validation animal).
``--ensemble`` adds the teachers of other finished runs on the same data and folds (the weights
each run kept): their tempered probabilities are averaged with the run's teacher's, per fold,
into the soft labels, and the ensemble's own test MCC is printed too. ``--consistent``: the
run's teacher (kept weights) scores each augmented batch the student sees instead of the stored
soft labels of the un-augmented windows (consistent distillation; about a teacher forward pass
per student batch). Compare with the run's
``student_h16``/``student_kd_h16`` of the same seed (``pooled_by_seed`` in its results). An
investigation of the KD targets, not a selection: the committed results use the run's alpha 0.5,
T 4.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ethoedge.config import RunConfig, load_yaml
from ethoedge.data import load_dataset, make_windows
from ethoedge.distill.soft_labels import load_soft_labels, predict_logits, softmax
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.io import atomic_write_json
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.models.resnet import ResNetTeacher
from ethoedge.pipeline import fold_windows
from ethoedge.train import KDConfig, fit, predict_proba, seed_everything


def load_teacher(run: Path, cfg: RunConfig, fold: str, n_classes: int, n_channels: int):
    """The teacher a finished run kept for ``fold`` (its checkpoint's kept weights), in eval."""
    teacher = ResNetTeacher(n_classes, cfg.teacher, n_channels=n_channels)
    state = torch.load(run / "work" / f"{fold}_teacher.pt", map_location="cpu", weights_only=True)
    teacher.load_state_dict(state["best_state"])
    return teacher.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--kd", default="0.9:4,0.5:2", help="alpha:T pairs, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ensemble", type=Path, nargs="*", default=[], help="other finished runs")
    ap.add_argument("--consistent", action="store_true", help="consistent distillation")
    ap.add_argument("--folds", default="", help="only these folds (comma-separated names)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--pool", type=Path, nargs="*", default=[],
                    help="only pool the per-fold predictions of earlier --out files")  # fmt: skip
    args = ap.parse_args(argv)
    if args.pool:
        return pool(args.run, args.pool)
    torch.set_num_threads(args.threads)
    cfg = load_yaml(args.run / "config.yaml")
    w = make_windows(load_dataset(cfg.data), cfg.window)
    C, names = len(w.class_names), w.class_names
    scfg = replace(cfg.student, hidden=args.hidden, mlp_hidden=None)
    tcfg = replace(cfg.student_train, seed=args.seed)
    splits = fold_windows(cfg, w)
    if args.folds:
        wanted = args.folds.split(",")
        unknown = sorted(set(wanted) - {s.name for s in splits})
        if unknown:
            ap.error(f"unknown folds {unknown}; the run has {[s.name for s in splits]}")
        splits = [s for s in splits if s.name in wanted]
    if args.consistent and args.ensemble:
        ap.error("--consistent uses the run's own teacher: give no --ensemble")
    others = []  # (config, {fold name: FoldWindows}) of the --ensemble runs
    for run in args.ensemble:
        ocfg = load_yaml(run / "config.yaml")
        if (ocfg.data, ocfg.window, ocfg.protocol) != (cfg.data, cfg.window, cfg.protocol):
            ap.error(f"{run}: not the same data, windows and protocol as {args.run}")
        others.append((run, ocfg, {f.name: f for f in fold_windows(ocfg, w)}))
    settings = [tuple(float(v) for v in s.split(":")) for s in args.kd.split(",")]
    parts: dict[str, list] = {}
    for split in splits:
        tr, va, te, norm = split.train, split.val, split.test, split.normalizer
        soft = load_soft_labels(args.run / "work" / f"{split.name}_soft_labels.npz")
        assert np.array_equal(soft.index, tr)
        train_logits, test_probs = [soft.logits], []
        for run, ocfg, ofolds in others:
            teacher = load_teacher(run, ocfg, split.name, C, w.X.shape[1])
            onorm = ofolds[split.name].normalizer
            train_logits.append(predict_logits(teacher, onorm.apply(w.X[tr])))
            test_probs.append(predict_proba(teacher, w.X[te], onorm))
        if others or args.consistent:
            teacher = load_teacher(args.run, cfg, split.name, C, w.X.shape[1])
        if others:
            test_probs.append(predict_proba(teacher, w.X[te], norm))
            ens = np.mean(test_probs, axis=0).argmax(1)
            parts.setdefault("teacher ensemble", []).append((te, ens))
        for alpha, T in settings:
            seed_everything(args.seed)
            model = GRUStudent(C, scfg, n_channels=w.X.shape[1])
            kd = KDConfig(alpha=alpha, temperature=T, consistent=args.consistent)
            # Ensemble soft labels: T * log of the mean tempered probabilities, so that
            # softmax(z / T) in the KD loss is exactly that mean.
            z = train_logits[0]
            if len(train_logits) > 1:
                mean_p = np.mean([softmax(zk, T).astype(np.float64) for zk in train_logits], 0)
                z = (T * np.log(mean_p)).astype(np.float32)
            res = fit(model, w.X[tr], w.y[tr], norm, tcfg,
                      X_val=None if va is None else w.X[va],
                      y_val=None if va is None else w.y[va],
                      kd=kd, teacher_logits=None if args.consistent else z,
                      teacher=teacher if args.consistent else None)  # fmt: skip
            best = predict_proba(model, w.X[te], norm).argmax(1)
            tag = f"alpha={alpha:g} T={T:g}" + (" consistent" if args.consistent else "")
            parts.setdefault(tag + " best", []).append((te, best))
            print(f"{split.name} {tag}: best epoch {res.best_epoch}", file=sys.stderr, flush=True)
    table = {}
    for tag, ps in parts.items():
        idx = np.concatenate([i for i, _ in ps])
        pred = np.concatenate([p for _, p in ps])
        table[tag] = classification_metrics(w.y[idx], pred, names)["mcc"]
        where = f"folds {args.folds}" if args.folds else "LOAO"
        print(f"H={args.hidden} seed {args.seed} {tag}: pooled {where} MCC {table[tag]:.3f}")
    if args.out:
        names_ = [s.name for s in splits]
        pred = {tag: {n: p.tolist() for n, (_, p) in zip(names_, ps, strict=True)}
                for tag, ps in parts.items()}  # fmt: skip
        atomic_write_json(args.out, {"run": str(args.run), "hidden": args.hidden,
                                        "ensemble": [str(r) for r in args.ensemble],
                                        "consistent": args.consistent,
                                        "folds": [s.name for s in splits],
                                        "seed": args.seed, "mcc": table,
                                        "pred": pred})  # fmt: skip
    return 0


def pool(run: Path, files: list[Path]) -> int:
    """Pooled MCC per setting over the folds of several probe outputs (same run, seed, size)."""
    cfg = load_yaml(run / "config.yaml")
    w = make_windows(load_dataset(cfg.data), cfg.window)
    tests = {s.name: s.test for s in fold_windows(cfg, w)}
    preds: dict[str, dict[str, list[int]]] = {}
    for f in files:
        d = json.loads(f.read_text())
        for tag, by_fold in d["pred"].items():
            for fold, p in by_fold.items():
                if fold in preds.setdefault(tag, {}):
                    raise SystemExit(f"{f}: fold {fold} of {tag!r} is in two files")
                preds[tag][fold] = p
    for tag, by_fold in preds.items():
        idx = np.concatenate([tests[f] for f in by_fold])
        pred = np.concatenate([np.asarray(p) for p in by_fold.values()])
        mcc = classification_metrics(w.y[idx], pred, w.class_names)["mcc"]
        print(f"{tag}: pooled MCC {mcc:.3f} over {len(by_fold)} folds ({', '.join(by_fold)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
