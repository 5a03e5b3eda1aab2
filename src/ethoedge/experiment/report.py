"""Stage 5 of a run: the writers. ``report.md`` (its sections in the order of
:data:`SECTIONS`, stated here once), ``results.json``, per-class and confusion CSVs, the
predictions CSVs and the plots. Nothing here computes a result; everything is read from
:class:`~ethoedge.experiment.aggregate.Results`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethoedge.config import RunConfig
from ethoedge.data.windows import Windows
from ethoedge.evaluate.metrics import per_class_csv, save_confusion
from ethoedge.evaluate.report import Report, md_table
from ethoedge.experiment.aggregate import HEADLINE, Prediction, Results, sorted_models
from ethoedge.experiment.deploy import QUANTIZED_BASES
from ethoedge.experiment.keys import BASELINE, ENSEMBLE, ModelKey
from ethoedge.io import atomic_path, atomic_write_json, atomic_write_text, remove_stale_outputs

DQ_HEADER = ["model", "W (bits)", "bytes", "MCC", "sd", "ΔMCC vs float", "macro F1",
             "accuracy", "agreement w/ float", "method"]  # fmt: skip
COST_HEADER = ["W", "core", "flash B", "RAM B", "of which stack B", "instructions",
               "instr/MAC", "time ms", "energy µJ"]  # fmt: skip


@dataclass(frozen=True)
class ReportInput:
    """What the report reads besides the results."""

    results: Results
    cfg: RunConfig
    windows: Windows
    out_dir: Path
    bundle_meta: dict[str, Any] | None = None


# ----------------------------------------------------------------------------- files


def predictions_frame(
    w: Windows, idx: np.ndarray, probs: np.ndarray, extra: dict[str, Any] | None = None
) -> pd.DataFrame:
    """One row per window: animal, segment, start, end, label, score_<class>... (+ true label)."""
    df = pd.DataFrame(
        {
            **(extra or {}),
            "animal": w.animal[idx],
            "segment": w.segment[idx],
            "start": w.start[idx],
            "end": w.end[idx],
            "label": np.asarray(w.class_names, dtype=object)[probs.argmax(axis=1)],
        }
    )
    for c, name in enumerate(w.class_names):
        df[f"score_{name}"] = probs[:, c].round(6)
    y = w.y[idx]
    true = np.full(len(idx), "", dtype=object)
    ok = y >= 0
    true[ok] = np.asarray(w.class_names, dtype=object)[y[ok]]
    df["true_label"] = true
    return df


def csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)  # full precision: start/end are epoch seconds


def write_model_files(results: Results, w: Windows, out: Path) -> None:
    """Per-class CSV and confusion matrix (CSV + PNG) of every model; those of models an
    earlier run into the same folder had and this one has not are removed (the folder holds
    one run's answers)."""
    written = set()
    for key, entry in sorted_models(results.models).items():
        atomic_write_text(out / f"per_class_{key.name}.csv", per_class_csv(entry))
        save_confusion(
            entry["confusion"],
            w.class_names,
            out / f"confusion_{key.name}",
            f"{key.name}: pooled over folds and seeds",
        )
        written |= {f"per_class_{key.name}.csv", *(f"confusion_{key.name}{x}" for x in CONFUSION)}
    patterns = ("per_class_*.csv", *(f"confusion_*{x}" for x in CONFUSION))
    remove_stale_outputs(out, patterns, written)


CONFUSION = (".csv", ".png")  # the files of save_confusion(..., out / "confusion_<model>")


def write_predictions(
    w: Windows, predictions: Mapping[ModelKey, Sequence[Prediction]], path: Path
) -> None:
    """Every held-out prediction of the given models, one row per window, model, fold, seed."""
    frames = [
        predictions_frame(w, p.test_idx, p.probs, {"model": k.name, "fold": p.fold, "seed": p.seed})
        for k, plist in sorted_models(predictions).items()
        for p in plist
    ]
    if frames:
        atomic_write_text(path, csv_text(pd.concat(frames)))


def _savefig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_folds(results: Results, path: Path) -> None:
    """Held-out MCC per fold and model (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {k: e for k, e in sorted_models(results.models).items() if not k.is_quantized}
    folds = results.folds
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(folds) * len(models) / 2 + 3), 3.5))
    width = 0.8 / max(len(models), 1)
    for i, (key, entry) in enumerate(models.items()):
        vals = [np.mean([r["mcc"] for r in entry["per_fold"] if r["fold"] == f]) for f in folds]
        ax.bar(np.arange(len(folds)) + i * width, vals, width, label=key.name)
    ax.set_xticks(np.arange(len(folds)) + 0.4 - width / 2, folds, rotation=30, ha="right")
    ax.set_ylabel("MCC (mean over seeds)")
    ax.set_title("held-out MCC per fold")
    ax.legend(fontsize=7, ncol=2)
    ax.axhline(0, color="k", lw=0.5)
    fig.tight_layout()
    _savefig(fig, path)


def plot_bits(results: Results, out: Path) -> None:
    """MCC per word length of each quantized student (``mcc_vs_bits_{model}.png``); those an
    earlier run into the same folder drew and this one has not are removed."""
    from ethoedge.quantize.sweep import plot_mcc_vs_bits

    models = results.models
    written: set[str] = set()
    for base in QUANTIZED_BASES:
        qs = [e for k, e in models.items() if k.is_quantized and k.float_key == base]
        if not qs or base not in models:
            continue
        written.add(f"mcc_vs_bits_{base.name}.png")
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
        plot_mcc_vs_bits(rows, models[base]["mcc"], out / f"mcc_vs_bits_{base.name}.png",
                         title=f"{base.name}: held-out MCC per word length")  # fmt: skip
    remove_stale_outputs(out, ("mcc_vs_bits_*.png",), written)  # an earlier run's


def write_results_json(results: Results, out: Path) -> dict[str, Any]:
    doc = results.to_json()
    atomic_write_json(out / "results.json", doc)
    return doc


# ----------------------------------------------------------------------------- report.md


def _epoch_rule(cfg: RunConfig) -> str:
    """How each model's epoch was chosen, in words."""
    budget = f"teacher {cfg.teacher_train.epochs}, students {cfg.student_train.epochs} epochs"
    if cfg.val_animals == 0:
        return f"last epoch of a fixed budget ({budget}), no validation animal"
    monitor = "MCC" if cfg.student_train.monitor == "mcc" else "loss"
    return (
        f"epoch with the best validation {monitor} on {cfg.val_animals} held-out training "
        f"animal(s) per fold (at most {budget})"
    )


def _orientation_line(cfg: RunConfig) -> str:
    if cfg.window.calibrate == "none":
        return ""
    return (
        f"- orientation calibrated per animal: each animal's windows turned so that its mean "
        f"gravity lies along `{cfg.window.gravity_axis}` (`window.calibrate: "
        f"{cfg.window.calibrate}`)\n"
    )


def section_data(r: ReportInput) -> str | None:
    cfg, w, info = r.cfg, r.windows, r.results.info
    folds = r.results.folds
    return (
        f"- data: `{info.get('dataset', '')}` ({info.get('source') or 'windows'})\n"
        f"- {len(w):,} windows of {w.n_samples} samples at {w.rate_hz:g} Hz from "
        f"{len(np.unique(w.animal))} animals; classes: {', '.join(w.class_names)}\n"
        + _orientation_line(cfg)
        + f"- protocol: **{cfg.protocol}**, {len(folds)} fold(s): {', '.join(folds)}; seeds "
        f"{list(cfg.seeds)}; training windows stride {cfg.train_stride} (teacher "
        f"{cfg.teacher_stride or cfg.train_stride})\n"
        f"- weights kept: {_epoch_rule(cfg)}\n"
        f"- distillation: alpha={cfg.kd.alpha}, T={cfg.kd.temperature}, "
        f"soft labels `{cfg.kd.soft_labels}`"
        + (
            f" (K={cfg.kd.cross_fit_groups} animal groups)"
            if cfg.kd.soft_labels == "cross_fit"
            else ""
        )
        + (", standardised logits" if cfg.kd.standardize_logits else "")
        + "\n"
        f"- students: input `{cfg.student.input}`, plain students' label smoothing "
        f"{cfg.student_train.label_smoothing:g}; teacher input `{cfg.teacher.input}`\n"
        f"- jobs: executor `{info.get('executor', 'serial')}`, {info.get('workers', 1)} "
        f"worker(s), {info.get('job_threads', 1)} torch thread(s) per job" + _recipes_line(r)
    )


def _recipes_line(r: ReportInput) -> str:
    """The students' recipe of each fold, where the run chose it by inner validation."""
    rec = r.results.info.get("student_recipes")
    if not rec:
        return ""
    names = [c.name for c in r.cfg.student_recipes]
    per_fold = "; ".join(
        f"{fold} `{c['chosen']}` ("
        + ", ".join(_num(c["inner_mcc"].get(n), "{:.3f}") for n in names)
        + ")"
        for fold, c in rec.items()
    )
    return (
        f"\n- students' recipe per fold, chosen by inner animal-wise validation "
        f"({r.cfg.recipe_groups} groups of the fold's training animals; inner MCC of "
        + ", ".join(f"`{n}`" for n in names)
        + f"): {per_fold}. The `students: input` above is the configured default."
    )


def section_results(r: ReportInput) -> str | None:
    rows = []
    for key, e in sorted_models(r.results.models).items():
        if key.is_quantized:
            continue
        rows.append(
            [key.name, _num(e.get("params"), "{:,}"), _num(e.get("macs"), "{:.2f}", 1e-6),
             _num(e.get("bytes"), "{:.1f}", 1 / 1024), e["mcc"], e["mcc_std"],
             f"{e['mcc_fold_mean']:.3f} ± {e['mcc_fold_std']:.3f}", e["macro_f1"], e["accuracy"]]
        )  # fmt: skip
    header = ["model", "params", "MMACs/window", "kB", "MCC", "sd", "fold MCC", "macro F1",
              "accuracy"]  # fmt: skip
    text = md_table(header, rows) + "\n\n" + HEADLINE
    if ENSEMBLE in r.results.models:
        w = r.cfg.kd.baseline_weight
        text += (
            f" `ensemble` is the teacher the students are distilled from: {1 - w:g} x the "
            f"teacher's and {w:g} x the baseline's probabilities (`kd.baseline_weight`), here "
            "scored on the held-out animals."
        )
    base = r.results.models.get(BASELINE)
    if base is not None:
        gains = [
            f"{k.name} {e['mcc'] - base['mcc']:+.3f}"
            for k, e in sorted_models(r.results.models).items()
            if k != BASELINE and not k.is_quantized
        ]
        text += (
            "\n\n**Against the baseline** (hand-made accelerometry features + "
            f"{_baseline_name(r.cfg)}, same folds; its `params` are tree nodes): MCC "
            f"{base['mcc']:.3f}; the other models' MCC minus the baseline's: "
            + ", ".join(gains)
            + "."
        )
    return text + "\n\n![MCC per fold](mcc_per_fold.png)"


def _num(v: Any, fmt: str, scale: float | None = None) -> str:
    if v is None:
        return "-"
    return fmt.format(v if scale is None else v * scale)


def _baseline_name(cfg: RunConfig) -> str:
    if cfg.baseline is None or cfg.baseline.model == "random_forest":
        n = cfg.baseline.n_estimators if cfg.baseline is not None else 0
        return f"a {n}-tree random forest"
    return "histogram gradient boosting"


def section_paired(r: ReportInput) -> str | None:
    if not r.results.paired:
        return None
    prow = []
    for key, p in r.results.paired.items():
        a, b = p["per_fold_and_seed"], p["pooled_by_seed"]
        prow.append(
            [key, a["mean"], f"[{a['ci_low']:.3f}, {a['ci_high']:.3f}]", a["n"],
             b["mean"], f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}]", b["n"]]
        )  # fmt: skip
    header = ["comparison", "ΔMCC per fold×seed", "95% CI", "n", "Δ pooled MCC by seed",
              "95% CI", "n"]  # fmt: skip
    return (
        md_table(header, prow)
        + "\n\nStudent-t intervals of the mean paired difference (nan: fewer than 2 pairs)."
    )


