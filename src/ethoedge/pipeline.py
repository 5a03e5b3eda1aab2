"""The whole job as stage functions: data -> windows -> cross-validated teacher, soft labels,
students -> evaluation -> deployment bundle -> report; and :func:`classify` for new data.

:func:`run` is the Python API behind ``ethoedge run``. It calls, in order,
:func:`cross_validate`, :func:`summarize`, :func:`train_deployment`, the quantization and C
export stages of :mod:`ethoedge.pipeline_deploy` and the writers; a later
stage (quantization, export) is a function ``stage(state: RunState) -> None`` passed in
``extra_stages``: it may read ``state.bundle``/``state.windows``, add entries to
``state.results`` and sections to ``state.report``, and write files under ``state.out_dir``
(atomically) before ``results.json`` and ``report.md`` are written last. When the exported C
differs from the integer reference anywhere, :func:`run` raises
:class:`~ethoedge.pipeline_deploy.VerificationError` after writing both.

Output directory of :func:`run`::

    config.yaml  results.json  report.md
    per_class_{model}.csv  confusion_{model}.csv/.png  mcc_per_fold.png
    predictions_cv.csv      every window's held-out prediction per model and seed
    model/                  the deployment bundle (trained on all animals)
    model/quantized/w{W}.json  its integer model at each of ``cfg.export_bits``
    model_predictions.csv   the bundle's student on every window (what ``classify`` reproduces)
    model_predictions_w{W}.csv  the same by the integer model (``classify --engine int``)
    c/w{W}/                 the exported C module, verified against the integer reference
    per_class/confusion of student[_kd]_w{W}, mcc_vs_bits_{model}.png,
    predictions_cv_quantized.csv  the quantized cross-validated students
    work/                   checkpoints and soft labels (a re-run resumes from them)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ethoedge import __version__
from ethoedge.bundle import Bundle, load_bundle, save_bundle
from ethoedge.config import RunConfig, save_yaml
from ethoedge.data.config import DataConfig
from ethoedge.data.windows import Normalizer, Windows
from ethoedge.distill.soft_labels import (
    load_soft_labels,
    make_soft_labels,
    save_soft_labels,
    softmax,
)
from ethoedge.errors import ConfigError, DataError
from ethoedge.evaluate.cv import make_splits, mean_std, paired_difference
from ethoedge.evaluate.metrics import classification_metrics, per_class_csv, save_confusion
from ethoedge.evaluate.report import Report, md_table
from ethoedge.io import atomic_path, atomic_write_json, atomic_write_text
from ethoedge.models import GRUStudent, ResNetTeacher, model_cost
from ethoedge.train import FitResult, TrainConfig, fit, resolve_device, seed_everything

log = logging.getLogger("ethoedge.pipeline")

HEADLINE = (
    "MCC is the headline metric. For each seed, the held-out predictions of all folds are "
    "pooled (each window is predicted once, by a model that never saw its animal) and one MCC "
    "is computed; `MCC` is the mean of these pooled values over seeds and `sd` their standard "
    "deviation over seeds (0 with one seed). `fold MCC` is the mean and sd of the per-fold "
    "MCCs over all folds and seeds: its spread shows how much animals differ. The teacher is "
    "trained once per fold (first seed)."
)


# ----------------------------------------------------------------------------- state


@dataclass
class Prediction:
    """One model's held-out predictions on one fold for one seed."""

    fold: str
    seed: int
    test_idx: np.ndarray
    probs: np.ndarray  # (n_test, C)
    best_epoch: int
    epochs_run: int

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


@dataclass
class RunState:
    """What the stages of :func:`run` share."""

    cfg: RunConfig
    out_dir: Path
    windows: Windows
    dataset_name: str
    source: str = ""
    predictions: dict[str, list[Prediction]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    report: Report = field(default_factory=lambda: Report("ethoedge run"))
    bundle: Bundle | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Per fold: (train, val or None, test) window indices and the fold's normalizer.
    folds: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray, Normalizer]] = field(
        default_factory=dict
    )
    # The trained (best-epoch) models of the cross-validation, by (model name, fold, seed).
    fold_models: dict[tuple[str, str, int], torch.nn.Module] = field(default_factory=dict)

    @property
    def work_dir(self) -> Path:
        return self.out_dir / "work"


Stage = Callable[[RunState], None]


# ----------------------------------------------------------------------------- checks


