r"""How a finished run's fold models do on the whole labelled recording of their held-out animal.

The bundled data set keeps a few thousand rows of each cow and class (an excerpt); the shared
copy of the same collar data holds each cow's whole labelled recording, with the balance of
behaviours the cow had (mostly grazing and resting). Animals a user brings are recorded that
way, so this probe scores each fold of a finished run (trained without its test animal) on
that animal's windows cut from the other data set, the way the run cuts windows (with
``window.calibrate: gravity``, each animal turned by the mean of its own windows there: the
whole recording's, not the excerpt's). Nothing is trained: the students and the teacher are
reloaded from the run's checkpoints (first seed); the forest is refitted per fold as the run
fits it, and once more on the windows as recorded (``baseline_as_recorded``: the forest a
user would fit without calibration).

``--gravity-from run`` turns each held-out animal by the mean of its windows in the run's own
data instead (the excerpt's mix of behaviours, as the training animals were turned): how much
of the difference comes from the direction estimated on another mix of behaviours.

    python benchmarks/heldout_recordings.py runs/demo \
        --data ../shared/data/cattle_collar_ufro/cattle_collar_ufro.csv.gz [--format cattle_ufro]
        [--models baseline,baseline_as_recorded,teacher,student,student_kd]
        [--gravity-from data|run] [--json OUT.json]

Prints per-animal and pooled MCC (markdown); ``--json`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import matthews_corrcoef


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished ethoedge run folder")
    ap.add_argument("--data", type=Path, required=True, help="the animals' whole recordings")
    ap.add_argument("--format", default=None, help="the data's format (default: the run's)")
    ap.add_argument("--models", default="baseline,baseline_as_recorded,teacher,student,student_kd")
    ap.add_argument(
        "--gravity-from", choices=("data", "run"), default="data",
        help="calibrated runs: each held-out animal's direction from its windows in --data"
        " (default) or in the run's data",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    import torch

    from ethoedge.baseline import FeatureBaseline
    from ethoedge.config import load_yaml
    from ethoedge.data import load_dataset, make_windows
    from ethoedge.data.calibrate import GravitySums, calibrate_windows, rotate
    from ethoedge.experiment.folds import fold_windows
    from ethoedge.experiment.jobs import JobContext
    from ethoedge.inference import Classifier
    from finished_run import fold_model

    if not (args.run / "results.json").is_file():
        raise SystemExit(f"{args.run}: no results.json (not a finished ethoedge run)")
    cfg = load_yaml(args.run / "config.yaml")
    other_data = replace(cfg.data, path=str(args.data), format=args.format or cfg.data.format)
    raw_cfg = replace(cfg.window, calibrate="none")
    as_recorded = (
        make_windows(load_dataset(cfg.data), raw_cfg),
        make_windows(load_dataset(other_data), raw_cfg),
    )
    w, other = as_recorded
    if other.class_names != w.class_names:
        raise SystemExit(f"classes differ: run {w.class_names}, --data {other.class_names}")
    if cfg.window.turned_onto is not None:  # each animal turned as the run turns its windows
        X, _ = calibrate_windows(w.X, w.animal, cfg.window.turned_onto)
        w = replace(w, X=X)
        src = as_recorded[0] if args.gravity_from == "run" else other
        rots = GravitySums.of_windows(src.X, src.animal).rotations(cfg.window.turned_onto)
        X = other.X.copy()
        for a in np.unique(other.animal):
            if a not in rots:
                raise SystemExit(f"animal {a} of --data is not in the run's data")
            sel = other.animal == a
            X[sel] = rotate(other.X[sel], rots[a])
        other = replace(other, X=X)
    models = args.models.split(",")
    folds = {f.name: f for f in fold_windows(cfg, w)}
    ctx = JobContext(cfg, w, folds, args.run / "work")
    seed = cfg.seeds[0]
    torch.set_num_threads(2)
    y_all: list[np.ndarray] = []
    pred: dict[str, list[np.ndarray]] = {m: [] for m in models}
    per_animal: dict[str, dict[str, object]] = {}
    for name, fold in folds.items():
        animals = np.unique(w.animal[fold.test])
        if len(animals) != 1:
            raise SystemExit(f"{name}: needs one test animal per fold, got {list(animals)}")
        animal = str(animals[0])
        if animal in set(w.animal[fold.train]):
            raise SystemExit(f"{name}: its test animal {animal} is among its training animals")
        sel = other.animal == animal
        if not sel.any():
            print(f"{name}: animal {animal} not in --data, skipped", file=sys.stderr)
            continue
        Xt, yt = other.X[sel], other.y[sel]
        y_all.append(yt)
        row: dict[str, object] = {
            "windows": int(sel.sum()),
            "per_class": {c: int((yt == k).sum()) for k, c in enumerate(other.class_names)},
        }
        for m in models:
            if m in ("baseline", "baseline_as_recorded"):
                assert cfg.baseline is not None
                # the run's training windows of the fold (the same order in both)
                src, dst = (w, other) if m == "baseline" else as_recorded
                fb = FeatureBaseline(cfg.baseline).fit(
                    src.X[fold.train], src.y[fold.train], src.rate_hz, seed,
                    n_classes=len(src.class_names),
                )  # fmt: skip
                p = np.asarray(fb.predict(dst.X[dst.animal == animal]))
            else:
                model = fold_model(ctx, name, m, seed, args.run)
                p = np.asarray(Classifier(model, fold.normalizer, w.class_names).predict(Xt))
            pred[m].append(p)
            row[m] = float(matthews_corrcoef(yt, p))
        per_animal[animal] = row
        print(f"{name} done", file=sys.stderr)
    if not y_all:
        raise SystemExit("no fold's test animal is in --data")
    y = np.concatenate(y_all)
    pooled = {m: float(matthews_corrcoef(y, np.concatenate(pred[m]))) for m in models}
    print(f"MCC on each held-out animal's windows from {args.data} (seed {seed}); {args.run}")
    print("| animal | windows | " + " | ".join(models) + " |")
    print("|---" * (len(models) + 2) + "|")
    for animal, row in per_animal.items():
        cells = " | ".join(f"{row[m]:.3f}" for m in models)
        print(f"| {animal} | {row['windows']} | {cells} |")
    print(f"| pooled | {len(y)} | " + " | ".join(f"{pooled[m]:.3f}" for m in models) + " |")
    if args.json:
        doc = {"run": str(args.run), "data": str(args.data), "seed": seed,
               "gravity_from": args.gravity_from, "pooled": pooled,
               "per_animal": per_animal}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