def section_per_class(r: ReportInput) -> str | None:
    models = {k: e for k, e in sorted_models(r.results.models).items() if not k.is_quantized}
    rows = [[k.name] + [c["f1"] for c in e["per_class"]] for k, e in models.items()]
    return (
        md_table(["model", *r.windows.class_names], rows)
        + "\n\nPrecision/recall/F1/support per class: `per_class_{model}.csv`.\n\n"
        + "\n".join(
            f"![confusion {k.name}](confusion_{k.name}.png)" for k in models if k.hidden is None
        )
    )


def section_per_fold(r: ReportInput) -> str | None:
    models = {k: e for k, e in sorted_models(r.results.models).items() if not k.is_quantized}
    rows = [
        [f] + [float(np.mean([x["mcc"] for x in e["per_fold"] if x["fold"] == f]))
               for e in models.values()]
        for f in r.results.folds
    ]  # fmt: skip
    return md_table(["fold", *(k.name for k in models)], rows)


def section_deployment_bundle(r: ReportInput) -> str | None:
    m = r.bundle_meta
    if m is None:
        return None
    rule = (
        "the same fixed epoch budget as the cross-validated models"
        if r.cfg.val_animals == 0
        else "the median best epoch of the cross-validation"
    )
    return (
        f"`model/`: student+KD (H={r.cfg.student.hidden}) and teacher trained on all "
        f"{len(m['animals'])} animals ({m['n_windows']:,} windows) for {rule} (teacher "
        f"{m['teacher_epochs']}, student {m['student_epochs']} epochs). "
        "`model_predictions.csv` holds its (in-sample) predictions; "
        "`ethoedge classify model DATA --out FILE.csv` applies it to new data."
    )


def section_quantization(r: ReportInput) -> str | None:
    models = r.results.models
    if not any(k.is_quantized for k in models):
        return None
    rows = []
    for base in QUANTIZED_BASES:
        if base not in models:
            continue
        fb = models[base]
        rows.append([base.name, "float32", fb["bytes"], fb["mcc"], fb["mcc_std"], "",
                     fb["macro_f1"], fb["accuracy"], "", ""])  # fmt: skip
        qs = sorted(
            (k for k in models if k.is_quantized and k.float_key == base),
            key=lambda k: -(k.bits or 0),
        )
        for k in qs:
            e = models[k]
            rows.append(
                [k.name, e["word_bits"], e["bytes"], e["mcc"], e["mcc_std"],
                 f"{e['mcc'] - fb['mcc']:+.3f}", e["macro_f1"], e["accuracy"],
                 f"{e['agreement_with_float']:.3f}", "/".join(e["methods"])]
            )  # fmt: skip
    q = r.cfg.quant
    return (
        md_table(DQ_HEADER, rows)
        + "\n\nEvery cross-validated student is quantized (dynamic fixed point, "
        f"rule `{q.rule}`, QAT `{q.qat}`): calibrated on its fold's training windows, "
        "scored by the integer-only reference on the fold's test windows and pooled like "
        "the float models. `bytes`: the parameters at their storage width (the float "
        "row: float32). `agreement`: test windows whose class equals the float model's.\n\n"
        + "\n".join(
            f"![MCC vs word length, {b.name}](mcc_vs_bits_{b.name}.png)"
            for b in QUANTIZED_BASES
            if (r.out_dir / f"mcc_vs_bits_{b.name}.png").is_file()
        )
    )


