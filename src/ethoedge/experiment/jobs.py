"""Stage 2 of a run: training jobs.

A job is a pure task of (resolved config, fold, seed, model key): it trains one model on its
fold's training windows, writes its checkpoint and its held-out predictions to the run's work
folder, and returns the predictions. A job whose checkpoint is finished returns at once with
the kept weights (resumable: a re-run after a crash continues where it stopped). The teacher
of a fold runs first, with the run's first seed, and its soft labels feed that fold's
distilled students; every other job is independent.

Every job runs with ``RunConfig.job_threads`` torch threads whatever the executor, so serial,
local-process and Ray runs give identical figures.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ethoedge.config import RunConfig, StudentRecipe
from ethoedge.data.windows import Windows
from ethoedge.distill.soft_labels import (
    SoftLabels,
    load_soft_labels,
    make_soft_labels,
    save_soft_labels,
)
from ethoedge.experiment.folds import FoldWindows
from ethoedge.experiment.keys import BASELINE, TEACHER, ModelKey
from ethoedge.inference import Classifier
from ethoedge.io import atomic_path, atomic_write_json
from ethoedge.models import GRUStudent, ResNetTeacher
from ethoedge.models.device import resolve_device
from ethoedge.models.settings import StudentConfig
from ethoedge.train import FitResult, fit, seed_everything


@dataclass(frozen=True, order=True)
class Job:
    """Train ``key`` on ``fold`` with ``seed``."""

    fold: str
    key: ModelKey
    seed: int

    @property
    def id(self) -> str:
        """File stem of the job's checkpoint and predictions in the work folder."""
        if self.key in (TEACHER, BASELINE):
            return f"{self.fold}_{self.key.name}"
        return f"{self.fold}_{self.key.name}_s{self.seed}"

    @property
    def needs_teacher(self) -> bool:
        return self.key.kd

    def __str__(self) -> str:
        once = self.key in (TEACHER, BASELINE)
        return f"{self.fold} {self.key.name}" + ("" if once else f" s{self.seed}")


@dataclass
class JobOutput:
    """A finished job: its held-out predictions (and, for a teacher, its soft labels)."""

    job: Job
    test_idx: np.ndarray
    probs: np.ndarray  # (n_test, C)
    best_epoch: int
    epochs_run: int
    seconds: float = 0.0
    soft_logits: np.ndarray | None = None  # teacher: logits on the fold's training windows
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the baseline's tree nodes

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


@dataclass(frozen=True)
class JobContext:
    """What every job of a run reads: the resolved config, the windows, the folds and the
    work folder. It is sent once to each worker process."""

    cfg: RunConfig
    windows: Windows
    folds: dict[str, FoldWindows]
    work_dir: Path
    threads: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    recipes: dict[str, StudentRecipe] = field(default_factory=dict)  # fold -> its students'

    def config_for(self, fold: str) -> RunConfig:
        """The config a fold's models train with: ``cfg`` with the fold's student recipe
        (:mod:`ethoedge.experiment.recipes`) where it has one."""
        recipe = self.recipes.get(fold)
        return self.cfg if recipe is None else recipe.apply(self.cfg)


def student_sizes(cfg: RunConfig) -> dict[ModelKey, StudentConfig]:
    """Plain student keys of the run and their sizes: the headline size first."""
    out = {ModelKey("student"): cfg.student}
    for h in cfg.student_sizes:
        if int(h) != cfg.student.hidden:
            out[ModelKey("student", hidden=int(h))] = replace(cfg.student, hidden=int(h))
    return out


def student_config(cfg: RunConfig, key: ModelKey) -> StudentConfig:
    """The size of a student key (its float, plain version)."""
    return student_sizes(cfg)[ModelKey("student", hidden=key.hidden)]


