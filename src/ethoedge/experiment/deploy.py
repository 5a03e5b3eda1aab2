"""Stage 4 of a run: the deployment models and what the device gets.

- :func:`quantize_folds`: every cross-validated headline ``student``/``student_kd`` (the
  trained fold models, reloaded from their checkpoints, not retrained) is quantized at each
  ``cfg.quant.word_bits``, calibrated on its fold's training windows and scored by the integer
  reference on its test windows; pooled like the float models into ``student_w{W}`` /
  ``student_kd_w{W}``.
- :func:`train_deployment`: teacher, soft labels and the distilled student on all animals ->
  :class:`~ethoedge.bundle.Bundle` (the student's recipe chosen among all animals where the
  run has candidates, :mod:`ethoedge.experiment.recipes`).
- :func:`export_deployment`: the bundle is quantized at ``cfg.export_bits``
  (``DIR/model/quantized/w{W}.json``), exported to C (``DIR/c/w{W}/``), verified bit for bit
  against the integer reference (host: every window; emulated Cortex-M4/M3:
  ``cfg.qemu_windows``) and costed (flash, RAM, instructions).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ethoedge import __version__
from ethoedge.bundle import Bundle
from ethoedge.config import RunConfig
from ethoedge.data.windows import Windows
from ethoedge.distill.soft_labels import load_soft_labels
from ethoedge.errors import EthoedgeError
from ethoedge.experiment.aggregate import Prediction, model_entry
from ethoedge.experiment.executor import execute
from ethoedge.experiment.folds import all_animals
from ethoedge.experiment.jobs import Job, JobContext, soft_labels_path, train_model
from ethoedge.experiment.keys import STUDENT, STUDENT_KD, TEACHER, ModelKey
from ethoedge.experiment.recipes import choose_recipes
from ethoedge.inference import Classifier

QUANTIZED_BASES = (STUDENT, STUDENT_KD)
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
COST_KEYS = COST_KEYS + tuple(f"m3_{k}" for k in COST_KEYS)  # the Cortex-M3 figures beside


class VerificationError(EthoedgeError):
    """The exported C did not reproduce the integer reference."""


def _one_hot(pred: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(pred), n_classes))
    out[np.arange(len(pred)), pred] = 1.0
    return out


@dataclass
class QuantizedFolds:
    """What :func:`quantize_folds` found: results entries and held-out predictions."""

    entries: dict[ModelKey, dict[str, Any]]
    predictions: dict[ModelKey, list[Prediction]]


def quantize_folds(
    ctx: JobContext,
    predictions: dict[ModelKey, list[Prediction]],
    float_entries: dict[ModelKey, dict[str, Any]],
    costs: dict[ModelKey, dict[str, Any]],
) -> QuantizedFolds:
    """Quantize the cross-validated headline students at every swept word length."""
    from ethoedge.quantize.sweep import evaluate_word_lengths

    cfg, w = ctx.cfg, ctx.windows
    qcfg = cfg.quant
    C = len(w.class_names)
    preds: dict[ModelKey, list[Prediction]] = {}
    rows: dict[ModelKey, list[dict[str, Any]]] = {}
    for base in QUANTIZED_BASES:
        for p in predictions.get(base, []):
            job = Job(p.fold, base, p.seed)
            model, _ = train_model(ctx, job)
            fold = ctx.folds[p.fold]
            soft = None
            if qcfg.qat and base.kd:
                path = soft_labels_path(ctx.work_dir, p.fold)
                if path.is_file():
                    soft = load_soft_labels(path).logits
            tr, va, te = fold.train, fold.val, fold.test
            res = evaluate_word_lengths(
                model,
                fold.normalizer,
                w.X[tr],
                w.X[te],
                w.y[te],
                replace(qcfg, seed=qcfg.seed + p.seed),
                w.class_names,
                soft_labels=soft,
                train_y=w.y[tr],
                val=(w.X[va], w.y[va]) if va is not None else None,
                kd=cfg.kd,
            )
            for r in res:
                qkey = base.quantized(int(r["word_bits"]))
                preds.setdefault(qkey, []).append(
                    Prediction(
                        p.fold, p.seed, te, _one_hot(r["pred"], C), p.best_epoch, p.epochs_run
                    )
                )
                rows.setdefault(qkey, []).append(
                    {k: v for k, v in r.items() if k not in ("qmodel", "pred")}
                    | {"fold": p.fold, "seed": p.seed, "n_bytes": r["qmodel"].n_bytes()}
                )
    entries = {}
    for qkey, plist in preds.items():
        base = qkey.float_key
        rs = rows[qkey]
        cost = dict(costs.get(base, {}))
        cost["bytes"] = rs[0]["n_bytes"]
        entry = model_entry(w.y, plist, w.class_names, cost)
        entry["word_bits"] = rs[0]["word_bits"]
        entry["hidden"] = cfg.student.hidden
        entry["float_model"] = base.name
        entry["float_mcc"] = float_entries[base]["mcc"] if base in float_entries else None
        entry["methods"] = sorted({r["method"] for r in rs})
        entry["ptq_mcc_fold_mean"] = float(np.mean([r["ptq"]["mcc"] for r in rs]))
        qat = [r["qat"]["mcc"] for r in rs if r["qat"]]
        entry["qat_mcc_fold_mean"] = float(np.mean(qat)) if qat else None
        entry["agreement_with_float"] = float(np.mean([r["agreement"] for r in rs]))
        for pf, r in zip(entry["per_fold"], rs, strict=True):
            pf["method"] = r["method"]
            pf["train_mcc_loss"] = r["train_mcc_loss"]
            pf["frac_bits"] = r["frac_bits"]
        entries[qkey] = entry
    return QuantizedFolds(entries, preds)


def deployment_epochs(
    cfg: RunConfig, predictions: dict[ModelKey, list[Prediction]]
) -> tuple[int, int]:
    """Epochs of the deployment teacher and student. Without a validation animal
    (``val_animals: 0``) every model is trained for its fixed budget, the deployment models
    too: the same recipe as the cross-validated ones. With one, the median best epoch of the
    cross-validated runs (at least 1), or the budget without them."""
    if cfg.val_animals == 0:
        return cfg.teacher_train.epochs, cfg.student_train.epochs

    def epochs_for(key: ModelKey, default: int) -> int:
        ps = predictions.get(key, [])
        return max(1, round(float(np.median([p.best_epoch for p in ps])))) if ps else default

    return (
        epochs_for(TEACHER, cfg.teacher_train.epochs),
        epochs_for(STUDENT_KD, cfg.student_train.epochs),
    )


def deployment_config(cfg: RunConfig, predictions: dict[ModelKey, list[Prediction]]) -> RunConfig:
    """``cfg`` as the deployment models train with it: each for :func:`deployment_epochs`,
    without early stopping (no animal is left to stop on)."""
    t_ep, s_ep = deployment_epochs(cfg, predictions)
    return replace(
        cfg,
        teacher_train=replace(cfg.teacher_train, epochs=t_ep, patience=0),
        student_train=replace(cfg.student_train, epochs=s_ep, patience=0),
    )


def deployment_jobs(cfg: RunConfig, fold: str) -> list[Job]:
    """The deployment's jobs on the all-animals ``fold``: the teacher, then the distilled
    student."""
    return [Job(fold, TEACHER, cfg.seeds[0]), Job(fold, STUDENT_KD, cfg.seeds[0])]


def deploy_with_cross_validation(cfg: RunConfig) -> bool:
    """Whether the deployment models can train beside the cross-validation, in the same job
    pool: when nothing they need comes from it, i.e. their config does not depend on the
    cross-validated best epochs (``val_animals: 0``) and equals the run's own (no early
    stopping to switch off), and there is no recipe to choose on all animals first.
    :func:`train_deployment` then resumes them from their finished checkpoints."""
    return (
        cfg.deploy
        and cfg.val_animals == 0
        and not cfg.student_recipes
        and deployment_config(cfg, {}) == cfg
    )


def train_deployment(
    cfg: RunConfig,
    windows: Windows,
    work_dir: Path,
    predictions: dict[ModelKey, list[Prediction]],
    *,
    dataset_name: str = "",
    threads: int = 1,
    progress: bool = True,
) -> Bundle:
    """Teacher, soft labels and the distilled student on ALL animals -> :class:`Bundle`.

    No animal is left for early stopping, so each model trains for
    :func:`deployment_epochs`. Jobs already trained (:func:`deploy_with_cross_validation`)
    are resumed from their checkpoints.
    """
    dcfg = deployment_config(cfg, predictions)
    t_ep, s_ep = dcfg.teacher_train.epochs, dcfg.student_train.epochs
    seed0 = cfg.seeds[0]
    fold = all_animals(cfg, windows)
    ctx = JobContext(dcfg, windows, {fold.name: fold}, work_dir, threads)
    choice = choose_recipes(ctx, [fold], progress=progress).get(fold.name)
    if choice is not None:
        ctx = replace(ctx, recipes={fold.name: choice.chosen})
    jobs = deployment_jobs(cfg, fold.name)
    execute(ctx, jobs, progress=progress, label="all animals")
    teacher = train_model(ctx, jobs[0])[0].cpu().eval()
    student = train_model(ctx, jobs[1])[0].cpu().eval()
    return Bundle(
        student=student,  # type: ignore[arg-type]
        normalizer=fold.normalizer,
        class_names=windows.class_names,
        window=cfg.window,
        rate_hz=float(windows.rate_hz),
        teacher=teacher,  # type: ignore[arg-type]
        data=cfg.data.to_dict(),
        window_samples=windows.n_samples,
        meta={
            "ethoedge_version": __version__,
            "student": "student_kd (distilled from the teacher, trained on all animals)",
            "animals": sorted(str(a) for a in np.unique(windows.animal)),
            "n_windows": len(fold.train),
            "teacher_epochs": t_ep,
            "student_epochs": s_ep,
            "kd": asdict(cfg.kd),
            "seed": seed0,
            "dataset": dataset_name,
            **({"student_recipe": choice.to_json()} if choice is not None else {}),
        },
    )


@dataclass
class Deployment:
    """What :func:`export_deployment` made: the ``results.json`` ``deployment`` entry and the
    integer models' scores on every window (by word length)."""

    entry: dict[str, Any]
    int_probs: dict[int, np.ndarray]
    int_pred: dict[int, np.ndarray]


def export_deployment(
    cfg: RunConfig,
    windows: Windows,
    bundle_dir: Path,
    c_dir: Path,
    *,
    recorded_X: np.ndarray | None = None,
) -> Deployment | None:
    """Quantize the deployment bundle at ``cfg.export_bits``, export C, verify it, cost it
    (``recorded_X``: calibrated windows as recorded, which the C is also verified turning)."""
    from ethoedge.export.deploy import export_verify_cost
    from ethoedge.quantize.bundle_quant import quantize_bundle

    if not cfg.export_bits:
        return None
    bits = tuple(sorted(cfg.export_bits, reverse=True))
    qcfg = replace(cfg.quant, word_bits=bits)
    qrows = quantize_bundle(bundle_dir, qcfg, windows=windows, kd=cfg.kd)
    qemu = None if cfg.qemu == "auto" else bool(cfg.qemu)
    dep: dict[str, Any] = {"qemu": cfg.qemu, "qemu_windows": cfg.qemu_windows, "widths": {}}

    def one_width(r: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        W, q = int(r["word_bits"]), r["qmodel"]
        probs = _int_probs(q, windows, recorded_X, cfg.window.gravity_axis)
        c = export_verify_cost(
            bundle_dir, W, c_dir / f"w{W}", windows.X, qemu=qemu,
            qemu_windows=cfg.qemu_windows, command="ethoedge run",
            recorded=None if recorded_X is None else (recorded_X, windows.animal),
        )  # fmt: skip
        c.update(
            {
                "bytes": q.n_bytes(),
                "method": r["method"],
                "agreement_with_float": r["agreement"],
                "frac_bits": r["frac_bits"],
            }
        )
        return probs, c

    # The widths at once, one thread each: most of the time is spent in the compilers, the
    # compiled harnesses and QEMU (subprocesses), so two widths take little more than one.
    with ThreadPoolExecutor(max_workers=len(qrows)) as pool:
        done = list(pool.map(one_width, qrows))
    int_probs, int_pred = {}, {}
    for r, (probs, c) in zip(qrows, done, strict=True):
        W = int(r["word_bits"])
        int_probs[W], int_pred[W] = probs, probs.argmax(axis=1)
        dep["widths"][f"w{W}"] = c
    dep["verified"] = all(c["verified"] for c in dep["widths"].values())
    return Deployment(dep, int_probs, int_pred)


def _int_probs(q: Any, windows: Windows, recorded_X: np.ndarray | None, axis: str) -> np.ndarray:
    """The integer model's class scores on every window: for calibrated windows given as
    recorded, each animal's samples turned in integers as the firmware turns them (what
    ``classify --engine int`` computes), else on the windows as given."""
    if recorded_X is None:
        return Classifier(q, class_names=windows.class_names).predict_proba(windows.X)
    from ethoedge.data.calibrate import GravitySums

    clf = Classifier(q, class_names=windows.class_names, gravity_axis=axis)
    probs = np.zeros((len(windows), len(windows.class_names)))
    for a, g in GravitySums.of_windows(recorded_X, windows.animal).directions().items():
        sel = windows.animal == a
        probs[sel] = clf.predict_proba(recorded_X[sel], gravity=g)
    return probs


def add_deployment_costs(
    models: dict[ModelKey, dict[str, Any]], deployment: dict[str, Any]
) -> None:
    """Copy the deployment's C cost figures onto the ``student_kd_w{W}`` entries."""
    for c in deployment["widths"].values():
        key = STUDENT_KD.quantized(int(c["word_bits"]))
        if key in models:
            models[key].update({k: c[k] for k in COST_KEYS if k in c})
            models[key]["verified"] = c["verified"]


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
