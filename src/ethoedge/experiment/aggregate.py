"""Stage 3 of a run: from held-out predictions to a typed :class:`Results`, by pure functions.

The headline metric is MCC. For each seed, the held-out predictions of all folds are pooled
(each window is predicted once, by a model that never saw its animal) and one MCC is
computed; a model's ``mcc`` is the mean of these pooled values over seeds and ``mcc_std``
their standard deviation over seeds. The paired comparison of a distilled student with the
plain student of the same size pairs the runs of the same fold and seed (and, pooled, of the
same seed) and gives the Student-t interval of the mean difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ethoedge.evaluate.cv import mean_std, paired_difference
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.experiment.keys import ModelKey

HEADLINE = (
    "MCC is the headline metric. For each seed, the held-out predictions of all folds are "
    "pooled (each window is predicted once, by a model that never saw its animal) and one MCC "
    "is computed; `MCC` is the mean of these pooled values over seeds and `sd` their standard "
    "deviation over seeds (0 with one seed). `fold MCC` is the mean and sd of the per-fold "
    "MCCs over all folds and seeds: its spread shows how much animals differ. The teacher is "
    "trained once per fold (first seed)."
)

METRICS = ("mcc", "macro_f1", "accuracy", "n")


@dataclass(frozen=True)
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
class Results:
    """Everything a run found; :meth:`to_json` is the documented ``results.json``.

    Attributes:
        info: data and protocol (dataset, source, protocol, seeds, class names, sizes, ...).
        folds: fold names, in order.
        models: one entry per model (see :func:`model_entry`).
        paired: ``{"student_kd_vs_student": {...}, ...}`` (see :func:`paired_kd`).
        deployment: the deployment bundle's export, verification and cost, when made.
        timings: seconds per stage.
    """

    info: dict[str, Any]
    folds: list[str]
    models: dict[ModelKey, dict[str, Any]] = field(default_factory=dict)
    paired: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployment: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; model names rendered by :attr:`ModelKey.name`."""
        info = dict(self.info)
        head = {k: info.pop(k) for k in ("dataset", "source", "protocol") if k in info}
        doc: dict[str, Any] = {**head, "folds": list(self.folds), **info}
        doc["models"] = {k.name: v for k, v in sorted_models(self.models).items()}
        doc["paired"] = self.paired
        if self.deployment is not None:
            doc["deployment"] = self.deployment
        doc["timings_s"] = dict(self.timings)
        return jsonable(doc)


def model_order(key: ModelKey, sizes: Sequence[int | None] = ()) -> tuple[Any, ...]:
    """Report order: teacher, baseline, ensemble, float students (headline size first, plain
    before distilled), then quantized students (plain before distilled, widest first)."""
    role = {"teacher": 0, "baseline": 1, "ensemble": 2, "student": 3}[key.role]
    rank = (
        list(sizes).index(key.hidden) if key.hidden in sizes else (0 if key.hidden is None else 99)
    )
    if key.bits is None:
        return (role, 0, rank, key.kd, 0)
    return (role, 1, rank, key.kd, -key.bits)


def sorted_models(models: Mapping[ModelKey, Any]) -> dict[ModelKey, Any]:
    sizes = [None, *sorted({k.hidden for k in models if k.hidden is not None}, reverse=True)]
    return {k: models[k] for k in sorted(models, key=lambda k: model_order(k, sizes))}


def ensemble_predictions(
    teacher: Sequence[Prediction], baseline: Sequence[Prediction], weight: float
) -> list[Prediction]:
    """The ensemble teacher's held-out predictions: per fold, ``(1 - weight) * teacher +
    weight * baseline`` probabilities on the fold's test windows (the mixture that
    ``kd.baseline_weight`` distils, applied to animals neither model saw)."""
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"ensemble weight must be in (0, 1], got {weight}")
    base = {p.fold: p for p in baseline}
    out = []
    for t in teacher:
        b = base.get(t.fold)
        if b is None:
            continue
        if not np.array_equal(t.test_idx, b.test_idx):
            raise ValueError(f"fold {t.fold}: teacher and baseline predicted other windows")
        probs = ((1.0 - weight) * t.probs.astype(np.float64) + weight * b.probs).astype(np.float32)
        out.append(Prediction(t.fold, t.seed, t.test_idx, probs, t.best_epoch, t.epochs_run))
    return out


