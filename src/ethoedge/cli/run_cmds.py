"""``ethoedge run`` and ``ethoedge classify``: thin layers over :mod:`ethoedge.experiment`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ethoedge.cli.app import app
from ethoedge.cli.options import (
    data_overrides,
    device_opt,
    format_opt,
    labels_opt,
    labels_tz_opt,
    nan_policy_opt,
    out_opt,
    quiet_opt,
    units_opt,
    unlabelled_opt,
    video_start_opt,
)
from ethoedge.errors import ConfigError


@app.command("run")
def run_cmd(
    data: Path | None = typer.Argument(
        None,
        metavar="DATA",
        help="Labelled data: a file, a folder of per-animal files or a glob pattern; omitted: "
        "the bundled default cattle subset (or the config's data.path).",
        show_default=False,
    ),
    out: Path = out_opt("Output directory (report, results, model)."),
    config: Path | None = typer.Option(
        None, "--config", help="A config.yaml (e.g. from an earlier run) instead of a preset."
    ),
    preset_name: str = typer.Option(
        "quick", "--preset", help="quick or full (ignored with --config)."
    ),
    device: str | None = device_opt(),
    format: str | None = format_opt(None),
    units: str | None = units_opt(),
    labels: Path | None = labels_opt(),
    video_start: str | None = video_start_opt(),
    labels_tz: str | None = labels_tz_opt(),
    unlabelled: str | None = unlabelled_opt(),
    nan_policy: str | None = nan_policy_opt(),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="Where the fold jobs run: serial (this process), processes (local worker "
        "processes) or ray (a Ray cluster; pip install 'ethoedge[ray]'). Default: the config's.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Jobs at once for processes/ray (default: the config's)."
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Address of a running Ray cluster (default: start one here)."
    ),
    calibrate: str | None = typer.Option(
        None,
        "--calibrate",
        help="Orientation calibration per animal: gravity (turn each animal's windows so that "
        "its mean gravity lies along window.gravity_axis) or none. Default: the config's.",
    ),
    quiet: bool = quiet_opt(),
) -> None:
    """Train and evaluate teacher, student and student+KD by animal; write report and bundle."""
    from ethoedge.config import load_yaml, preset
    from ethoedge.experiment import run

    cfg = load_yaml(config) if config is not None else preset(preset_name)
    data_cfg = data_overrides(
        cfg.data,
        path=data,
        format=format,
        units=units,
        labels=labels,
        video_start=video_start,
        tz=labels_tz,
        unlabelled=unlabelled,
        nan_policy=nan_policy,
    )
    cfg = replace(cfg, data=data_cfg)
    if calibrate is not None:
        cfg = replace(cfg, window=replace(cfg.window, calibrate=calibrate))
    if device is not None:
        cfg = replace(
            cfg,
            teacher_train=replace(cfg.teacher_train, device=device),
            student_train=replace(cfg.student_train, device=device),
        )
    jobs = {"executor": executor, "workers": workers, "ray_address": ray_address}
    cfg = replace(cfg, **{k: v for k, v in jobs.items() if v is not None})
    if executor not in (None, "ray") and ray_address is None:
        cfg = replace(cfg, ray_address=None)  # the config's address was for its Ray executor
    results = run(cfg, out, progress=not quiet)
    con = Console(markup=False)
    table = Table(title=f"{results['dataset']}: {results['protocol']}, seeds {results['seeds']}")
    for col in ("model", "params", "MCC", "sd", "macro F1", "accuracy"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, e in results["models"].items():
        params = "-" if e.get("params") is None else f"{e['params']:,}"
        table.add_row(
            name, params, f"{e['mcc']:.3f}", f"{e['mcc_std']:.3f}", f"{e['macro_f1']:.3f}",
            f"{e['accuracy']:.3f}",
        )  # fmt: skip
    con.print(table)
    dep = results.get("deployment")
    if dep:
        for wkey, c in dep["widths"].items():
            for target, v in c["verify"].items():
                con.print(f"C {wkey} {target}: {v['identical']}/{v['windows']} windows identical")
    bundle = f"   model bundle: {Path(out) / 'model'}" if (Path(out) / "model").is_dir() else ""
    con.print(f"report: {Path(out) / 'report.md'}{bundle}")


@app.command("classify")
def classify_cmd(
    bundle: Path = typer.Argument(
        ..., metavar="BUNDLE", help="A model bundle directory (RUN_DIR/model)."
    ),
    data: str = typer.Argument(
        ...,
        metavar="DATA",
        help="Recordings to classify (labels optional): a file, a folder of per-animal files "
        "or a glob pattern such as 'logs/cow_*.parquet'.",
    ),
    out: Path = out_opt(
        "A folder (windows.csv, bouts.csv, budget.csv, ethogram_<animal>.png, budget.png) or a "
        "FILE.csv (the windows only)."
    ),
    format: str = format_opt(),
    units: str | None = units_opt(),
    engine: str = typer.Option(
        "float",
        "--engine",
        help="float (the float student), int (integer reference, as the C) or c (the exported C "
        "compiled for this machine with gcc; the int engine's results, faster).",
    ),
    bits: int | None = typer.Option(
        None, "--bits", help="Word length of the int and c engines: 8 or 16 (default 8)."
    ),
    device: str | None = device_opt(),
    tz: str = typer.Option(
        "UTC",
        "--tz",
        help="Local time zone of dates and clock times (IANA name, e.g. Europe/Berlin).",
    ),
    smooth: int = typer.Option(
        1,
        "--smooth",
        min=1,
        help="Majority (median) filter over this odd number of windows "
        "before bouts and budgets (1: off).",
    ),
    min_bout: float = typer.Option(
        0.0,
        "--min-bout",
        min=0.0,
        help="Bouts shorter than this many seconds join the bout before them (0: off).",
    ),
    executor: str = typer.Option(
        "serial", "--executor", help="Where the files are classified: serial, processes or ray."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Files at once (processes/ray)."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Address of a running Ray cluster (default: start one here)."
    ),
    chunk_rows: int | None = typer.Option(
        None,
        "--chunk-rows",
        min=1,
        help="Rows read at a time from a streamed file (default: 200,000 split between "
        "the workers).",
    ),
    labels: Path | None = labels_opt(),
    video_start: str | None = video_start_opt(),
    labels_tz: str | None = labels_tz_opt(),
    nan_policy: str | None = nan_policy_opt(),
    plots: bool = typer.Option(
        True, "--plots/--no-plots", help="Draw the ethograms and the budget chart (PNG)."
    ),
    quiet: bool = quiet_opt(),
) -> None:
    """Classify every window; write bouts, daily time budgets and ethograms; print hours per
    behaviour per animal (and MCC, macro F1 and the confusion matrix when labelled)."""
    from ethoedge.data.config import DataConfig
    from ethoedge.experiment import classify

    if bits is not None and engine == "float":
        raise ConfigError(
            "--bits sets the word length of the int and c engines; --engine float has none"
        )
    cfg = data_overrides(
        DataConfig(unlabelled="keep"), path=data, format=format, units=units, labels=labels,
        video_start=video_start, tz=labels_tz, nan_policy=nan_policy,
    )  # fmt: skip
    res = classify(
        bundle, cfg, out, engine=engine, bits=8 if bits is None else bits,
        device=device or "auto", tz=tz,
        smooth=smooth, min_bout_s=min_bout, executor=executor, workers=workers,
        ray_address=ray_address, chunk_rows=chunk_rows, plots=plots, progress=not quiet,
    )  # fmt: skip
    con = Console(markup=False)
    table = Table(title="time budget (hours per behaviour)")
    table.add_column("animal")
    for c in res.budget.columns:
        table.add_column(str(c), justify="right")
    table.add_column("total", justify="right")
    for animal, row in res.budget.iterrows():
        table.add_row(str(animal), *[f"{v:.2f}" for v in row], f"{row.sum():.2f}")
    con.print(table)
    if res.metrics is not None:
        m = res.metrics
        con.print(
            f"labelled windows: {m['n']:,}  MCC {m['mcc']:.3f}  macro F1 {m['macro_f1']:.3f}"
            f"  accuracy {m['accuracy']:.3f}"
        )
        cm = Table(title="confusion matrix (rows true, columns predicted)")
        cm.add_column("true \\ predicted")
        for c in res.class_names:
            cm.add_column(c, justify="right")
        for name, row in zip(res.class_names, res.confusion, strict=True):
            cm.add_row(name, *[f"{int(v):,}" for v in row])
        con.print(cm)
    if res.unknown:
        names = ", ".join(f"{k!r}: {v:,}" for k, v in res.unknown.items())
        con.print(
            f"note: {sum(res.unknown.values()):,} windows are labelled with behaviours the model"
            f" does not know ({names}): left out of the metrics",
            highlight=False,
        )
    resampled = [n for n in res.notes if "resampled" in n]
    for n in resampled[:5]:  # what changes the answers: windows at another rate than recorded
        con.print(f"note: {n}", highlight=False)
    if len(resampled) > 5:
        con.print(f"note: {len(resampled) - 5} more files resampled", highlight=False)
    if res.removed:
        con.print(
            f"note: removed {len(res.removed)} plot(s) of an earlier run in {res.out} that this"
            f" run did not draw ({', '.join(q.name for q in res.removed[:3])}"
            f"{', ...' if len(res.removed) > 3 else ''})",
            highlight=False,
        )
    what = "windows, bouts, budget" + (", plots" if res.plots else "")
    where = res.out if res.bouts_csv is None else f"{res.out}/ ({what})"
    con.print(f"{res.n_windows:,} windows -> {where}")