def plan_jobs(cfg: RunConfig, folds: list[FoldWindows]) -> list[Job]:
    """Every training job of the cross-validation, in a serial order that respects the
    dependencies: per fold the teacher (and the feature baseline), then each student size x
    seed, plain then distilled. The teacher and the baseline are trained once per fold, with
    the first seed."""
    jobs = []
    for f in folds:
        jobs.append(Job(f.name, TEACHER, cfg.seeds[0]))
        if cfg.baseline is not None:
            jobs.append(Job(f.name, BASELINE, cfg.seeds[0]))
        for key in student_sizes(cfg):
            for seed in cfg.seeds:
                jobs += [Job(f.name, key, seed), Job(f.name, key.with_kd(), seed)]
    return jobs


def soft_labels_path(work_dir: Path, fold: str) -> Path:
    return work_dir / f"{fold}_soft_labels.npz"


def train_model(
    ctx: JobContext,
    job: Job,
    soft_logits: np.ndarray | None = None,
    *,
    teacher_idx: np.ndarray | None = None,
    name: str | None = None,
) -> tuple[torch.nn.Module, FitResult]:
    """Build and train (or reload, from a finished checkpoint) the model of ``job``.

    For a teacher, ``teacher_idx`` replaces the fold's teacher windows and ``name`` the
    checkpoint's file stem (the cross-fitted teachers of a fold)."""
    cfg, w = ctx.config_for(job.fold), ctx.windows
    fold = ctx.folds[job.fold]
    C, channels = len(w.class_names), w.X.shape[1]
    ckpt = ctx.work_dir / f"{name or job.id}.pt"
    seed_everything(job.seed)
    if job.key == TEACHER:
        model: torch.nn.Module = ResNetTeacher(C, cfg.teacher, n_channels=channels)
        tcfg = replace(cfg.teacher_train, seed=job.seed)
        idx = fold.teacher_train if teacher_idx is None else teacher_idx
        kw: dict[str, Any] = {}
    else:
        model = GRUStudent(C, student_config(cfg, job.key), n_channels=channels)
        tcfg = replace(cfg.student_train, seed=job.seed)
        idx = fold.train
        kw = {}
        if job.key.kd:
            if soft_logits is None:
                sl = load_soft_labels(soft_labels_path(ctx.work_dir, job.fold))
                assert np.array_equal(sl.index, fold.train), "soft labels of another fold"
                soft_logits = sl.logits
            kw = {"kd": cfg.kd, "teacher_logits": soft_logits}
            if cfg.kd.consistent:
                teacher_job = Job(job.fold, TEACHER, cfg.seeds[0])
                kw["teacher"] = train_model(ctx, teacher_job)[0]
    val = fold.val
    res = fit(
        model,
        w.X[idx],
        w.y[idx],
        fold.normalizer,
        tcfg,
        X_val=w.X[val] if val is not None else None,
        y_val=w.y[val] if val is not None else None,
        checkpoint=ckpt,
        **kw,
    )
    return model.eval(), res


def run_job(ctx: JobContext, job: Job, soft_logits: np.ndarray | None = None) -> JobOutput:
    """Run one job (see the module docstring); ``soft_logits``: the fold teacher's output for
    a distilled student (read from the work folder when not given)."""
    if job.key == BASELINE:
        return run_baseline_job(ctx, job)
    t0 = time.perf_counter()
    before = torch.get_num_threads()
    torch.set_num_threads(ctx.threads)
    try:
        model, res = train_model(ctx, job, soft_logits)
        w, fold = ctx.windows, ctx.folds[job.fold]
        device = resolve_device(
            ctx.cfg.teacher_train.device if job.key == TEACHER else ctx.cfg.student_train.device
        )
        clf = Classifier(model, fold.normalizer, w.class_names, device=device)
        probs = clf.predict_proba(w.X[fold.test]).astype(np.float32)
        out_soft = None
        info: dict[str, Any] = {}
        if job.key == TEACHER:
            if ctx.cfg.kd.soft_labels == "cross_fit":
                sl, info = cross_fitted_soft_labels(ctx, job, device)
            else:
                sl = make_soft_labels(
                    model,
                    fold.normalizer.apply(w.X[fold.train]),
                    fold.train,
                    w.class_names,
                    ctx.cfg.kd.temperature,
                    device,
                )
            if ctx.cfg.kd.baseline_weight > 0:
                sl, ens_info = ensemble_soft_labels(ctx, job, sl)
                info = {**info, **ens_info}
            save_soft_labels(sl, soft_labels_path(ctx.work_dir, job.fold))
            out_soft = sl.logits
        model.cpu()
    finally:
        torch.set_num_threads(before)
    out = JobOutput(
        job,
        fold.test,
        probs,
        res.best_epoch,
        res.epochs_run,
        time.perf_counter() - t0,
        out_soft,
        info,
    )
    save_predictions(ctx.work_dir / f"{job.id}.pred.npz", out)
    return out


def animal_groups(animals: np.ndarray, k: int) -> list[np.ndarray]:
    """The distinct ``animals`` in ``min(k, n)`` groups: sorted, dealt round-robin."""
    uniq = np.unique(animals)
    k = min(k, len(uniq))
    return [uniq[i::k] for i in range(k)]


def cross_fitted_soft_labels(
    ctx: JobContext, job: Job, device: str
) -> tuple[SoftLabels, dict[str, Any]]:
    """Soft labels of a fold's training windows, each from a teacher that never saw its
    animal: the training animals in ``kd.cross_fit_groups`` groups, one teacher per group
    trained on the other groups' teacher windows. Returns the soft labels and their
    provenance (per group: its animals and the animals its teacher trained on), also written
    to ``work/{fold}_soft_labels_cross_fit.json``."""
    cfg, w = ctx.cfg, ctx.windows
    fold = ctx.folds[job.fold]
    animals = w.animal[fold.train]
    groups = animal_groups(animals, cfg.kd.cross_fit_groups)
    logits = np.zeros((len(fold.train), len(w.class_names)), dtype=np.float32)
    filled = np.zeros(len(fold.train), dtype=bool)
    provenance = []
    for g, members in enumerate(groups):
        others = fold.teacher_train[~np.isin(w.animal[fold.teacher_train], members)]
        teacher, _ = train_model(ctx, job, teacher_idx=others, name=f"{job.id}_cf{g}")
        rows = np.isin(animals, members)
        trained_on = sorted(str(a) for a in np.unique(w.animal[others]))
        assert not set(trained_on) & {str(a) for a in members}, "a teacher saw its windows"
        sl = make_soft_labels(
            teacher,
            fold.normalizer.apply(w.X[fold.train[rows]]),
            fold.train[rows],
            w.class_names,
            cfg.kd.temperature,
            device,
        )
        logits[rows] = sl.logits
        filled |= rows
        provenance.append({"animals": sorted(str(a) for a in members), "trained_on": trained_on})
        teacher.cpu()
    assert filled.all()
    info = {"cross_fit": provenance}
    atomic_write_json(ctx.work_dir / f"{job.fold}_soft_labels_cross_fit.json", info)
    return SoftLabels(logits, cfg.kd.temperature, fold.train, w.class_names), info