def pooled_by_seed(
    y: np.ndarray, predictions: Sequence[Prediction], class_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Per seed: the metrics of all folds' held-out predictions pooled."""
    out = []
    for s in sorted({p.seed for p in predictions}):
        ps = [p for p in predictions if p.seed == s]
        idx = np.concatenate([p.test_idx for p in ps])
        m = classification_metrics(y[idx], np.concatenate([p.pred for p in ps]), class_names)
        out.append({"seed": s, **{k: m[k] for k in METRICS}})
    return out


def model_entry(
    y: np.ndarray,
    predictions: Sequence[Prediction],
    class_names: Sequence[str],
    cost: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One model's ``results.json`` entry: metrics pooled per seed (mean/sd over seeds),
    per-fold metrics, per-class figures and the confusion matrix over all folds and seeds.
    ``y``: the true class of every window of the run (index = window)."""
    names = tuple(class_names)
    pooled = pooled_by_seed(y, predictions, names)
    per_fold = []
    for p in predictions:
        m = classification_metrics(y[p.test_idx], p.pred, names)
        per_fold.append(
            {
                "fold": p.fold,
                "seed": p.seed,
                "best_epoch": p.best_epoch,
                "epochs_run": p.epochs_run,
                **{k: m[k] for k in METRICS},
            }
        )
    all_idx = np.concatenate([p.test_idx for p in predictions])
    overall = classification_metrics(
        y[all_idx], np.concatenate([p.pred for p in predictions]), names
    )
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
        **dict(cost or {}),
        "n_seeds": len(pooled),
        "pooled_by_seed": pooled,
        "per_fold": per_fold,
        "per_class": overall["per_class"],
        "confusion": overall["confusion"],
    }


def paired_entries(a_entry: Mapping[str, Any], b_entry: Mapping[str, Any]) -> dict[str, Any]:
    """Model entry ``a`` (:func:`model_entry`) against ``b``: MCC differences paired by fold
    and seed, and pooled MCC differences paired by seed."""
    a = {(r["fold"], r["seed"]): r["mcc"] for r in a_entry["per_fold"]}
    b = {(r["fold"], r["seed"]): r["mcc"] for r in b_entry["per_fold"]}
    keys = sorted(set(a) & set(b))
    pa = {r["seed"]: r["mcc"] for r in a_entry["pooled_by_seed"]}
    pb = {r["seed"]: r["mcc"] for r in b_entry["pooled_by_seed"]}
    seeds = sorted(set(pa) & set(pb))
    return {
        "metric": "mcc",
        "per_fold_and_seed": paired_difference([a[k] for k in keys], [b[k] for k in keys]),
        "pooled_by_seed": paired_difference([pa[s] for s in seeds], [pb[s] for s in seeds]),
    }


def paired_kd(models: Mapping[ModelKey, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every distilled student against the plain student of the same size and word length
    (:func:`paired_entries`)."""
    paired = {}
    for key in sorted_models(models):
        base = key.plain_key
        if key.role != "student" or not key.kd or base not in models:
            continue
        paired[f"{key.name}_vs_{base.name}"] = paired_entries(models[key], models[base])
    return paired


def aggregate(
    info: dict[str, Any],
    folds: Sequence[str],
    y: np.ndarray,
    class_names: Sequence[str],
    predictions: Mapping[ModelKey, Sequence[Prediction]],
    costs: Mapping[ModelKey, Mapping[str, Any]],
    extra: Mapping[ModelKey, Mapping[str, Any]] | None = None,
) -> Results:
    """:class:`Results` of the float models: one :func:`model_entry` per key (with its cost
    figures and ``extra`` fields, e.g. ``hidden``), and the paired KD comparisons."""
    order = {f: i for i, f in enumerate(folds)}
    models = {}
    for key, plist in sorted_models(predictions).items():
        ps = sorted(plist, key=lambda p: (order.get(p.fold, len(order)), p.seed))
        models[key] = model_entry(y, ps, class_names, costs.get(key)) | dict(
            (extra or {}).get(key, {})
        )
    return Results(dict(info), list(folds), models, paired_kd(models))


def jsonable(obj: Any) -> Any:
    """Plain JSON types (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        v = float(obj)
        return None if v != v else v
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj
