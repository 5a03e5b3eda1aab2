r"""How much each model of a finished run loses when the collar sits at another angle.

A collar turned on the neck, or a sensor box mounted at another angle, rotates every sample
of that animal by the same fixed rotation. This probe takes a finished ``ethoedge run``
folder (its ``config.yaml`` and the per-fold checkpoints in ``work/``), and for every fold
scores the models on the held-out animal's windows turned by fixed rotations: a tilt of
``+-angle`` degrees about each of the two sensor axes that gravity does not lie along, a
tilt of twice that about each, and a turn of 90 degrees about the gravity axis (the box
facing sideways). The gravity axis is the axis of the largest absolute mean over the run's
windows (``z`` on the bundled cattle collars). Per rotation it prints the pooled MCC over
the folds (first seed), beside the MCC of the unturned windows (the run's own figure).

The students and the teacher are reloaded from their finished checkpoints (nothing is
trained); the feature baseline is refitted per fold as the run fits it (it keeps no model
object), which takes a few seconds per fold.

    python benchmarks/tilt_robustness.py runs/demo [--models baseline,teacher,student,student_kd]
        [--angle 20] [--json OUT.json]

Prints a markdown table; ``--json`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import matthews_corrcoef


def rotation(axis: int, deg: float) -> np.ndarray:
    """The 3 x 3 rotation by ``deg`` degrees about sensor axis ``axis`` (0 x, 1 y, 2 z)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def rotations(gravity_axis: int, angle: float) -> list[tuple[str, np.ndarray]]:
    """Named fixed rotations: none, +-angle and +2*angle about each non-gravity axis, and 90
    degrees about the gravity axis."""
    out = [("none", np.eye(3))]
    for ax in (k for k in range(3) if k != gravity_axis):
        for deg in (angle, -angle, 2 * angle):
            out.append((f"{'xyz'[ax]}{deg:+g}", rotation(ax, deg)))
    out.append((f"{'xyz'[gravity_axis]}+90", rotation(gravity_axis, 90.0)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished ethoedge run folder")
    ap.add_argument("--models", default="baseline,teacher,student,student_kd")
    ap.add_argument("--angle", type=float, default=20.0, help="tilt in degrees (default 20)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    import torch

    from ethoedge.baseline import FeatureBaseline
    from ethoedge.config import load_yaml
    from ethoedge.data import load_dataset, make_windows
    from ethoedge.experiment.folds import fold_windows
    from ethoedge.experiment.jobs import JobContext
    from ethoedge.inference import Classifier
    from finished_run import fold_model

    if not (args.run / "results.json").is_file():  # every fold's checkpoint is then finished
        raise SystemExit(f"{args.run}: no results.json (not a finished ethoedge run)")
    cfg = load_yaml(args.run / "config.yaml")
    w = make_windows(load_dataset(cfg.data), cfg.window)
    if w.X.shape[1] != 3:
        raise SystemExit(f"needs 3-axis windows, got {w.X.shape[1]} channels")
    folds = {f.name: f for f in fold_windows(cfg, w)}
    ctx = JobContext(cfg, w, folds, args.run / "work")
    gravity = int(np.argmax(np.abs(w.X.mean(axis=(0, 2)))))
    turns = rotations(gravity, args.angle)
    models = args.models.split(",")
    seed = cfg.seeds[0]
    torch.set_num_threads(2)
    y_all: list[np.ndarray] = []
    pred: dict[str, dict[str, list[np.ndarray]]] = {m: {n: [] for n, _ in turns} for m in models}
    for name, fold in folds.items():
        Xt = w.X[fold.test].astype(np.float64)
        y_all.append(w.y[fold.test])
        for m in models:
            if m == "baseline":
                assert cfg.baseline is not None
                fb = FeatureBaseline(cfg.baseline).fit(
                    w.X[fold.train], w.y[fold.train], w.rate_hz, seed,
                    n_classes=len(w.class_names),
                )  # fmt: skip
                predict = fb.predict
            else:
                model = fold_model(ctx, name, m, seed, args.run)
                predict = Classifier(model, fold.normalizer, w.class_names).predict
            for n, R in turns:
                Xr = np.einsum("ij,njl->nil", R, Xt).astype(np.float32)
                pred[m][n].append(np.asarray(predict(Xr)))
        print(f"{name} done", file=sys.stderr)
    y = np.concatenate(y_all)
    table = {
        m: {n: float(matthews_corrcoef(y, np.concatenate(pred[m][n]))) for n, _ in turns}
        for m in models
    }
    names = [n for n, _ in turns]
    tilts = [n for n in names if n != "none" and not n.endswith("+90")]
    small = [n for n in tilts if abs(float(n[1:])) == args.angle]
    print(f"pooled MCC over {len(folds)} folds, seed {seed}, held-out animals turned by a fixed "
          f"rotation (gravity along {'xyz'[gravity]}); {args.run}")  # fmt: skip
    print("| model | " + " | ".join(names) + f" | mean of +-{args.angle:g} | worst of +-"
          f"{args.angle:g} |")  # fmt: skip
    print("|---" * (len(names) + 3) + "|")
    for m, row in table.items():
        vals = [row[n] for n in small]
        cells = " | ".join(f"{row[n]:.3f}" for n in names)
        print(f"| {m} | {cells} | {np.mean(vals):.3f} | {min(vals):.3f} |")
    if args.json:
        doc = {"run": str(args.run), "angle": args.angle, "gravity_axis": "xyz"[gravity],
               "mcc": table}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