def check_config_against_data(cfg: RunConfig, windows: Windows, dataset: Any = None) -> None:
    """Data-dependent checks with clear messages: classes, window length, number of animals."""
    if cfg.data.classes is not None:
        known = set(windows.class_names)
        if dataset is not None:
            known |= {str(lb) for r in dataset.recordings for lb in set(r.labels) if lb is not None}
        unknown = [c for c in cfg.data.classes if c not in known]
        if unknown:
            raise ConfigError(
                f"unknown class(es) {unknown} in data.classes; the data have {sorted(known)}"
            )
    if len(windows) == 0:
        longest = ""
        if dataset is not None and dataset.recordings:
            r = max(dataset.recordings, key=lambda r: r.duration_s)
            longest = f" (the longest recording lasts {r.duration_s:.1f} s)"
        w = cfg.window
        what = f"{w.length} samples" if w.length is not None else f"{w.length_s} s"
        raise ConfigError(
            f"no windows: the window ({what}) is longer than every recording{longest}, or no "
            "window is pure enough (window.min_purity)"
        )
    n_animals = len(np.unique(windows.animal))
    if n_animals < cfg.min_animals:
        what = {"loao": "leave-one-animal-out", "kfold": f"{cfg.k}-fold by animal"}.get(
            cfg.protocol, f"a holdout of {cfg.test_animals} test + {cfg.val_animals} val animals"
        )
        raise ConfigError(
            f"{what} needs at least {cfg.min_animals} animals; the data have {n_animals}"
        )
    present = np.unique(windows.y)
    if len(present) < 2:
        raise ConfigError(f"the windows hold only {len(present)} class; need at least 2")


# ----------------------------------------------------------------------------- training


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


def _train_one(
    model: torch.nn.Module,
    windows: Windows,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    norm: Normalizer,
    tcfg: TrainConfig,
    ckpt: Path,
    bar: Any,
    desc: str,
    **kw: Any,
) -> FitResult:
    task = bar.add_task(f"  {desc}", total=tcfg.epochs)

    def on_epoch(epoch: int, rec: dict[str, float]) -> None:
        bar.update(task, completed=epoch)

    res = fit(
        model,
        windows.X[train_idx],
        windows.y[train_idx],
        norm,
        tcfg,
        X_val=windows.X[val_idx] if val_idx is not None else None,
        y_val=windows.y[val_idx] if val_idx is not None else None,
        checkpoint=ckpt,
        on_epoch=on_epoch,
        **kw,
    )
    bar.update(task, completed=tcfg.epochs, visible=False)
    last = res.history[-1] if res.history else {}
    log.info(
        "%s: best epoch %d of %d run, val score %s, %.1f s",
        desc,
        res.best_epoch,
        res.epochs_run,
        "n/a" if res.best_score is None else f"{res.best_score:.3f}",
        sum(h.get("seconds", 0.0) for h in res.history) if last else 0.0,
    )
    return res


def _stride(idx: np.ndarray, stride: int) -> np.ndarray:
    return idx[::stride] if stride > 1 else idx


@dataclass(frozen=True)
class FoldWindows:
    """The windows of one fold as a run uses them (sorted indices into the windows).

    ``train``/``val``: thinned by ``train_stride``; ``teacher_train``: by ``teacher_stride``;
    ``test``: all; ``normalizer``: fitted on ``train``.
    """

    name: str
    train: np.ndarray
    teacher_train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    normalizer: Normalizer


def fold_windows(cfg: RunConfig, w: Windows) -> list[FoldWindows]:
    """The folds of ``cfg.protocol`` on ``w``, exactly as :func:`run` trains and tests them
    (also what the benchmark scripts use to rebuild a finished run's folds)."""
    splits = make_splits(
        w.animal,
        cfg.protocol,
        k=cfg.k,
        seed=cfg.split_seed,
        val_animals=cfg.val_animals,
        test_animals=cfg.test_animals,
    )
    out = []
    for split in splits:
        tr = _stride(np.sort(split.train), cfg.train_stride)
        has_val = split.val is not None and len(split.val)
        out.append(
            FoldWindows(
                split.name,
                tr,
                _stride(np.sort(split.train), cfg.teacher_stride or cfg.train_stride),
                _stride(np.sort(split.val), cfg.train_stride) if has_val else None,
                np.sort(split.test),
                Normalizer.fit(w.X[tr]),
            )
        )
    return out


