r"""Leave-one-animal-out dynamic fixed-point table: float vs quantized students per word length.

Measures, on a leave-one-animal-out run (``benchmarks/kd_loao.py --work RUN``, or any
``ethoedge run`` with protocol ``loao``), the pooled MCC of the cross-validated headline
students (``student``, ``student_kd``) after dynamic fixed-point quantization at each word
length of ``--bits``, beside the float students on the same test windows. Per seed the held-out
predictions of all folds are pooled into one MCC; mean and sd over seeds are reported.

How: ``RUN/config.yaml`` is run again in ``RUN`` with ``quantize: true`` and the settings
below (:func:`ethoedge.experiment.run`). Every fold model resumes from its finished
checkpoint in ``RUN/work`` (for a run made by the same ethoedge version), so nothing is
retrained; the run's quantization stage quantizes each student at every word length
(calibrated on its fold's training windows), scores the integer reference on its test
windows, and fine-tunes (QAT, with the fold's soft labels for ``student_kd``) where
post-training quantization at 8 bits loses more than ``--qat-threshold`` MCC (``--qat
auto``). ``RUN/results.json`` and ``RUN/report.md`` then also hold
``student_w{W}``/``student_kd_w{W}``. ``--train`` first trains (or resumes) the run in ``RUN``
from ``--config`` or ``--preset`` with protocol ``loao`` (hours).

Output: ``--out`` JSON with ``table`` (``{model}_float`` and ``{model}_w{W}``: ``mcc``,
``mcc_sd``, ``macro_f1``, ``accuracy``; for each W also ``word_bits``,
``delta_mcc_vs_float``, ``bytes`` of the weights (int8 storage for W <= 8, int16 above) and
``qat_folds``, the fold-seeds whose kept model was fine-tuned), ``criteria`` (W=16 within
0.01 MCC of float, W=8 within 0.03, for ``student_kd``), ``per_fold`` (the run's per-fold
entries of each quantized model), ``quant_config`` and ``seconds``. One line per table entry
is printed.

The committed files, on the run folders of ``kd_cattle_val1.json`` and ``kd_seals_val1.json``
(``--work`` of ``benchmarks/kd_loao.py``)::

    python benchmarks/dq_loao.py --run runs/kd_cattle_val1 --bits 16,12,8,6 \
        --out benchmarks/results/dq_cattle.json
    python benchmarks/dq_loao.py --run runs/kd_seals_val1 --bits 16,8 \
        --out benchmarks/results/dq_seals.json

They were written by an earlier form of this script that loaded the fold models from the run's
checkpoints and applied the same sweep (:func:`ethoedge.quantize.sweep.evaluate_word_lengths`,
same settings) itself; their ``per_fold`` is one flat list of rows (fold, model, seed, W,
method, MCC, fraction bits, agreement with float). Figures: ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ethoedge.config import RunConfig, load_yaml, preset
from ethoedge.experiment import run
from ethoedge.io import atomic_write_json

MODELS = ("student_kd", "student")


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one ``results["models"]`` entry."""
    return {
        "mcc": entry["mcc"],
        "mcc_sd": entry["mcc_std"],
        "macro_f1": entry["macro_f1"],
        "accuracy": entry["accuracy"],
    }


def dq_table(results: dict[str, Any], word_bits: tuple[int, ...]) -> dict[str, Any]:
    """Float and quantized entries per model, from a run's ``results.json``."""
    models = results["models"]
    table: dict[str, Any] = {}
    for base in MODELS:
        if base not in models:
            continue
        table[f"{base}_float"] = summary(models[base])
        for w in word_bits:
            e = models.get(f"{base}_w{w}")
            if e is None:
                continue
            table[f"{base}_w{w}"] = summary(e) | {
                "word_bits": w,
                "delta_mcc_vs_float": e["mcc"] - models[base]["mcc"],
                "bytes": e["params"] * (1 if w <= 8 else 2),
                "qat_folds": sum(pf.get("method") == "qat" for pf in e["per_fold"]),
            }
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="leave-one-animal-out run directory")
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--bits", default="16,12,8,6", help="word lengths, comma-separated")
    ap.add_argument("--qat", default="auto", choices=["auto", "off", "on"])
    ap.add_argument("--qat-threshold", type=float, default=0.02, help="MCC loss at W=8")
    ap.add_argument("--qat-epochs", type=int, default=5)
    ap.add_argument("--rule", default="max", choices=["max", "percentile"])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--train", action="store_true", help="train (or resume) the run first")
    ap.add_argument("--config", type=Path, default=None, help="config for --train")
    ap.add_argument("--preset", default="full", help="preset for --train without --config")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.train:
        cfg0 = load_yaml(args.config) if args.config else preset(args.preset)
        cfg: RunConfig = replace(cfg0, protocol="loao")
    elif (args.run / "config.yaml").is_file():
        cfg = load_yaml(args.run / "config.yaml")
    else:
        ap.error(f"{args.run} has no config.yaml: not a run directory (--train trains one)")
    if cfg.protocol != "loao":
        ap.error(f"{args.run}: protocol is {cfg.protocol!r}, not loao")
    # The run's own quantization settings, with the sweep's word lengths, rule and QAT policy.
    qcfg = replace(
        cfg.quant,
        word_bits=tuple(int(b) for b in args.bits.split(",")),
        rule=args.rule,
        qat={"auto": "auto", "off": False, "on": True}[args.qat],
        qat_threshold=args.qat_threshold,
        qat_epochs=args.qat_epochs,
    )
    t0 = time.perf_counter()
    results = run(replace(cfg, quantize=True, quant=qcfg), args.run, progress=False)
    table = dq_table(results, qcfg.word_bits)
    criteria = {}
    if "student_kd_w16" in table:
        criteria["w16_within_0.01"] = abs(table["student_kd_w16"]["delta_mcc_vs_float"]) <= 0.01
    if "student_kd_w8" in table:
        criteria["w8_within_0.03"] = abs(table["student_kd_w8"]["delta_mcc_vs_float"]) <= 0.03
    per_fold = {
        name: results["models"][name]["per_fold"] for name in table if not name.endswith("_float")
    }
    atomic_write_json(
        args.out,
        {
            "run": str(args.run),
            "dataset": results["dataset"],
            "protocol": "loao",
            "folds": results["folds"],
            "seeds": results["seeds"],
            "headline": "MCC pooled over folds per seed, mean and sd over seeds",
            "quant_config": asdict(qcfg),
            "table": table,
            "criteria": criteria,
            "per_fold": per_fold,
            "seconds": time.perf_counter() - t0,
        },
    )
    for k, v in table.items():
        d = f"  delta {v['delta_mcc_vs_float']:+.4f}" if "delta_mcc_vs_float" in v else ""
        print(f"{k:22s} MCC {v['mcc']:.4f} +- {v['mcc_sd']:.4f}{d}")
    print(criteria)
    return 0


if __name__ == "__main__":
    sys.exit(main())
