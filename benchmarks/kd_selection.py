"""Which weights to keep: the best validation epoch or the last epoch of a finished LOAO run.

    python benchmarks/kd_selection.py --run /work/kdruns/cattle

A diagnostic of an ``ethoedge run`` / ``benchmarks/kd_loao.py`` work directory (protocol
``loao``): every training checkpoint ``work/{fold}_{model}[_s{seed}].pt`` holds both the weights
kept by early stopping (the epoch with the best MCC on the held-out *training* animal) and the
weights after the last epoch. This script scores both on each fold's test animal and prints
the pooled MCC per model (per seed: all folds' test windows pooled; mean and sd over seeds),
so one sees how much the one-animal validation choice helps or hurts. It reports; it selects
nothing (choosing by these numbers would be tuning on the test animals).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ethoedge.config import load_yaml
from ethoedge.data import load_dataset, make_windows
from ethoedge.evaluate.cv import mean_std
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.models.resnet import ResNetTeacher
from ethoedge.pipeline import fold_windows
from ethoedge.train import predict_proba


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="optional JSON output")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_yaml(args.run / "config.yaml")
    w = make_windows(load_dataset(cfg.data), cfg.window)
    C, names = len(w.class_names), w.class_names
    splits = fold_windows(cfg, w)
    models = {"teacher": None}
    for suffix, scfg in cfg.student_configs().items():
        models[f"student{suffix}"] = scfg
        models[f"student_kd{suffix}"] = scfg
    # preds[(model, which)][seed] = list of (test_idx, pred)
    preds: dict[tuple[str, str], dict[int, list]] = {}
    for split in splits:
        te, norm = split.test, split.normalizer
        for mname, scfg in models.items():
            seeds = [cfg.seeds[0]] if scfg is None else list(cfg.seeds)
            for seed in seeds:
                tag = "" if scfg is None else f"_s{seed}"
                f = f"{split.name}_{mname}{tag}.pt"
                state = torch.load(args.run / "work" / f, map_location="cpu", weights_only=True)
                for which, key in (("best", "best_state"), ("last", "model")):
                    model = ResNetTeacher(C, cfg.teacher) if scfg is None else GRUStudent(C, scfg)
                    model.load_state_dict(state[key])
                    model.eval()
                    p = predict_proba(model, w.X[te], norm).argmax(1)
                    preds.setdefault((mname, which), {}).setdefault(seed, []).append((te, p))
        print(split.name, "done", file=sys.stderr, flush=True)
    table: dict[str, dict[str, float]] = {}
    for (mname, which), by_seed in preds.items():
        mccs = []
        for parts in by_seed.values():
            idx = np.concatenate([i for i, _ in parts])
            pred = np.concatenate([p for _, p in parts])
            mccs.append(classification_metrics(w.y[idx], pred, names)["mcc"])
        m, sd = mean_std(mccs)
        table.setdefault(mname, {})[f"{which}_mcc"] = m
        table[mname][f"{which}_sd"] = sd
    print(f"{'model':16s} {'best-val epoch':>16s} {'last epoch':>16s}")
    for mname, e in table.items():
        print(f"{mname:16s} {e['best_mcc']:8.3f} ± {e['best_sd']:.3f} {e['last_mcc']:8.3f} ± "
              f"{e['last_sd']:.3f}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