def cross_validate(state: RunState, progress: bool = True) -> None:
    """Per fold: teacher, soft labels, then every student size x seed, plain and distilled.

    Fills ``state.predictions`` with held-out probabilities per model name (``teacher``,
    ``student``, ``student_kd``, ``student_h{H}``, ``student_kd_h{H}``).
    """
    cfg, w = state.cfg, state.windows
    C = len(w.class_names)
    splits = fold_windows(cfg, w)
    state.results["folds"] = [s.name for s in splits]
    work = state.work_dir
    device = resolve_device(cfg.teacher_train.device)
    preds: dict[str, list[Prediction]] = {}
    t0 = time.perf_counter()
    with _progress(progress) as bar:
        folds = bar.add_task("folds", total=len(splits))
        for fold in splits:
            name, tr, tr_t, va, te, norm = (
                fold.name, fold.train, fold.teacher_train, fold.val, fold.test, fold.normalizer
            )  # fmt: skip
            state.folds[name] = (tr, va, te, norm)
            # Teacher, once per fold.
            seed0 = cfg.seeds[0]
            seed_everything(seed0)
            teacher = ResNetTeacher(C, cfg.teacher, n_channels=w.X.shape[1])
            tcfg = replace(cfg.teacher_train, seed=seed0)
            res = _train_one(
                teacher,
                w,
                tr_t,
                va,
                norm,
                tcfg,
                work / f"{name}_teacher.pt",
                bar,
                f"{name} teacher",
            )
            teacher.eval()
            preds.setdefault("teacher", []).append(_predict(teacher, w, te, norm, name, seed0, res))
            # Soft labels, stored next to the data of this fold.
            sl_path = work / f"{name}_soft_labels.npz"
            sl = make_soft_labels(
                teacher, norm.apply(w.X[tr]), tr, w.class_names, cfg.kd.temperature, device
            )
            save_soft_labels(sl, sl_path)
            if not cfg.kd.consistent:
                teacher.cpu()
                del teacher
                teacher = None
            soft = load_soft_labels(sl_path)
            assert np.array_equal(soft.index, tr)
            for suffix, scfg in cfg.student_configs().items():
                for seed in cfg.seeds:
                    scfg_train = replace(cfg.student_train, seed=seed)
                    for kind in ("student", "student_kd"):
                        seed_everything(seed)
                        model = GRUStudent(C, scfg, n_channels=w.X.shape[1])
                        kw: dict[str, Any] = {}
                        if kind == "student_kd":
                            kw = {"kd": cfg.kd, "teacher_logits": soft.logits, "teacher": teacher}
                        mname = kind + suffix
                        res = _train_one(
                            model,
                            w,
                            tr,
                            va,
                            norm,
                            scfg_train,
                            work / f"{name}_{mname}_s{seed}.pt",
                            bar,
                            f"{name} {mname} seed {seed}",
                            **kw,
                        )
                        preds.setdefault(mname, []).append(
                            _predict(model, w, te, norm, name, seed, res)
                        )
                        if not suffix:
                            state.fold_models[(mname, name, seed)] = model.cpu().eval()
            bar.advance(folds)
    state.predictions = preds
    state.timings["cross_validation_s"] = time.perf_counter() - t0


def _predict(
    model: torch.nn.Module,
    w: Windows,
    idx: np.ndarray,
    norm: Normalizer,
    fold: str,
    seed: int,
    res: FitResult,
) -> Prediction:
    from ethoedge.distill.soft_labels import predict_logits

    dev = next(model.parameters()).device.type
    probs = softmax(predict_logits(model, norm.apply(w.X[idx]), device=dev))
    return Prediction(fold, seed, idx, probs, res.best_epoch, res.epochs_run)


# ----------------------------------------------------------------------------- summary


def _model_for_cost(name: str, cfg: RunConfig, C: int) -> torch.nn.Module:
    if name == "teacher":
        return ResNetTeacher(C, cfg.teacher)
    suffix = name.removeprefix("student_kd").removeprefix("student")
    return GRUStudent(C, cfg.student_configs()[suffix])


def pooled_entry(w: Windows, plist: list[Prediction], cost: dict[str, Any]) -> dict[str, Any]:
    """One model's ``results.json`` entry: metrics pooled per seed (mean/sd over seeds),
    per-fold metrics, per-class figures and the confusion matrix over all folds and seeds."""
    names = w.class_names
    seeds = sorted({p.seed for p in plist})
    pooled = []
    for s in seeds:
        ps = [p for p in plist if p.seed == s]
        idx = np.concatenate([p.test_idx for p in ps])
        m = classification_metrics(w.y[idx], np.concatenate([p.pred for p in ps]), names)
        pooled.append({"seed": s, **{k: m[k] for k in ("mcc", "macro_f1", "accuracy", "n")}})
    per_fold = []
    for p in plist:
        m = classification_metrics(w.y[p.test_idx], p.pred, names)
        per_fold.append(
            {
                "fold": p.fold,
                "seed": p.seed,
                "best_epoch": p.best_epoch,
                "epochs_run": p.epochs_run,
                **{k: m[k] for k in ("mcc", "macro_f1", "accuracy", "n")},
            }
        )
    all_idx = np.concatenate([p.test_idx for p in plist])
    all_pred = np.concatenate([p.pred for p in plist])
    overall = classification_metrics(w.y[all_idx], all_pred, names)
    mcc, mcc_sd = mean_std([r["mcc"] for r in pooled])
    f1, f1_sd = mean_std([r["macro_f1"] for r in pooled])
    acc, acc_sd = mean_std([r["accuracy"] for r in pooled])
    fm, fsd = mean_std([r["mcc"] for r in per_fold])
    return {
        "mcc": mcc,
        "mcc_std": mcc_sd,
        "macro_f1": f1,
        "macro_f1_std": f1_sd,
        "accuracy": acc,
        "accuracy_std": acc_sd,
        "mcc_fold_mean": fm,
        "mcc_fold_std": fsd,
        **cost,
        "n_seeds": len(seeds),
        "pooled_by_seed": pooled,
        "per_fold": per_fold,
        "per_class": overall["per_class"],
        "confusion": overall["confusion"],
    }


def summarize(state: RunState) -> None:
    """Metrics per model (pooled per seed, per fold), cost figures, paired KD comparisons."""
    w, cfg = state.windows, state.cfg
    names = w.class_names
    L = w.n_samples
    models: dict[str, Any] = {}
    for mname, plist in state.predictions.items():
        cost = model_cost(_model_for_cost(mname, cfg, len(names)), L)
        entry = pooled_entry(w, plist, cost)
        if mname != "teacher":
            suffix = mname.removeprefix("student_kd").removeprefix("student")
            entry["hidden"] = cfg.student_configs()[suffix].hidden
        models[mname] = entry
    state.results["models"] = models
    paired = {}
    for kd_name in [m for m in models if m.startswith("student_kd")]:
        base = "student" + kd_name.removeprefix("student_kd")
        if base not in models:
            continue
        a = {(r["fold"], r["seed"]): r["mcc"] for r in models[kd_name]["per_fold"]}
        b = {(r["fold"], r["seed"]): r["mcc"] for r in models[base]["per_fold"]}
        keys = sorted(set(a) & set(b))
        pa = {r["seed"]: r["mcc"] for r in models[kd_name]["pooled_by_seed"]}
        pb = {r["seed"]: r["mcc"] for r in models[base]["pooled_by_seed"]}
        seeds = sorted(set(pa) & set(pb))
        paired[f"{kd_name}_vs_{base}"] = {
            "metric": "mcc",
            "per_fold_and_seed": paired_difference([a[k] for k in keys], [b[k] for k in keys]),
            "pooled_by_seed": paired_difference([pa[s] for s in seeds], [pb[s] for s in seeds]),
        }
    state.results["paired"] = paired


# ----------------------------------------------------------------------------- deployment


