"""KD settings probe on a finished LOAO run: alpha and T for one student size, one seed.

    python benchmarks/kd_sweep.py --run /work/kdruns/cattle --hidden 16 --kd 0.9:4,0.5:2

Re-uses the run's per-fold soft labels (``work/{fold}_soft_labels.npz``: raw teacher logits,
so any T applies) and its student training settings (``config.yaml``); trains one student per
fold and KD setting (seed ``--seed``) and prints the pooled LOAO MCC of the weights the run's
rule keeps (best validation epoch). Compare with the run's ``student_h16``/``student_kd_h16``
of the same seed (``pooled_by_seed`` in its results). An investigation of the KD targets, not a
selection: the committed results use the run's alpha 0.5, T 4.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ethoedge.config import load_yaml
from ethoedge.data import load_dataset, make_windows
from ethoedge.distill.soft_labels import load_soft_labels
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.pipeline import fold_windows
from ethoedge.train import KDConfig, fit, predict_proba, seed_everything


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--kd", default="0.9:4,0.5:2", help="alpha:T pairs, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_yaml(args.run / "config.yaml")
    w = make_windows(load_dataset(cfg.data), cfg.window)
    C, names = len(w.class_names), w.class_names
    scfg = replace(cfg.student, hidden=args.hidden, mlp_hidden=None)
    tcfg = replace(cfg.student_train, seed=args.seed)
    splits = fold_windows(cfg, w)
    settings = [tuple(float(v) for v in s.split(":")) for s in args.kd.split(",")]
    parts: dict[str, list] = {}
    for split in splits:
        tr, va, te, norm = split.train, split.val, split.test, split.normalizer
        soft = load_soft_labels(args.run / "work" / f"{split.name}_soft_labels.npz")
        assert np.array_equal(soft.index, tr)
        for alpha, T in settings:
            seed_everything(args.seed)
            model = GRUStudent(C, scfg, n_channels=w.X.shape[1])
            kd = KDConfig(alpha=alpha, temperature=T)
            res = fit(model, w.X[tr], w.y[tr], norm, tcfg, X_val=w.X[va], y_val=w.y[va],
                      kd=kd, teacher_logits=soft.logits)  # fmt: skip
            best = predict_proba(model, w.X[te], norm).argmax(1)
            tag = f"alpha={alpha:g} T={T:g}"
            parts.setdefault(tag + " best", []).append((te, best))
            print(f"{split.name} {tag}: best epoch {res.best_epoch}", file=sys.stderr, flush=True)
    table = {}
    for tag, ps in parts.items():
        idx = np.concatenate([i for i, _ in ps])
        pred = np.concatenate([p for _, p in ps])
        table[tag] = classification_metrics(w.y[idx], pred, names)["mcc"]
        print(f"H={args.hidden} seed {args.seed} {tag}: pooled LOAO MCC {table[tag]:.3f}")
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "hidden": args.hidden,
                                        "seed": args.seed, "mcc": table}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
