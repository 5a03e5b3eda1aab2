"""``ethoedge run``: the stages in order. Data -> folds -> jobs (teacher, soft labels,
students; on an executor) -> aggregate -> deploy (quantize, bundle, C export, verification)
-> report.

Output directory::

    config.yaml  results.json  report.md   written together as the run ends
                            (work/config.yaml: the config of the run in progress)
    per_class_{model}.csv  confusion_{model}.csv/.png  mcc_per_fold.png
    predictions_cv.csv      every window's held-out prediction per model and seed
    model/                  the deployment bundle (trained on all animals)
    model/quantized/w{W}.json  its integer model at each of ``cfg.export_bits``
    model_predictions.csv   the bundle's student on every window (what ``classify`` reproduces)
    model_predictions_w{W}.csv  the same by the integer model (``classify --engine int``)
    c/w{W}/                 the exported C module, verified against the integer reference
    mcc_vs_bits_{model}.png, predictions_cv_quantized.csv  the quantized cross-validated students
    work/                   checkpoints, soft labels and predictions of every job (a re-run
                            resumes from them)

A run into a folder that holds an earlier run's answers removes those of the outputs above
that it does not write again (files by their names, ``model/`` where it has a ``bundle.json``,
``c/w{W}/`` where it has an ``export.json``), so the folder holds one run's answers; nothing
else there is touched.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ethoedge import __version__
from ethoedge.bundle import save_bundle
from ethoedge.config import RunConfig, StudentRecipe, save_yaml
from ethoedge.data.windows import Windows
from ethoedge.errors import ConfigError, unwritable
from ethoedge.experiment.aggregate import (
    HEADLINE,
    Prediction,
    Results,
    aggregate,
    ensemble_predictions,
)
from ethoedge.experiment.deploy import (
    add_deployment_costs,
    check_verified,
    deploy_with_cross_validation,
    deployment_jobs,
    export_deployment,
    quantize_folds,
    train_deployment,
)
from ethoedge.experiment.executor import execute
from ethoedge.experiment.folds import all_animals, check_config_against_data, fold_windows
from ethoedge.experiment.jobs import JobContext, JobOutput, plan_jobs, student_config
from ethoedge.experiment.keys import BASELINE, ENSEMBLE, TEACHER, ModelKey
from ethoedge.experiment.pool import check_executor
from ethoedge.experiment.recipes import RecipeChoice, choose_recipes
from ethoedge.experiment.report import (
    ReportInput,
    csv_text,
    plot_bits,
    plot_folds,
    predictions_frame,
    write_model_files,
    write_predictions,
    write_report,
    write_results_json,
)
from ethoedge.inference import Classifier
from ethoedge.io import atomic_write_text, make_folders, remove_folders, remove_stale_outputs
from ethoedge.models import GRUStudent, ResNetTeacher, model_cost
from ethoedge.models.device import resolve_device


def _model_for_cost(cfg: RunConfig, key: ModelKey, n_classes: int, n_channels: int) -> Any:
    if key == TEACHER:
        return ResNetTeacher(n_classes, cfg.teacher, n_channels=n_channels)
    return GRUStudent(n_classes, student_config(cfg, key), n_channels=n_channels)


def _baseline_cost(outputs: list[JobOutput]) -> dict[str, Any]:
    """The baseline's size: tree nodes (mean over folds) in place of parameters; it has no
    multiply-accumulate count and is not exported."""
    nodes = [o.info["tree_nodes"] for o in outputs if o.info.get("tree_nodes")]
    return {"params": round(float(np.mean(nodes))) if nodes else None, "macs": None, "bytes": None}


def run_windows(
    windows: Windows,
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    dataset_name: str = "windows",
    source: str = "",
    progress: bool = True,
    recorded_X: np.ndarray | None = None,
) -> dict[str, Any]:
    """The job on ready-made windows (see :func:`run`); returns the ``results.json`` dict.

    ``recorded_X``: for windows calibrated by ``cfg.window.calibrate``, the same windows as
    recorded (before the turn): the exported C is then also verified turning them itself."""
    check_config_against_data(cfg, windows)
    # what this machine must offer, checked before anything is written
    for c in (cfg.teacher_train, cfg.student_train):
        resolve_device(c.device)
    check_executor(cfg.executor, cfg.ray_address)
    out = Path(out_dir)
    made: list[Path] = []
    try:
        made = make_folders(out / "work")
        # the run in progress; out/config.yaml is written with results.json at the end, so
        # that an interrupted run leaves the earlier run's config beside its own results
        save_yaml(cfg, out / "work" / "config.yaml")
    except OSError as e:
        remove_folders(made)
        raise unwritable(out, e, folder=True) from None
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    # folds -> jobs
    folds = fold_windows(cfg, windows)
    ctx = JobContext(cfg, windows, {f.name: f for f in folds}, out / "work", cfg.job_threads)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    use_gpu = resolve_device(cfg.student_train.device) == "cuda"
    t0 = time.perf_counter()
    choices = choose_recipes(ctx, folds, use_gpu=use_gpu, progress=progress)
    if choices:
        ctx = replace(ctx, recipes={f: c.chosen for f, c in choices.items()})
        timings["recipe_selection_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jobs = plan_jobs(cfg, folds)
    deploy_early = deploy_with_cross_validation(cfg)
    if deploy_early:  # in the same pool, first: the longest jobs (every animal's windows)
        dep_fold = all_animals(cfg, windows)
        ctx = replace(ctx, folds={**ctx.folds, dep_fold.name: dep_fold})
        jobs = deployment_jobs(cfg, dep_fold.name) + jobs
    outputs = execute(
        ctx,
        jobs,
        executor=cfg.executor,
        workers=cfg.workers,
        ray_address=cfg.ray_address,
        use_gpu=use_gpu,
        progress=progress,
        label="cross-validation jobs" + (" and deployment models" if deploy_early else ""),
    )
    if deploy_early:
        outputs = {j: o for j, o in outputs.items() if j.fold != dep_fold.name}
    stage = "cross_validation_and_deployment_models_s" if deploy_early else "cross_validation_s"
    timings[stage] = time.perf_counter() - t0

    # aggregate
    predictions = _predictions(outputs.values())
    if cfg.kd.baseline_weight > 0 and TEACHER in predictions and BASELINE in predictions:
        predictions[ENSEMBLE] = ensemble_predictions(
            predictions[TEACHER], predictions[BASELINE], cfg.kd.baseline_weight
        )
    C, channels = len(windows.class_names), windows.X.shape[1]
    # The students' size under the recipe most folds chose (parameters differ by input stage).
    cost_cfg = _most_chosen(choices).apply(cfg) if choices else cfg
    costs = {
        k: model_cost(_model_for_cost(cost_cfg, k, C, channels), windows.n_samples)
        for k in predictions
        if k not in (BASELINE, ENSEMBLE)
    }
    if BASELINE in predictions:
        costs[BASELINE] = _baseline_cost([o for o in outputs.values() if o.job.key == BASELINE])
    extra = {
        k: {"hidden": student_config(cfg, k).hidden} for k in predictions if k.role == "student"
    }
    info = {
        "dataset": dataset_name,
        "source": source,
        "protocol": cfg.protocol,
        "seeds": list(cfg.seeds),
        "class_names": list(windows.class_names),
        "n_windows": len(windows),
        "n_animals": len(np.unique(windows.animal)),
        "window_samples": windows.n_samples,
        "rate_hz": float(windows.rate_hz),
        "headline": HEADLINE,
        "ethoedge_version": __version__,
        "torch_threads": torch.get_num_threads(),
        "executor": cfg.executor,
        "workers": cfg.workers,
        "job_threads": cfg.job_threads,
    }
    if choices:
        info["student_recipes"] = {f: c.to_json() for f, c in choices.items()}
    results = aggregate(
        info, [f.name for f in folds], windows.y, windows.class_names, predictions, costs, extra
    )
    write_predictions(windows, predictions, out / "predictions_cv.csv")

    # deploy: quantized folds, bundle, C
    written = {"predictions_cv.csv"}
    if cfg.quantize:
        t0 = time.perf_counter()
        q = quantize_folds(ctx, predictions, results.models, costs)
        results.models.update(q.entries)
        write_predictions(windows, q.predictions, out / "predictions_cv_quantized.csv")
        written.add("predictions_cv_quantized.csv")
        timings["quantize_cv_s"] = time.perf_counter() - t0
    bundle_meta = None
    if cfg.deploy:
        t0 = time.perf_counter()
        bundle = train_deployment(
            cfg,
            windows,
            ctx.work_dir,
            predictions,
            dataset_name=dataset_name,
            threads=cfg.job_threads,
            progress=progress,
        )
        save_bundle(bundle, out / "model")
        written.add("model")
        bundle_meta = bundle.meta
        probs = Classifier(bundle.student, bundle.normalizer, bundle.class_names).predict_proba(
            windows.X
        )
        df = predictions_frame(windows, np.arange(len(windows)), probs)
        atomic_write_text(out / "model_predictions.csv", csv_text(df))
        written.add("model_predictions.csv")
        timings["deployment_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        dep = export_deployment(cfg, windows, out / "model", out / "c", recorded_X=recorded_X)
        if dep is not None:
            results.deployment = dep.entry
            add_deployment_costs(results.models, dep.entry)
            for W, p in dep.int_probs.items():
                df = predictions_frame(windows, np.arange(len(windows)), p)
                df["label"] = np.asarray(windows.class_names, dtype=object)[dep.int_pred[W]]
                atomic_write_text(out / f"model_predictions_w{W}.csv", csv_text(df))
                written |= {f"model_predictions_w{W}.csv", f"c/w{W}"}
            timings["export_verify_s"] = time.perf_counter() - t0
    _drop_earlier_outputs(out, written)
    timings["total_s"] = time.perf_counter() - t_start
    results.timings = timings

    # report
    _write_all(results, cfg, windows, out, bundle_meta)
    doc = results.to_json()
    check_verified(doc, out)
    return doc


def _most_chosen(choices: dict[str, RecipeChoice]) -> StudentRecipe:
    """The recipe most folds chose (the first chosen among equals)."""
    return Counter(c.chosen for c in choices.values()).most_common(1)[0][0]


def _predictions(outputs: Any) -> dict[ModelKey, list[Prediction]]:
    preds: dict[ModelKey, list[Prediction]] = {}
    for o in outputs:
        o: JobOutput
        preds.setdefault(o.job.key, []).append(
            Prediction(o.job.fold, o.job.seed, o.test_idx, o.probs, o.best_epoch, o.epochs_run)
        )
    return preds


def _drop_earlier_outputs(out: Path, written: set[str]) -> None:
    """Remove what an earlier run into ``out`` left there and this run did not write again, so
    that the folder holds one run's answers: the prediction files of the deployment and of the
    quantized folds, the deployment bundle ``model/`` (a folder with a ``bundle.json``) and
    each exported ``c/w{W}/`` (with an ``export.json``); ``c/`` itself once empty. ``written``
    names what this run wrote (``model``, ``c/w8``, file names)."""
    patterns = ("model_predictions*.csv", "predictions_cv*.csv")
    remove_stale_outputs(out, patterns, written)
    if "model" not in written and (out / "model" / "bundle.json").is_file():
        shutil.rmtree(out / "model")
    c = out / "c"
    for d in sorted(c.glob("w*")) if c.is_dir() else []:
        if f"c/{d.name}" not in written and (d / "export.json").is_file():
            shutil.rmtree(d)
    if c.is_dir() and not any(c.iterdir()):
        c.rmdir()


def _write_all(
    results: Results, cfg: RunConfig, windows: Windows, out: Path, bundle_meta: Any
) -> None:
    write_model_files(results, windows, out)
    plot_folds(results, out / "mcc_per_fold.png")
    plot_bits(results, out)
    write_report(ReportInput(results, cfg, windows, out, bundle_meta))
    save_yaml(cfg, out / "config.yaml")
    write_results_json(results, out)


def run(cfg: RunConfig, out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Load the data, cut windows, evaluate teacher / student / student+KD by animal, train the
    deployment bundle and write the report (layout in the module docstring). Returns the
    ``results.json`` dict."""
    from ethoedge.data import load_dataset, make_windows

    if not isinstance(cfg, RunConfig):
        raise ConfigError(
            f"run() takes a RunConfig (RunConfig.from_dict(d), preset(name)), got"
            f" {type(cfg).__name__}"
        )
    t0 = time.perf_counter()
    dataset = load_dataset(cfg.data)
    recorded_X = None
    if cfg.window.calibrate == "none":
        windows = make_windows(dataset, cfg.window)
    else:  # as make_windows calibrates, keeping the windows as recorded for the C check
        from ethoedge.data.calibrate import calibrate_windows

        windows = make_windows(dataset, replace(cfg.window, calibrate="none"))
        recorded_X = windows.X
        X, _ = calibrate_windows(
            recorded_X, windows.animal, cfg.window.gravity_axis, dataset.source
        )
        windows = replace(windows, X=X)
    check_config_against_data(cfg, windows, dataset)
    load_s = time.perf_counter() - t0
    doc = run_windows(
        windows,
        cfg,
        out_dir,
        dataset_name=dataset.name,
        source=str(dataset.source),
        progress=progress,
        recorded_X=recorded_X,
    )
    doc["timings_s"]["load_and_window_s"] = load_s
    from ethoedge.io import atomic_write_json

    atomic_write_json(Path(out_dir) / "results.json", doc)
    return doc