def train_deployment(state: RunState, progress: bool = True) -> Bundle:
    """Teacher, soft labels and the distilled student on ALL animals -> :class:`Bundle`.

    No animal is left for early stopping, so each model trains for the median best epoch of
    its cross-validated runs (at least 1).
    """
    cfg, w = state.cfg, state.windows
    C = len(w.class_names)
    t0 = time.perf_counter()
    idx = _stride(np.arange(len(w)), cfg.train_stride)
    idx_t = _stride(np.arange(len(w)), cfg.teacher_stride or cfg.train_stride)
    norm = Normalizer.fit(w.X[idx])

    def epochs_for(name: str, default: int) -> int:
        ps = state.predictions.get(name, [])
        return max(1, round(float(np.median([p.best_epoch for p in ps])))) if ps else default

    seed0 = cfg.seeds[0]
    device = resolve_device(cfg.teacher_train.device)
    with _progress(progress) as bar:
        seed_everything(seed0)
        teacher = ResNetTeacher(C, cfg.teacher, n_channels=w.X.shape[1])
        t_ep = epochs_for("teacher", cfg.teacher_train.epochs)
        tcfg = replace(cfg.teacher_train, seed=seed0, epochs=t_ep, patience=0)
        _train_one(
            teacher,
            w,
            idx_t,
            None,
            norm,
            tcfg,
            state.work_dir / "all_teacher.pt",
            bar,
            "all animals: teacher",
        )
        teacher.eval()
        sl = make_soft_labels(
            teacher, norm.apply(w.X[idx]), idx, w.class_names, cfg.kd.temperature, device
        )
        save_soft_labels(sl, state.work_dir / "all_soft_labels.npz")
        seed_everything(seed0)
        student = GRUStudent(C, cfg.student, n_channels=w.X.shape[1])
        s_ep = epochs_for("student_kd", cfg.student_train.epochs)
        scfg = replace(cfg.student_train, seed=seed0, epochs=s_ep, patience=0)
        _train_one(
            student,
            w,
            idx,
            None,
            norm,
            scfg,
            state.work_dir / "all_student_kd.pt",
            bar,
            "all animals: student+KD",
            kd=cfg.kd,
            teacher_logits=sl.logits,
            teacher=teacher,
        )
    student.cpu().eval()
    teacher.cpu().eval()
    state.timings["deployment_s"] = time.perf_counter() - t0
    return Bundle(
        student=student,
        normalizer=norm,
        class_names=w.class_names,
        window=cfg.window,
        rate_hz=float(w.rate_hz),
        teacher=teacher,
        data=cfg.data.to_dict(),
        window_samples=w.n_samples,
        meta={
            "ethoedge_version": __version__,
            "student": "student_kd (distilled from the teacher, trained on all animals)",
            "animals": sorted(str(a) for a in np.unique(w.animal)),
            "n_windows": len(idx),
            "teacher_epochs": t_ep,
            "student_epochs": s_ep,
            "kd": asdict(cfg.kd),
            "seed": seed0,
            "dataset": state.dataset_name,
        },
    )


# ----------------------------------------------------------------------------- writers


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


def _csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)  # full precision: start/end are epoch seconds


def write_evaluation(state: RunState) -> None:
    """Per-class CSVs, confusion matrices (CSV+PNG), per-fold MCC plot, CV predictions."""
    out, w = state.out_dir, state.windows
    for mname, entry in state.results["models"].items():
        atomic_write_text(out / f"per_class_{mname}.csv", per_class_csv(entry))
        save_confusion(
            entry["confusion"],
            w.class_names,
            out / f"confusion_{mname}",
            f"{mname}: pooled over folds and seeds",
        )
    frames = [
        predictions_frame(w, p.test_idx, p.probs, {"model": m, "fold": p.fold, "seed": p.seed})
        for m, plist in state.predictions.items()
        for p in plist
    ]
    atomic_write_text(out / "predictions_cv.csv", _csv_text(pd.concat(frames)))
    _plot_folds(state)


