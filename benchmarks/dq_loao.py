"""Leave-one-animal-out DQ table: the float vs the dynamic fixed-point student per word length.

Re-uses the students that an ``ethoedge run`` (e.g. ``benchmarks/kd_loao.py``, protocol
``loao``) trained per fold: ``RUN/work/{fold}_{model}_s{seed}.pt`` (their best weights) and
the teacher's soft labels ``RUN/work/{fold}_soft_labels.npz`` (for QAT with KD). Folds,
training/validation/test windows and the normaliser are rebuilt exactly as the run built
them (``RUN/config.yaml``). With ``--train``, the run is done first with that config
(``--preset``/``--config``; long: the lead schedules it).

Per fold, model and seed, :func:`ethoedge.quantize.sweep.evaluate_word_lengths` quantizes the
student at every word length (calibrated on the fold's training windows), with QAT where
post-training quantization at 8 bits loses more than ``--qat-threshold`` MCC. The headline
is the run's: per seed, the held-out predictions of all folds are pooled into one MCC; the
mean and sd over seeds are reported, beside the float student's on the same predictions.

Usage::

    python benchmarks/dq_loao.py --run runs/kd_cattle --out benchmarks/results/dq_cattle.json
    python benchmarks/dq_loao.py --run runs/kd_seals --out benchmarks/results/dq_seals.json
    python benchmarks/dq_loao.py --train --config cfg.yaml --run runs/x --out x.json

The committed ``dq_cattle.json``/``dq_seals.json`` quantize the students of the runs with one
validation animal (``kd_cattle_val1.json``/``kd_seals_val1.json``, work folders
``/work/kdruns/{cattle,seals}``, ``--bits 16,12,8,6`` and ``16,8``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ethoedge.config import RunConfig, load_yaml, preset
from ethoedge.data import load_dataset, make_windows
from ethoedge.distill.soft_labels import load_soft_labels
from ethoedge.evaluate.cv import mean_std
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.io import atomic_write_json
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.pipeline import fold_windows
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.sweep import evaluate_word_lengths, float_predict


def load_student(path: Path, n_classes: int, scfg: Any, n_channels: int) -> GRUStudent:
    """The kept (best-epoch) weights of a training checkpoint written by ``ethoedge.train.fit``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not state.get("done", False):
        raise SystemExit(f"{path}: training did not finish; complete the run first")
    model = GRUStudent(n_classes, scfg, n_channels=n_channels)
    model.load_state_dict(state["best_state"])
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="ethoedge run directory")
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--bits", default="16,12,8,6")
    ap.add_argument("--models", default="student_kd,student", help="model names of the run")
    ap.add_argument("--qat", default="auto", choices=["auto", "off", "on"])
    ap.add_argument("--qat-threshold", type=float, default=0.02)
    ap.add_argument("--qat-epochs", type=int, default=5)
    ap.add_argument("--rule", default="max", choices=["max", "percentile"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--folds", type=int, default=0, help="only the first N folds (smoke test)")
    ap.add_argument("--train", action="store_true", help="run the training first")
    ap.add_argument("--config", type=Path, default=None, help="config for --train")
    ap.add_argument("--preset", default="full", help="preset for --train without --config")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.train:
        from ethoedge.pipeline import run

        cfg0 = load_yaml(args.config) if args.config else preset(args.preset)
        run(replace(cfg0, protocol="loao"), args.run)
    cfg: RunConfig = load_yaml(args.run / "config.yaml")
    if cfg.protocol != "loao":
        raise SystemExit(f"{args.run}: protocol is {cfg.protocol!r}, not loao")
    work = args.run / "work"
    qcfg = QuantConfig(
        word_bits=tuple(int(b) for b in args.bits.split(",")),
        rule=args.rule,
        qat={"auto": "auto", "off": False, "on": True}[args.qat],
        qat_threshold=args.qat_threshold,
        qat_epochs=args.qat_epochs,
        kd_alpha=cfg.kd.alpha,
        kd_temperature=cfg.kd.temperature,
    )
    ds = load_dataset(cfg.data)
    w = make_windows(ds, cfg.window)
    names, C = w.class_names, len(w.class_names)
    splits = fold_windows(cfg, w)
    if args.folds > 0:
        splits = splits[: args.folds]
    models = args.models.split(",")
    # preds[model][seed][key] = list of (test_idx, pred) per fold; key "float" or W
    preds: dict[str, dict[int, dict[Any, list]]] = {}
    folds: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for split in splits:
        tr, va, te, norm = split.train, split.val, split.test, split.normalizer
        soft = load_soft_labels(work / f"{split.name}_soft_labels.npz")
        if not np.array_equal(soft.index, tr):
            raise SystemExit(f"{split.name}: soft labels do not match the training windows")
        for mname in models:
            suffix = mname.removeprefix("student_kd").removeprefix("student")
            scfg = cfg.student_configs()[suffix]
            for seed in cfg.seeds:
                student = load_student(
                    work / f"{split.name}_{mname}_s{seed}.pt", C, scfg, w.X.shape[1]
                )
                rows = evaluate_word_lengths(
                    student, norm, w.X[tr], w.X[te], w.y[te], replace(qcfg, seed=seed), names,
                    soft_labels=soft.logits if mname.startswith("student_kd") else None,
                    train_y=w.y[tr], val=(w.X[va], w.y[va]) if va is not None else None,
                )  # fmt: skip
                per = preds.setdefault(mname, {}).setdefault(seed, {})
                per.setdefault("float", []).append((te, float_predict(student, norm, w.X[te])))
                for r in rows:
                    per.setdefault(r["word_bits"], []).append((te, r["pred"]))
                    folds.append({
                        "fold": split.name, "model": mname, "seed": seed,
                        "word_bits": r["word_bits"], "method": r["method"],
                        "mcc": r["mcc"], "float_mcc": r["float_mcc"], "ptq": r["ptq"],
                        "qat": r["qat"], "bytes": r["bytes"], "frac_bits": r["frac_bits"],
                        "agreement": r["agreement"],
                    })  # fmt: skip
                print(f"{split.name} {mname} s{seed}: float {rows[0]['float_mcc']:.3f} "
                      + " ".join(f"W{r['word_bits']} {r['mcc']:.3f}({r['method']})" for r in rows),
                      flush=True)  # fmt: skip

    table: dict[str, Any] = {}
    for mname, by_seed in preds.items():
        keys = ["float", *qcfg.word_bits]
        for key in keys:
            pooled = []
            for _seed, per in by_seed.items():
                idx = np.concatenate([i for i, _ in per[key]])
                pred = np.concatenate([p for _, p in per[key]])
                pooled.append(classification_metrics(w.y[idx], pred, names))
            mcc_mean, mcc_sd = mean_std([m["mcc"] for m in pooled])
            entry = {
                "mcc": mcc_mean,
                "mcc_sd": mcc_sd,
                "macro_f1": float(np.mean([m["macro_f1"] for m in pooled])),
                "accuracy": float(np.mean([m["accuracy"] for m in pooled])),
            }
            if key != "float":
                entry["word_bits"] = key
                entry["delta_mcc_vs_float"] = mcc_mean - table[f"{mname}_float"]["mcc"]
                mine = [f for f in folds if f["model"] == mname and f["word_bits"] == key]
                entry["bytes"] = mine[0]["bytes"]
                entry["qat_folds"] = sum(f["method"] == "qat" for f in mine)
            table[f"{mname}_float" if key == "float" else f"{mname}_w{key}"] = entry
    criteria = {}
    if "student_kd_w16" in table:
        criteria["w16_within_0.01"] = abs(table["student_kd_w16"]["delta_mcc_vs_float"]) <= 0.01
    if "student_kd_w8" in table:
        criteria["w8_within_0.03"] = abs(table["student_kd_w8"]["delta_mcc_vs_float"]) <= 0.03
    result = {
        "run": str(args.run),
        "dataset": ds.name,
        "protocol": "loao",
        "folds": [s.name for s in splits],
        "seeds": list(cfg.seeds),
        "headline": "MCC pooled over folds per seed, mean and sd over seeds",
        "quant_config": qcfg.to_dict(),
        "table": table,
        "criteria": criteria,
        "per_fold": folds,
        "seconds": time.perf_counter() - t0,
    }
    atomic_write_json(args.out, result)
    for k, v in table.items():
        d = f"  delta {v['delta_mcc_vs_float']:+.4f}" if "delta_mcc_vs_float" in v else ""
        print(f"{k:22s} MCC {v['mcc']:.4f} +- {v['mcc_sd']:.4f}{d}")
    print(criteria)


if __name__ == "__main__":
    main()
