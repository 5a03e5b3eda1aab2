r"""Does calibrating each animal's sensor orientation help the feature baseline?

Collars sit differently on each animal (turned on the neck, the box facing the other way), so
the same posture gives another gravity direction in the sensor frame; a model of single
windows cannot tell the mounting from one window. This probe gives the forest each animal's
mounting from that animal's own windows, without labels (what a deployed classifier could
estimate from a recording), and scores it leave-one-animal-out:

- ``as_is``: the baseline's features (``ethoedge.baseline.features``), as every run fits them;
- ``centred``: each feature minus its median over the animal's windows;
- ``rotated_mean``: every window of an animal turned by the smallest rotation that takes the
  animal's mean gravity direction (the mean of its windows' means) onto the mean of the
  training animals' directions (the held-out animal's own direction counts for itself only),
  then the features;
- ``rotated_median``: the same with the per-axis median of the windows' means (less moved by a
  few windows far from the rest).

The forest is the baseline's (300 trees, seed 0). Windows are those of the run config given
(the labelled, pure windows), so an animal's direction is estimated from the behaviours it
was labelled with: an animal labelled mostly in one behaviour gets that behaviour's posture as
its reference, which a long unlabelled recording would not give.

    python benchmarks/animal_calibration.py CONFIG.yaml [--json OUT.json]

Prints the fold MCC of every variant and the pooled MCC.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import matthews_corrcoef

VARIANTS = ("as_is", "centred", "rotated_mean", "rotated_median")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="an ethoedge run config (data and windows)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--trees", type=int, default=300)
    args = ap.parse_args(argv)

    from ethoedge.baseline import BaselineConfig
    from ethoedge.baseline.features import window_features
    from ethoedge.baseline.forest import make_estimator
    from ethoedge.config import load_yaml
    from ethoedge.data import load_dataset, make_windows
    from ethoedge.data.calibrate import rotation_onto

    cfg = load_yaml(args.config)
    w = make_windows(load_dataset(cfg.data), cfg.window)
    if w.X.shape[1] != 3:
        raise SystemExit(f"needs 3-axis windows, got {w.X.shape[1]} channels")
    X, y, animals = w.X.astype(np.float64), w.y, np.asarray(w.animal).astype(str)
    names = sorted(set(animals))
    F, _ = window_features(X, w.rate_hz)
    centred = F.copy()
    for a in names:
        m = animals == a
        centred[m] -= np.median(F[m], axis=0)
    means = X.mean(axis=2)  # (n, 3): each window's mean, its gravity direction
    direction = {
        "rotated_mean": {a: means[animals == a].mean(axis=0) for a in names},
        "rotated_median": {a: np.median(means[animals == a], axis=0) for a in names},
    }
    forest = BaselineConfig(n_estimators=args.trees)
    pred = {v: np.empty_like(y) for v in VARIANTS}
    per_fold: dict[str, dict[str, float]] = {}
    for test in names:
        tr, te = animals != test, animals == test
        feats = {"as_is": F, "centred": centred}
        for v, d in direction.items():
            ref = np.mean([d[a] for a in names if a != test], axis=0)
            Xr = np.empty_like(X)
            for a in names:
                m = animals == a
                Xr[m] = np.einsum("ij,njl->nil", rotation_onto(d[a], ref), X[m])
            feats[v] = window_features(Xr, w.rate_hz)[0]
        for v in VARIANTS:
            est = make_estimator(forest, seed=0, n_jobs=2).fit(feats[v][tr], y[tr])
            pred[v][te] = est.predict(feats[v][te])
        per_fold[test] = {v: float(matthews_corrcoef(y[te], pred[v][te])) for v in VARIANTS}
        counts = np.bincount(y[te], minlength=len(w.class_names)).tolist()
        cells = "  ".join(f"{v} {per_fold[test][v]:.3f}" for v in VARIANTS)
        print(f"{test}: {cells}  (windows per class {counts})", file=sys.stderr)
    pooled = {v: float(matthews_corrcoef(y, pred[v])) for v in VARIANTS}
    print(f"{args.config}: pooled MCC over {len(names)} animals: "
          + ", ".join(f"{v} {pooled[v]:.3f}" for v in VARIANTS))  # fmt: skip
    if args.json:
        doc = {"config": str(args.config), "classes": list(w.class_names),
               "pooled_mcc": pooled, "fold_mcc": per_fold}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