def _plot_folds(state: RunState) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = state.results["models"]
    folds = state.results["folds"]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(folds) * len(models) / 2 + 3), 3.5))
    width = 0.8 / len(models)
    for i, (mname, entry) in enumerate(models.items()):
        vals = [np.mean([r["mcc"] for r in entry["per_fold"] if r["fold"] == f]) for f in folds]
        ax.bar(np.arange(len(folds)) + i * width, vals, width, label=mname)
    ax.set_xticks(np.arange(len(folds)) + 0.4 - width / 2, folds, rotation=30, ha="right")
    ax.set_ylabel("MCC (mean over seeds)")
    ax.set_title("held-out MCC per fold")
    ax.legend(fontsize=7, ncol=2)
    ax.axhline(0, color="k", lw=0.5)
    fig.tight_layout()
    with atomic_path(state.out_dir / "mcc_per_fold.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _epoch_rule(cfg: RunConfig) -> str:
    """How each model's epoch was chosen, in words, for the report."""
    budget = f"teacher {cfg.teacher_train.epochs}, students {cfg.student_train.epochs} epochs"
    if cfg.val_animals == 0:
        return f"last epoch of a fixed budget ({budget}), no validation animal"
    monitor = "MCC" if cfg.student_train.monitor == "mcc" else "loss"
    return (
        f"epoch with the best validation {monitor} on {cfg.val_animals} held-out training "
        f"animal(s) per fold (at most {budget})"
    )


def build_report(state: RunState) -> None:
    """Add the evaluation sections to ``state.report``."""
    r, res, cfg, w = state.report, state.results, state.cfg, state.windows
    r.title = f"ethoedge run: {state.dataset_name}"
    n_an = len(np.unique(w.animal))
    r.add(
        "Data and protocol",
        f"- data: `{state.dataset_name}` ({state.source or 'windows'})\n"
        f"- {len(w):,} windows of {w.n_samples} samples at {w.rate_hz:g} Hz from {n_an} animals; "
        f"classes: {', '.join(w.class_names)}\n"
        f"- protocol: **{cfg.protocol}**, {len(res['folds'])} fold(s): "
        f"{', '.join(res['folds'])}; seeds {list(cfg.seeds)}; training windows stride "
        f"{cfg.train_stride} (teacher {cfg.teacher_stride or cfg.train_stride})\n"
        f"- weights kept: {_epoch_rule(cfg)}\n"
        f"- distillation: alpha={cfg.kd.alpha}, T={cfg.kd.temperature}, "
        f"consistent={cfg.kd.consistent}",
    )
    rows = []
    for mname, e in res["models"].items():
        rows.append(
            [
                mname,
                f"{e['params']:,}",
                f"{e['macs'] / 1e6:.2f}",
                f"{e['bytes'] / 1024:.1f}",
                e["mcc"],
                e["mcc_std"],
                f"{e['mcc_fold_mean']:.3f} ± {e['mcc_fold_std']:.3f}",
                e["macro_f1"],
                e["accuracy"],
            ]
        )
    r.add(
        "Results",
        md_table(
            [
                "model",
                "params",
                "MMACs/window",
                "kB",
                "MCC",
                "sd",
                "fold MCC",
                "macro F1",
                "accuracy",
            ],
            rows,
        )
        + "\n\n"
        + HEADLINE
        + "\n\n![MCC per fold](mcc_per_fold.png)",
    )
    if res["paired"]:
        prow = []
        for key, p in res["paired"].items():
            a, b = p["per_fold_and_seed"], p["pooled_by_seed"]
            prow.append(
                [
                    key,
                    a["mean"],
                    f"[{a['ci_low']:.3f}, {a['ci_high']:.3f}]",
                    a["n"],
                    b["mean"],
                    f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}]",
                    b["n"],
                ]
            )
        r.add(
            "Student+KD vs student (paired, same folds and seeds)",
            md_table(
                [
                    "comparison",
                    "ΔMCC per fold×seed",
                    "95% CI",
                    "n",
                    "Δ pooled MCC by seed",
                    "95% CI",
                    "n",
                ],
                prow,
            )
            + "\n\nStudent-t intervals of the mean paired difference (nan: fewer than 2 pairs).",
        )
    pc_rows = []
    for mname, e in res["models"].items():
        pc_rows.append([mname] + [c["f1"] for c in e["per_class"]])
    r.add(
        "Per-class F1 (pooled over folds and seeds)",
        md_table(["model", *w.class_names], pc_rows)
        + "\n\nPrecision/recall/F1/support per class: `per_class_{model}.csv`.\n\n"
        + "\n".join(f"![confusion {m}](confusion_{m}.png)" for m in res["models"] if "_h" not in m),
    )
    frows = []
    for f in res["folds"]:
        frows.append(
            [f]
            + [
                float(np.mean([x["mcc"] for x in e["per_fold"] if x["fold"] == f]))
                for e in res["models"].values()
            ]
        )
    r.add("MCC per held-out fold (mean over seeds)", md_table(["fold", *res["models"]], frows))
    if state.bundle is not None:
        m = state.bundle.meta
        r.add(
            "Deployment bundle",
            f"`model/`: student+KD (H={cfg.student.hidden}) and teacher trained on all "
            f"{len(m['animals'])} animals ({m['n_windows']:,} windows) for the median best "
            f"epoch of the cross-validation (teacher {m['teacher_epochs']}, student "
            f"{m['student_epochs']}). `model_predictions.csv` holds its (in-sample) "
            "predictions; `ethoedge classify model DATA --out FILE.csv` applies it to new data.",
        )
    t = state.timings
    r.add(
        "Timing",
        md_table(["stage", "seconds"], [[k.removesuffix("_s"), v] for k, v in t.items()]),
    )