def ensemble_soft_labels(
    ctx: JobContext, job: Job, teacher: SoftLabels
) -> tuple[SoftLabels, dict[str, Any]]:
    """The ensemble teacher of ``kd.baseline_weight`` w: probabilities ``(1 - w) *
    softmax(teacher logits) + w * p_baseline``, stored as their log (so the KD temperature
    applies to the mixture). ``p_baseline`` of a training window comes from a feature
    baseline fitted on the fold's other animal groups (``kd.cross_fit_groups`` groups, as in
    :func:`cross_fitted_soft_labels`), never on the window's own animal."""
    from ethoedge.baseline import BaselineConfig, FeatureBaseline

    cfg, w = ctx.cfg, ctx.windows
    fold = ctx.folds[job.fold]
    animals = w.animal[fold.train]
    n_classes = len(w.class_names)
    p_base = np.zeros((len(fold.train), n_classes), dtype=np.float64)
    provenance = []
    bcfg = cfg.baseline or BaselineConfig()
    if cfg.kd.baseline_trees is not None:
        bcfg = replace(bcfg, n_estimators=cfg.kd.baseline_trees)
    for members in animal_groups(animals, cfg.kd.cross_fit_groups):
        rows = np.isin(animals, members)
        others = fold.train[~rows]
        assert not set(np.unique(w.animal[others])) & set(members), "a forest saw its windows"
        model = FeatureBaseline(bcfg).fit(
            w.X[others], w.y[others], w.rate_hz, job.seed, n_classes=n_classes
        )
        p_base[rows] = model.predict_proba(w.X[fold.train[rows]])
        provenance.append(
            {
                "animals": sorted(str(a) for a in members),
                "trained_on": sorted(str(a) for a in np.unique(w.animal[others])),
            }
        )
    assert np.array_equal(teacher.index, fold.train)
    z = teacher.logits.astype(np.float64)
    p_teacher = np.exp(z - z.max(axis=1, keepdims=True))
    p_teacher /= p_teacher.sum(axis=1, keepdims=True)
    wt = cfg.kd.baseline_weight
    mix = (1.0 - wt) * p_teacher + wt * p_base
    logits = np.log(np.maximum(mix, 1e-12)).astype(np.float32)
    info = {"ensemble_baseline": {"weight": wt, "trees": bcfg.n_estimators, "groups": provenance}}
    return SoftLabels(logits, teacher.temperature, teacher.index, teacher.class_names), info


def run_baseline_job(ctx: JobContext, job: Job) -> JobOutput:
    """The feature baseline on one fold: fitted on the fold's training windows, scored on its
    test windows. Resumable from its predictions file (a forest is cheap to refit, and no
    model object is pickled)."""
    from ethoedge.baseline import FeatureBaseline

    path = ctx.work_dir / f"{job.id}.pred.npz"
    fold, w = ctx.folds[job.fold], ctx.windows
    # What the forest was fitted on: predictions of another training set (another stride),
    # other labels or other settings are refitted, not reused.
    h = hashlib.sha256(repr((ctx.cfg.baseline, job.seed, float(w.rate_hz))).encode())
    h.update(np.ascontiguousarray(fold.train).tobytes())
    h.update(np.ascontiguousarray(w.y[fold.train]).tobytes())
    fit_key = h.hexdigest()
    if path.is_file():
        with np.load(path) as z:
            same_fit = "fit_key" in z and str(z["fit_key"]) == fit_key
            if same_fit and np.array_equal(z["test_idx"], fold.test):
                info = {"tree_nodes": int(z["tree_nodes"])} if "tree_nodes" in z else {}
                return JobOutput(job, fold.test, z["probs"], 0, 0, 0.0, None, info)
    t0 = time.perf_counter()
    assert ctx.cfg.baseline is not None
    model = FeatureBaseline(ctx.cfg.baseline).fit(
        w.X[fold.train], w.y[fold.train], w.rate_hz, job.seed, n_classes=len(w.class_names)
    )
    probs = model.predict_proba(w.X[fold.test]).astype(np.float32)
    est = model.estimator_
    nodes = sum(int(t.tree_.node_count) for t in getattr(est, "estimators_", []))
    out = JobOutput(
        job, fold.test, probs, 0, 0, time.perf_counter() - t0, None, {"tree_nodes": nodes}
    )
    save_predictions(path, out, tree_nodes=np.asarray(nodes), fit_key=np.asarray(fit_key))
    return out


def save_predictions(path: Path, out: JobOutput, **extra: np.ndarray) -> None:
    """A job's held-out predictions (and ``extra`` arrays) beside its checkpoint (atomic)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            test_idx=out.test_idx,
            probs=out.probs,
            best_epoch=out.best_epoch,
            epochs_run=out.epochs_run,
            **extra,
        )
