"""The quantization and C-export stages of ``ethoedge run`` (called by
:func:`ethoedge.pipeline.run_windows` after the deployment bundle is trained).

- :func:`quantize_cv`: every cross-validated ``student``/``student_kd`` (the trained fold
  models, not retrained) is quantized at each ``cfg.quant.word_bits``, calibrated on its
  fold's training windows and scored by the integer reference on its test windows; pooled
  like the float models into ``student_w{W}``/``student_kd_w{W}``.
- :func:`export_deployment`: the deployment bundle ``DIR/model`` is quantized at
  ``cfg.export_bits`` (``DIR/model/quantized/w{W}.json``), exported to C (``DIR/c/w{W}/``),
  verified bit for bit against the integer reference (host: every window; emulated
  Cortex-M4/M3: ``cfg.qemu_windows``) and costed (flash, RAM, instructions).
- :func:`add_report_sections`: the DQ and on-device sections of ``report.md``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np

from ethoedge.errors import EthoedgeError
from ethoedge.evaluate.metrics import per_class_csv, save_confusion
from ethoedge.evaluate.report import md_table
from ethoedge.io import atomic_write_text
from ethoedge.models import model_cost
from ethoedge.pipeline import (
    Prediction,
    RunState,
    _csv_text,
    _model_for_cost,
    pooled_entry,
    predictions_frame,
)

log = logging.getLogger("ethoedge.pipeline")

QUANT_MODELS = ("student", "student_kd")
COST_KEYS = (
    "flash_bytes",
    "ram_bytes",
    "static_ram_bytes",
    "stack_bytes",
    "instructions",
    "instructions_per_mac",
    "est_time_ms",
    "est_energy_uj",
)

DQ_HEADER = ["model", "W (bits)", "bytes", "MCC", "sd", "ΔMCC vs float", "macro F1",
             "accuracy", "agreement w/ float", "method"]  # fmt: skip
COST_HEADER = ["W", "flash B", "RAM B", "of which stack B", "instructions", "instr/MAC",
               "time ms", "energy µJ"]  # fmt: skip


class VerificationError(EthoedgeError):
    """The exported C did not reproduce the integer reference."""


def _one_hot(pred: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(pred), n_classes))
    out[np.arange(len(pred)), pred] = 1.0
    return out


def quantize_cv(state: RunState) -> None:
    """Quantize the cross-validated students at every swept word length (see module doc)."""
    from ethoedge.distill.soft_labels import load_soft_labels
    from ethoedge.quantize.sweep import evaluate_word_lengths

    cfg, w = state.cfg, state.windows
    qcfg = cfg.quant
    C = len(w.class_names)
    t0 = time.perf_counter()
    preds: dict[str, list[Prediction]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for mname in QUANT_MODELS:
        for p in state.predictions.get(mname, []):
            model = state.fold_models.get((mname, p.fold, p.seed))
            if model is None:
                continue
            tr, va, te, norm = state.folds[p.fold]
            soft = None
            if qcfg.qat and mname == "student_kd":
                sl_path = state.work_dir / f"{p.fold}_soft_labels.npz"
                if sl_path.is_file():
                    soft = load_soft_labels(sl_path).logits
            res = evaluate_word_lengths(
                model,
                norm,
                w.X[tr],
                w.X[te],
                w.y[te],
                replace(qcfg, seed=qcfg.seed + p.seed),
                w.class_names,
                soft_labels=soft,
                train_y=w.y[tr],
                val=(w.X[va], w.y[va]) if va is not None else None,
            )
            for r in res:
                qname = f"{mname}_w{r['word_bits']}"
                preds.setdefault(qname, []).append(
                    Prediction(
                        p.fold, p.seed, te, _one_hot(r["pred"], C), p.best_epoch, p.epochs_run
                    )
                )
                rows.setdefault(qname, []).append(
                    {k: v for k, v in r.items() if k not in ("qmodel", "pred")}
                    | {"fold": p.fold, "seed": p.seed, "n_bytes": r["qmodel"].n_bytes()}
                )
    models = state.results["models"]
    L = w.n_samples
    for qname, plist in preds.items():
        base = qname.rsplit("_w", 1)[0]
        rs = rows[qname]
        cost = model_cost(_model_for_cost(base, cfg, C), L)
        cost["bytes"] = rs[0]["n_bytes"]
        entry = pooled_entry(w, plist, cost)
        entry["word_bits"] = rs[0]["word_bits"]
        entry["hidden"] = cfg.student.hidden
        entry["float_model"] = base
        entry["float_mcc"] = models[base]["mcc"] if base in models else None
        entry["methods"] = sorted({r["method"] for r in rs})
        entry["ptq_mcc_fold_mean"] = float(np.mean([r["ptq"]["mcc"] for r in rs]))
        qat = [r["qat"]["mcc"] for r in rs if r["qat"]]
        entry["qat_mcc_fold_mean"] = float(np.mean(qat)) if qat else None
        entry["agreement_with_float"] = float(np.mean([r["agreement"] for r in rs]))
        for pf, r in zip(entry["per_fold"], rs, strict=True):
            pf["method"] = r["method"]
            pf["frac_bits"] = r["frac_bits"]
        models[qname] = entry
        atomic_write_text(state.out_dir / f"per_class_{qname}.csv", per_class_csv(entry))
        save_confusion(
            entry["confusion"],
            w.class_names,
            state.out_dir / f"confusion_{qname}",
            f"{qname}: pooled over folds and seeds",
        )
    if preds:
        frames = [
            predictions_frame(w, p.test_idx, p.probs, {"model": m, "fold": p.fold, "seed": p.seed})
            for m, plist in preds.items()
            for p in plist
        ]
        import pandas as pd

        atomic_write_text(state.out_dir / "predictions_cv_quantized.csv",
                          _csv_text(pd.concat(frames)))  # fmt: skip
        _plot(state)
    state.timings["quantize_cv_s"] = time.perf_counter() - t0


def _plot(state: RunState) -> None:
    from ethoedge.quantize.sweep import plot_mcc_vs_bits

    models = state.results["models"]
    for base in QUANT_MODELS:
        qs = [e for n, e in models.items() if n.startswith(base + "_w") and n.count("_w") == 1]
        qs = [e for e in qs if e["float_model"] == base]
        if not qs or base not in models:
            continue
        rows = []
        for e in qs:
            qat_ran = e["qat_mcc_fold_mean"] is not None
            rows.append(
                {
                    "word_bits": e["word_bits"],
                    # Pooled MCC of what was used; where QAT ran, the PTQ point is the mean
                    # of the per-fold PTQ MCCs and the QAT point the pooled final MCC.
                    "ptq": {"mcc": e["ptq_mcc_fold_mean"] if qat_ran else e["mcc"]},
                    "qat": {"mcc": e["mcc"]} if qat_ran else None,
                }
            )
        plot_mcc_vs_bits(rows, models[base]["mcc"], state.out_dir / f"mcc_vs_bits_{base}.png",
                         title=f"{base}: held-out MCC per word length")  # fmt: skip


def export_deployment(state: RunState) -> None:
    """Quantize the deployment bundle at ``cfg.export_bits``, export C, verify it, cost it."""
    from ethoedge.export.deploy import export_verify_cost
    from ethoedge.quantize.bundle_quant import quantize_bundle
    from ethoedge.quantize.reference import quantize_input, reference_logits_batched

    cfg, w = state.cfg, state.windows
    if state.bundle is None or not cfg.export_bits:
        return
    t0 = time.perf_counter()
    bundle_dir = state.out_dir / "model"
    bits = tuple(sorted(cfg.export_bits, reverse=True))
    qcfg = replace(cfg.quant, word_bits=bits)
    qrows = quantize_bundle(bundle_dir, qcfg, windows=w)
    qemu = None if cfg.qemu == "auto" else bool(cfg.qemu)
    dep: dict[str, Any] = {"qemu": cfg.qemu, "qemu_windows": cfg.qemu_windows, "widths": {}}
    models = state.results["models"]
    for r in qrows:
        W = r["word_bits"]
        q = r["qmodel"]
        # The integer model's predictions on every window (what `classify --engine int` gives).
        logits = reference_logits_batched(q, quantize_input(w.X, q.in_frac))
        scores = logits.astype(np.float64) * 2.0 ** -q.frac("logits")
        probs = np.exp(scores - scores.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        df = predictions_frame(w, np.arange(len(w)), probs)
        df["label"] = np.asarray(w.class_names, dtype=object)[logits.argmax(1)]
        atomic_write_text(state.out_dir / f"model_predictions_w{W}.csv", _csv_text(df))
        c = export_verify_cost(
            bundle_dir, W, state.out_dir / "c" / f"w{W}", w.X, qemu=qemu,
            qemu_windows=cfg.qemu_windows, command="ethoedge run",
        )  # fmt: skip
        c.update(
            {
                "bytes": q.n_bytes(),
                "method": r["method"],
                "agreement_with_float": r["agreement"],
                "frac_bits": r["frac_bits"],
            }
        )
        dep["widths"][f"w{W}"] = c
        key = f"student_kd_w{W}"
        if key in models:
            models[key].update({k: c[k] for k in COST_KEYS if k in c})
            models[key]["verified"] = c["verified"]
    dep["verified"] = all(c["verified"] for c in dep["widths"].values())
    state.results["deployment"] = dep
    state.timings["export_verify_s"] = time.perf_counter() - t0


def check_verified(results: dict[str, Any], out_dir: Any) -> None:
    """Raise :class:`VerificationError` when the exported C disagreed anywhere."""
    dep = results.get("deployment")
    if not dep or dep.get("verified", True):
        return
    lines = []
    for wkey, c in dep["widths"].items():
        for target, v in c["verify"].items():
            if v["identical"] != v["windows"]:
                lines.append(
                    f"{wkey} {target}: {v['identical']}/{v['windows']} windows identical "
                    f"(first difference at window {v['first_diff']})"
                )
    raise VerificationError(
        "the exported C does not reproduce the integer reference: "
        + "; ".join(lines)
        + f". See {out_dir}/report.md; re-check with `ethoedge verify-c`."
    )


# ----------------------------------------------------------------------------- report


def add_report_sections(state: RunState) -> None:
    """DQ table, fraction bits, bytes per word length, MCC plot; on-device cost."""
    r, res = state.report, state.results
    models = res["models"]
    qnames = [n for n in models if "word_bits" in models[n]]
    timing = None
    if r.sections and r.sections[-1][0] == "Timing":
        timing = r.sections.pop()
    if qnames:
        rows = []
        for base in QUANT_MODELS:
            if base not in models:
                continue
            fb = models[base]
            rows.append([base, "float32", fb["bytes"], fb["mcc"], fb["mcc_std"], "",
                         fb["macro_f1"], fb["accuracy"], "", ""])  # fmt: skip
            qs = sorted(
                (n for n in qnames if models[n]["float_model"] == base),
                key=lambda n: -models[n]["word_bits"],
            )
            for n in qs:
                e = models[n]
                rows.append(
                    [
                        n,
                        e["word_bits"],
                        e["bytes"],
                        e["mcc"],
                        e["mcc_std"],
                        f"{e['mcc'] - fb['mcc']:+.3f}",
                        e["macro_f1"],
                        e["accuracy"],
                        f"{e['agreement_with_float']:.3f}",
                        "/".join(e["methods"]),
                    ]
                )
        q = state.cfg.quant
        body = (
            md_table(DQ_HEADER, rows)
            + "\n\nEvery cross-validated student is quantized (dynamic fixed point, "
            f"rule `{q.rule}`, QAT `{q.qat}`): calibrated on its fold's training windows, "
            "scored by the integer-only reference on the fold's test windows and pooled like "
            "the float models. `bytes`: the parameters at their storage width (the float "
            "row: float32). `agreement`: test windows whose class equals the float model's.\n\n"
            + "\n".join(
                f"![MCC vs word length, {b}](mcc_vs_bits_{b}.png)"
                for b in QUANT_MODELS
                if (state.out_dir / f"mcc_vs_bits_{b}.png").is_file()
            )
        )
        r.add("Dynamic fixed-point quantization", body)
    dep = res.get("deployment")
    if dep and dep["widths"]:
        widths = dep["widths"]
        tensors = list(next(iter(widths.values()))["frac_bits"])
        frows = [[t] + [c["frac_bits"][t] for c in widths.values()] for t in tensors]
        r.add(
            "Fraction bits of the deployment student",
            md_table(["tensor", *(f"W={c['word_bits']}" for c in widths.values())], frows)
            + "\n\nPer-tensor fraction bits of `model/quantized/w{W}.json` (calibrated on the "
            "windows the bundle was trained on); model bytes: "
            + ", ".join(f"W={c['word_bits']}: {c['bytes']:,} B" for c in widths.values())
            + f" (float32: {state.results['models'].get('student_kd', {}).get('bytes', 0):,} B).",
        )
        lines = []
        for c in widths.values():
            for target, v in c["verify"].items():
                ok = "identical" if v["identical"] == v["windows"] else "**MISMATCH**"
                lines.append(
                    f"- W={c['word_bits']} {target}: {v['identical']}/{v['windows']} windows "
                    f"identical ({ok})"
                )
        crow = []
        for c in widths.values():
            if "flash_bytes" in c:
                crow.append([c["word_bits"], c["flash_bytes"], c["ram_bytes"], c["stack_bytes"],
                             f"{c['instructions']:,}", c["instructions_per_mac"],
                             c["est_time_ms"], c["est_energy_uj"]])  # fmt: skip
        cost = (
            md_table(COST_HEADER, crow)
            + "\n\n"
            + str(next(c["assumptions"] for c in widths.values() if "assumptions" in c))
            if crow
            else "No cost figures: QEMU / arm-none-eabi-gcc not available "
            f"(qemu: `{dep['qemu']}`); the host check ran."
        )
        r.add(
            "On-device cost and verification",
            "C module per word length in `c/w{W}/` (from `model/`), checked against the integer "
            f"reference on every window on the host and on {dep['qemu_windows']} windows on "
            "the emulated Cortex-M4 (mps2-an386) and Cortex-M3 (mps2-an385):\n\n"
            + "\n".join(lines)
            + "\n\nCost of one classification on the emulated Cortex-M4 (flash: `.text` + "
            "`.rodata` of the model object; RAM: `.data` + `.bss` + painted peak stack):\n\n"
            + cost,
        )
    if timing is not None:
        r.sections.append(timing)