def write_outputs(state: RunState) -> None:
    """``results.json`` and ``report.md`` (written last: they summarise everything)."""
    state.results["timings_s"] = dict(state.timings)
    atomic_write_json(state.out_dir / "results.json", _jsonable(state.results))
    state.report.write(state.out_dir / "report.md")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        v = float(obj)
        return None if v != v else v
    return obj


# ----------------------------------------------------------------------------- run


def run_windows(
    windows: Windows,
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    dataset_name: str = "windows",
    source: str = "",
    extra_stages: Sequence[Stage] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """The job on ready-made windows (see :func:`run`); returns the results dict."""
    check_config_against_data(cfg, windows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, out / "config.yaml")
    state = RunState(cfg, out, windows, dataset_name, source)
    state.results.update(
        {
            "dataset": dataset_name,
            "source": source,
            "protocol": cfg.protocol,
            "folds": [],
            "seeds": list(cfg.seeds),
            "class_names": list(windows.class_names),
            "n_windows": len(windows),
            "n_animals": len(np.unique(windows.animal)),
            "window_samples": windows.n_samples,
            "rate_hz": float(windows.rate_hz),
            "headline": HEADLINE,
            "ethoedge_version": __version__,
            "torch_threads": torch.get_num_threads(),
        }
    )
    t0 = time.perf_counter()
    cross_validate(state, progress)
    summarize(state)
    write_evaluation(state)
    if cfg.deploy:
        state.bundle = train_deployment(state, progress)
        save_bundle(state.bundle, out / "model")
        probs = _bundle_probs(state.bundle, windows)
        df = predictions_frame(windows, np.arange(len(windows)), probs)
        atomic_write_text(out / "model_predictions.csv", _csv_text(df))
    from ethoedge.pipeline_deploy import (
        add_report_sections,
        check_verified,
        export_deployment,
        quantize_cv,
    )

    if cfg.quantize:
        quantize_cv(state)
    if cfg.deploy:
        export_deployment(state)
    for stage in extra_stages:
        stage(state)
    state.timings["total_s"] = time.perf_counter() - t0
    build_report(state)
    add_report_sections(state)
    write_outputs(state)
    check_verified(state.results, out)
    return state.results


def run(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    extra_stages: Sequence[Stage] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Load the data, cut windows, evaluate teacher / student / student+KD by animal, train the
    deployment bundle and write the report (layout in the module docstring)."""
    from ethoedge.data import load_dataset, make_windows

    t0 = time.perf_counter()
    dataset = load_dataset(cfg.data)
    windows = make_windows(dataset, cfg.window)
    check_config_against_data(cfg, windows, dataset)
    load_s = time.perf_counter() - t0
    results = run_windows(
        windows,
        cfg,
        out_dir,
        dataset_name=dataset.name,
        source=str(dataset.source),
        extra_stages=extra_stages,
        progress=progress,
    )
    results["timings_s"]["load_and_window_s"] = load_s
    atomic_write_json(Path(out_dir) / "results.json", _jsonable(results))
    return results


# ----------------------------------------------------------------------------- classify


def _bundle_probs(bundle: Bundle, windows: Windows, device: str = "cpu") -> np.ndarray:
    from ethoedge.distill.soft_labels import predict_logits

    bundle.student.to(device).eval()
    Xn = bundle.normalizer.apply(windows.X)
    return softmax(predict_logits(bundle.student, Xn, device=device))


def _int_probs(qmodel: Any, X_g: np.ndarray) -> np.ndarray:
    """Softmax of the integer reference's logits (argmax = the integer model's class)."""
    from ethoedge.quantize.reference import quantize_input, reference_logits_batched

    logits = reference_logits_batched(qmodel, quantize_input(X_g, qmodel.in_frac))
    return softmax(logits.astype(np.float64) * 2.0 ** -qmodel.frac("logits"))


UNLABELLED = "__unlabelled__"


@dataclass
class ClassifyResult:
    """What :func:`classify` produced.

    Attributes:
        predictions: one row per window (animal, segment, start, end, label, score_<class>...,
            true_label: empty where the data carry no label).
        budget: hours per predicted behaviour (columns) per animal (rows).
        metrics: MCC, macro F1, accuracy and n over labelled windows, or None without labels.
        out_csv: where ``predictions`` was written.
    """

    predictions: pd.DataFrame
    budget: pd.DataFrame
    metrics: dict[str, float] | None
    out_csv: Path


def classify(
    bundle_dir: str | Path,
    data_cfg: DataConfig,
    out_csv: str | Path,
    *,
    engine: str = "float",
    bits: int = 8,
    device: str = "cpu",
) -> ClassifyResult:
    """Classify every window of new recordings with a bundle's student.

    ``engine="float"`` runs the float PyTorch student; ``engine="int"`` the integer-only
    reference of ``BUNDLE/quantized/w{bits}.json`` (what the exported C computes; scores are
    the softmax of its logits). Labels are the first index of the maximum score. ``device``
    (``auto``, ``cpu`` or ``cuda``) is where the float engine runs.

    Windows are cut with the bundle's window settings at its sampling rate (recordings at
    another rate are resampled), keeping impure windows (label = majority label), so every
    stretch long enough for a window is classified. Labels are optional
    (``data_cfg.unlabelled="keep"`` keeps unlabelled rows); labels outside the bundle's
    classes count as unlabelled for the metrics.
    Time budget: each window accounts for ``min(hop, length)`` samples of time (the new time
    it covers), summed per animal and predicted behaviour, in hours.
    """
    from ethoedge.data import load_dataset, make_windows

    qmodel = None
    if engine not in ("float", "int"):
        raise ConfigError(f"engine must be float or int, got {engine!r}")
    if engine == "int":
        from ethoedge.quantize.qmodel import QuantizedStudent

        q_path = Path(bundle_dir) / "quantized" / f"w{bits}.json"
        if not q_path.is_file():
            raise ConfigError(
                f"no {bits}-bit integer model at {q_path}: run "
                f"`ethoedge quantize {bundle_dir} --bits {bits}` first"
            )
        qmodel = QuantizedStudent.load(q_path)
    bundle = load_bundle(bundle_dir)
    dataset = load_dataset(data_cfg)
    # Every stretch is classified: impure windows are kept (majority label), and unlabelled
    # samples get a placeholder class so that windows without any label are kept too.
    wcfg = replace(bundle.window, drop_impure=False)
    if any(pd.isna(r.labels).any() for r in dataset.recordings):
        recs = [
            replace(r, labels=np.where(pd.isna(r.labels), UNLABELLED, r.labels).astype(object))
            for r in dataset.recordings
        ]
        dataset = replace(dataset, recordings=recs, class_names=(*dataset.class_names, UNLABELLED))
    rates = set(dataset.rates_hz)
    if wcfg.target_rate_hz is None and rates != {bundle.rate_hz}:
        wcfg = replace(wcfg, target_rate_hz=bundle.rate_hz)
    windows = make_windows(dataset, wcfg)
    if len(windows) == 0:
        raise DataError(
            "no windows: every recording is shorter than the model's window", path=data_cfg.path
        )
    if windows.n_samples != bundle.n_samples:
        raise DataError(
            f"windows have {windows.n_samples} samples, the model expects {bundle.n_samples}",
            path=data_cfg.path,
        )
    if qmodel is None:
        from ethoedge.train import resolve_device

        probs = _bundle_probs(bundle, windows, resolve_device(device))
    else:
        probs = _int_probs(qmodel, windows.X)
    # Map the data's labels onto the bundle's classes (-1: none / not a bundle class).
    lut = {n: i for i, n in enumerate(bundle.class_names)}
    y = np.array(
        [lut.get(windows.class_names[v], -1) if v >= 0 else -1 for v in windows.y], dtype=np.int64
    )
    mapped = replace(windows, y=y, class_names=bundle.class_names)
    df = predictions_frame(mapped, np.arange(len(windows)), probs)
    hop = wcfg.hop if wcfg.hop is not None else round(wcfg.hop_s * windows.rate_hz)
    per_window_h = min(hop, windows.n_samples) / windows.rate_hz / 3600.0
    budget = (
        df.assign(hours=per_window_h)
        .pivot_table(index="animal", columns="label", values="hours", aggfunc="sum", fill_value=0)
        .reindex(columns=list(bundle.class_names), fill_value=0.0)
    )
    budget.columns.name = None
    metrics = None
    ok = y >= 0
    if ok.any():
        m = classification_metrics(y[ok], probs[ok].argmax(1), bundle.class_names)
        metrics = {k: m[k] for k in ("mcc", "macro_f1", "accuracy", "n")}
    out_csv = Path(out_csv)
    atomic_write_text(out_csv, _csv_text(df))
    return ClassifyResult(df, budget, metrics, out_csv)