def section_frac_bits(r: ReportInput) -> str | None:
    dep = r.results.deployment
    if not dep or not dep["widths"]:
        return None
    widths = dep["widths"]
    tensors = list(next(iter(widths.values()))["frac_bits"])
    frows = [[t] + [c["frac_bits"][t] for c in widths.values()] for t in tensors]
    float_bytes = next(
        (e.get("bytes", 0) for k, e in r.results.models.items() if k.name == "student_kd"), 0
    )
    return (
        md_table(["tensor", *(f"W={c['word_bits']}" for c in widths.values())], frows)
        + "\n\nPer-tensor fraction bits of `model/quantized/w{W}.json` (calibrated on the "
        "windows the bundle was trained on); model bytes: "
        + ", ".join(f"W={c['word_bits']}: {c['bytes']:,} B" for c in widths.values())
        + f" (float32: {float_bytes:,} B)."
    )


def section_device(r: ReportInput) -> str | None:
    dep = r.results.deployment
    if not dep or not dep["widths"]:
        return None
    widths = dep["widths"]
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
            crow.append([c["word_bits"], "M4", c["flash_bytes"], c["ram_bytes"], c["stack_bytes"],
                         f"{c['instructions']:,}", c["instructions_per_mac"],
                         c["est_time_ms"], c["est_energy_uj"]])  # fmt: skip
        if "m3_flash_bytes" in c:
            crow.append([c["word_bits"], "M3", c["m3_flash_bytes"], c["m3_ram_bytes"],
                         c["m3_stack_bytes"], f"{c['m3_instructions']:,}",
                         c["m3_instructions_per_mac"], c["m3_est_time_ms"],
                         c["m3_est_energy_uj"]])  # fmt: skip
    cost = (
        md_table(COST_HEADER, crow)
        + "\n\n"
        + str(next(c["assumptions"] for c in widths.values() if "assumptions" in c))
        if crow
        else "No cost figures: QEMU / arm-none-eabi-gcc not available "
        f"(qemu: `{dep['qemu']}`); the host check ran."
    )
    return (
        "C module per word length in `c/w{W}/` (from `model/`), checked against the integer "
        f"reference on every window on the host and on {dep['qemu_windows']} windows on "
        "the emulated Cortex-M4 (mps2-an386) and Cortex-M3 (mps2-an385):\n\n"
        + "\n".join(lines)
        + "\n\nCost of one classification on the emulated Cortex-M4 (flash: `.text` + "
        "`.rodata` of the model object; RAM: `.data` + `.bss` + painted peak stack):\n\n" + cost
    )


def section_timing(r: ReportInput) -> str | None:
    t = r.results.timings
    return md_table(["stage", "seconds"], [[k.removesuffix("_s"), v] for k, v in t.items()])


# The order of report.md, stated once: (heading, section builder; None = section left out).
SECTIONS: tuple[tuple[str, Callable[[ReportInput], str | None]], ...] = (
    ("Data and protocol", section_data),
    ("Results", section_results),
    ("Student+KD vs student (paired, same folds and seeds)", section_paired),
    ("Per-class F1 (pooled over folds and seeds)", section_per_class),
    ("MCC per held-out fold (mean over seeds)", section_per_fold),
    ("Deployment bundle", section_deployment_bundle),
    ("Dynamic fixed-point quantization", section_quantization),
    ("Fraction bits of the deployment student", section_frac_bits),
    ("On-device cost and verification", section_device),
    ("Timing", section_timing),
)


def build_report(r: ReportInput) -> Report:
    report = Report(f"ethoedge run: {r.results.info.get('dataset', '')}")
    for heading, build in SECTIONS:
        body = build(r)
        if body is not None:
            report.add(heading, body)
    return report


def write_report(r: ReportInput) -> Path:
    return build_report(r).write(r.out_dir / "report.md")
