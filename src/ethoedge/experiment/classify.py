"""``ethoedge classify``: a deployment bundle applied to new recordings, file by file, in
bounded memory, with bouts, daily time budgets and ethograms.

Each data file (a file, a folder of files or a glob pattern) is one task of the engine's
executor (``serial``, local ``processes`` or ``ray``); results come back in file order and
are the same whichever executor runs them. A generic-layout file at the bundle's sampling
rate is streamed in chunks (:mod:`ethoedge.data.stream`: the same windows as whole-file
windowing); a file in another layout, or at another rate (it is resampled), is read whole.
Each task writes its windows and bouts to part files and returns its budget seconds and
confusion counts, so memory does not grow with recording length in the streamed case.
Outputs go to a temporary folder next to ``out`` and are moved into place only when every
file has been classified: nothing half-written on error.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ethoedge.data.config import DataConfig
from ethoedge.data.recording import UNLABELLED
from ethoedge.data.stream import DEFAULT_CHUNK_ROWS, SampleLabeller, WindowBlock
from ethoedge.errors import ConfigError, DataError, unwritable
from ethoedge.evaluate.metrics import metrics_from_confusion
from ethoedge.experiment.bouts import (
    BOUT_COLUMNS,
    Bout,
    BoutBuilder,
    DailyBudget,
    bouts_frame,
)
from ethoedge.io import make_folders, remove_folders, remove_stale_outputs, write_csv_rows

__all__ = ["ClassifyResult", "classify"]

PLOTS = ("ethogram_*.png", "budget.png")  # the plots a folder of answers holds

# A calibrated bundle's first pass keeps the window blocks of files that fit in this many
# bytes (all files together), so that the second pass classifies them without reading and
# windowing those files again; larger files are read twice.
KEEP_WINDOWS_BYTES = 64 << 20


@dataclass
class ClassifyResult:
    """What :func:`classify` produced.

    Attributes:
        out: the output folder, or the one CSV file of ``--out FILE.csv``.
        windows_csv: one row per window (animal, segment, start, end, label,
            score_<class>..., true_label: empty where the data carry no bundle class).
        bouts_csv, budget_csv: the bouts and the daily budget (None in single-file mode).
        plots: the PNGs written (ethogram per animal, daily budget chart).
        daily: the daily budget (animal, date, behaviour, hours, fraction).
        budget: hours per behaviour (columns) per animal (rows), over all days.
        metrics: MCC, macro F1, accuracy and n over labelled windows, or None without labels.
        unknown: windows labelled with a behaviour the bundle does not know, per behaviour
            (left out of the metrics and the confusion matrix).
        confusion: the confusion matrix of those windows (rows true, columns predicted).
        class_names: the bundle's classes (confusion order).
        n_windows: windows classified.
        files: the data files, in the order of the outputs.
        notes: per file, how it was read (streamed or whole, and why).
        removed: plots of an earlier run in the same folder that this run did not draw again
            (ethograms of animals not in this run; the budget chart when plots are off),
            removed so that the folder holds one run's answers.
    """

    out: Path
    windows_csv: Path
    bouts_csv: Path | None
    budget_csv: Path | None
    plots: list[Path]
    daily: pd.DataFrame
    budget: pd.DataFrame
    metrics: dict[str, float] | None
    confusion: np.ndarray
    class_names: tuple[str, ...]
    n_windows: int
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unknown: dict[str, int] = field(default_factory=dict)
    removed: list[Path] = field(default_factory=list)

    @property
    def out_csv(self) -> Path:
        """The windows CSV (the one output of single-file mode)."""
        return self.windows_csv

    @property
    def predictions(self) -> pd.DataFrame:
        """``windows.csv`` read back (whole: for small outputs and tests)."""
        dtype = {"animal": str, "segment": str, "start": float, "end": float}
        return pd.read_csv(self.windows_csv, keep_default_na=False, dtype=dtype)

    @property
    def bouts(self) -> pd.DataFrame:
        """``bouts.csv`` read back (whole)."""
        if self.bouts_csv is None:
            raise ConfigError("single-file mode writes no bouts; give --out a folder")
        return pd.read_csv(self.bouts_csv, dtype={"animal": str, "start": float, "end": float,
                                                  "duration_s": float})  # fmt: skip


class _KeptWindows:
    """Window blocks kept from a calibrated bundle's first pass (in this process), per task,
    within :data:`KEEP_WINDOWS_BYTES` over all tasks: a task whose blocks pass what is left
    keeps none (its file is read again). Thread-safe (the first pass reads several files on
    threads)."""

    def __init__(self, budget: int | None = None) -> None:
        import threading

        self.left = KEEP_WINDOWS_BYTES if budget is None else int(budget)
        self._blocks: dict[int, tuple[list[WindowBlock], str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def nbytes(wb: WindowBlock) -> int:
        return int(wb.X.nbytes + wb.start.nbytes + wb.end.nbytes + wb.label.nbytes)

    def reserve(self, n: int) -> bool:
        """Take ``n`` bytes of the budget, if that many are left."""
        with self._lock:
            if n > self.left:
                return False
            self.left -= n
            return True

    def give_back(self, n: int) -> None:
        with self._lock:
            self.left += n

    def put(self, index: int, blocks: list[WindowBlock], note: str) -> None:
        with self._lock:
            self._blocks[index] = (blocks, note)

    def pop(self, index: int) -> tuple[list[WindowBlock], str] | None:
        """Task ``index``'s blocks and how its file was read (None: not kept), handed over
        once (the budget is not given back: the caller holds them)."""
        with self._lock:
            return self._blocks.pop(index, None)


@dataclass(frozen=True)
class _Task:
    index: int
    path: Path
    bundle_dir: Path
    data: dict[str, Any]
    engine: str
    bits: int
    device: str
    chunk_rows: int
    smooth: int
    min_bout_s: float
    tz: str
    part_dir: Path
    labeller: Any
    gravity: dict[str, np.ndarray] | None = None  # per animal, for calibrated bundles
    kept: _KeptWindows | None = None  # the first pass's blocks (in this process only)


@dataclass
class _FileSummary:
    index: int
    n_windows: int
    confusion: np.ndarray
    seconds: dict[tuple[str, str, str], float]
    animals: list[str]
    note: str
    coverage: _Coverage  # of the annotation intervals by the file's samples (labelled)
    unknown: dict[str, int]  # windows per label that is not a bundle class
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # per animal: windows


@dataclass
class _Coverage:
    """Per animal, the first and last sample time (``spans``) and, for annotation intervals,
    the samples each interval covers (``hits``): what the interval checks of
    :class:`~ethoedge.data.annotations.Annotations` need, summed over chunks and files."""

    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    hits: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, animal: str, lo: float, hi: float, hits: np.ndarray | None) -> None:
        old = self.spans.get(animal, (lo, hi))
        self.spans[animal] = (min(old[0], lo), max(old[1], hi))
        if hits is not None:
            self.hits[animal] = self.hits[animal] + hits if animal in self.hits else hits

    def merge(self, other: _Coverage) -> None:
        for a, (lo, hi) in other.spans.items():
            self.add(a, lo, hi, other.hits.get(a))


class _SpanRecorder:
    """A labeller that also records the :class:`_Coverage` of what it labels: every sample of
    the file passes through it."""

    def __init__(self, inner: SampleLabeller) -> None:
        self.inner = inner
        self.coverage = _Coverage()

    def label_samples(self, animal: str, t: np.ndarray) -> np.ndarray:
        if len(t):
            a = str(animal)
            counts = getattr(self.inner, "samples_per_interval", None)
            hits = counts(a, t) if counts is not None else None
            self.coverage.add(a, float(np.min(t)), float(np.max(t)), hits)
        return self.inner.label_samples(animal, t)


def classify(
    bundle_dir: str | Path,
    data_cfg: DataConfig,
    out: str | Path,
    *,
    engine: str = "float",
    bits: int = 8,
    device: str = "cpu",
    executor: str = "serial",
    workers: int = 1,
    ray_address: str | None = None,
    tz: str = "UTC",
    smooth: int = 1,
    min_bout_s: float = 0.0,
    labels: SampleLabeller | None = None,
    chunk_rows: int | None = None,
    plots: bool = True,
    progress: bool = False,
) -> ClassifyResult:
    """Classify every window of new recordings with a bundle's student.

    ``data_cfg.path`` is a file, a folder of data files or a glob pattern (``None``: the
    bundled default data). ``out`` ending in ``.csv``: only the windows CSV is written
    (single-file mode); else ``out`` is a folder that receives ``windows.csv``, ``bouts.csv``,
    ``budget.csv``, ``ethogram_<animal>.png`` and ``budget.png``
    (:mod:`ethoedge.experiment.bouts` says how windows become bouts and budgets; ``tz`` is
    the local time zone of the dates and clock times, ``smooth`` and ``min_bout_s`` the
    optional cleaning).

    ``engine="float"`` runs the float student (in NumPy on the CPU, without PyTorch; in
    PyTorch on a GPU); ``engine="int"`` the integer-only
    reference of ``BUNDLE/quantized/w{bits}.json`` (what the exported C computes; scores are
    the softmax of its logits); ``engine="c"`` that model's exported C compiled for this
    machine (the same logits, bit for bit); all through
    :class:`~ethoedge.inference.Classifier`. Labels are the classifier's (for the integer
    engines the first index of the largest logit). ``device`` (``auto``, ``cpu`` or ``cuda``) is
    where the float engine runs.

    ``chunk_rows``: rows a streamed file is read at a time; default 200,000 in all, split
    between the files read at once (with ``workers`` processes and at least as many files,
    each reads ``200,000 / workers``), so the memory in flight stays about the same whatever
    the number of workers.

    Windows are cut with the bundle's window settings at its sampling rate (recordings at
    another rate are resampled), keeping impure and unlabelled windows, so every stretch long
    enough for a window is classified. Labels are optional: a label column, or ``labels``, an
    object whose ``label_samples(animal, t)`` labels samples by time (e.g. annotation
    intervals; it replaces the label column), or ``data_cfg.labels`` (an annotation file,
    read with :func:`~ethoedge.data.annotations.read_annotations`). Where windows carry a
    bundle class, the result has MCC, macro F1, accuracy and the confusion matrix; other
    labels count as unlabelled.

    A bundle trained on orientation-calibrated windows (``window.calibrate: gravity``,
    :mod:`ethoedge.data.calibrate`) gets its windows turned alike: a first pass over every file
    sums each animal's windows' means over all of its files, the second classifies each
    animal's windows turned by its rotation. Where both passes run in this process (serially,
    or one file), the first keeps the windows of files that fit in
    :data:`KEEP_WINDOWS_BYTES` (64 MB of windows, all files together) and the second
    classifies those without reading them again.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from ethoedge.bundle import read_bundle_info
    from ethoedge.data.loaders import (
        check_files_apart,
        check_one_layout,
        dataset_files,
        file_layout,
    )
    from ethoedge.data.sources import is_data_name
    from ethoedge.experiment.pool import runs_here, task_pool
    from ethoedge.inference import ENGINES

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {tz!r} (an IANA name, e.g. Europe/Berlin)") from None
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if smooth < 1 or smooth % 2 == 0:
        raise ConfigError(f"smooth must be an odd number of windows >= 1, got {smooth}")
    if not np.isfinite(min_bout_s) or min_bout_s < 0:  # inf would merge all, NaN none
        raise ConfigError(f"min_bout_s must be a finite number >= 0, got {min_bout_s}")
    if chunk_rows is not None and chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be >= 1, got {chunk_rows}")
    bundle_dir = Path(bundle_dir)
    bundle = read_bundle_info(bundle_dir)  # no PyTorch here: workers load the model
    if engine in ("int", "c") and not (bundle_dir / "quantized" / f"w{bits}.json").is_file():
        from ethoedge.inference import Classifier

        Classifier.from_bundle(bundle_dir, engine, bits=bits)  # raises its clear message
    inputs = _input_files(data_cfg)
    if data_cfg.labels is not None:  # annotation intervals: read once, label every file
        from ethoedge.data.annotations import read_annotations

        if labels is None:
            lab = data_cfg.labels
            labels = read_annotations(
                lab.path, video_start=lab.video_start, tz=lab.tz, behaviours=lab.behaviours
            )
        data_cfg = replace(data_cfg, labels=None)
    files, _ = dataset_files(data_cfg.path)  # as loading a data set picks them
    if len(files) > 1:  # as loading a data set checks, from the headers alone
        check_one_layout(files, [file_layout(f, data_cfg) for f in files])
    if chunk_rows is None:  # one budget of rows in memory, whatever the number of readers
        readers = min(workers, len(files)) if executor != "serial" and len(files) > 1 else 1
        chunk_rows = max(1, DEFAULT_CHUNK_ROWS // readers)
    out = Path(out)
    single = out.suffix.lower() == ".csv"
    try:
        is_dir, is_file = out.is_dir(), out.exists() and not out.is_dir()
    except OSError as e:  # a name too long, ...
        raise unwritable(out, e, folder=not single) from None
    if not single and is_file:
        raise ConfigError("is a file: give a folder, or a .csv for the windows only", path=out)
    if single and is_dir:
        raise ConfigError("is a folder: give a FILE.csv, or a folder not named .csv", path=out)
    if not single and not is_dir and is_data_name(out.name):  # e.g. answers.csv.gz, .parquet
        raise ConfigError(
            "names a file, but the windows are written as CSV only: give a FILE.csv, or a folder",
            path=out,
        )
    _check_out_apart(out, single, data_cfg.path, [*files, *inputs])
    made: list[Path] = []  # folders made for ``out``: removed again if classifying fails
    try:
        made = make_folders(out.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        remove_folders(made)
        raise unwritable(out, e, folder=not single) from None
    plotter = None
    done = False
    try:
        tasks = [
            _Task(i, f, bundle_dir, replace(data_cfg, path=str(f)).to_dict(), engine, bits,
                  device, chunk_rows, smooth, min_bout_s, tz, tmp, labels)
            for i, f in enumerate(files)
        ]  # fmt: skip
        # The plots' helper processes fork first (before any thread starts) and import
        # matplotlib while the windows are classified: where the files are classified in
        # this process (serially, or one file), not beside worker processes (with two
        # workers the process tree would pass 600 MB).
        here = runs_here(executor, len(tasks))
        several = plots and not single and here and _several_animals(tasks)
        plotter = _plot_process(several) if plots and not single and here else None
        with task_pool(executor, workers, ray_address) as pool:  # one set of workers for both
            if bundle.window.calibrate != "none":
                tasks = _with_gravity(tasks, pool, progress)
            summaries: list[_FileSummary] = pool.map(
                _classify_file, tasks, progress=progress, label="classify",
                describe=lambda t: t.path.name,
            )  # fmt: skip
        if labels is not None and hasattr(labels, "check_against"):
            # annotations of animals with no recording, outside it or in its gaps, as in `run`
            coverage = _Coverage()
            for s in summaries:
                coverage.merge(s.coverage)
            labels.check_against(coverage.spans)
            labels.check_covered(coverage.hits)
        # one animal in two files at overlapping times would count its time twice
        check_files_apart([(a, str(files[s.index]), lo, hi)
                           for s in summaries for a, (lo, hi) in s.spans.items()])  # fmt: skip
        n_windows = sum(s.n_windows for s in summaries)
        if n_windows == 0:
            raise DataError(
                f"no windows: no recording has a gap-free stretch as long as the model's window"
                f" ({bundle.n_samples} samples, {bundle.n_samples / bundle.rate_hz:g} s at"
                f" {bundle.rate_hz:g} Hz; a step of more than {bundle.window.max_gap_factor:g}"
                " sample periods is a gap)",
                path=data_cfg.path,
            )
        classes = bundle.class_names
        confusion = sum((s.confusion for s in summaries), np.zeros((len(classes),) * 2, int))
        unknown: Counter[str] = Counter()
        for s in summaries:
            unknown.update(s.unknown)
        budget = DailyBudget(tz)
        for s in summaries:
            budget.merge(s.seconds)
        daily = budget.frame(classes)
        metrics = metrics_from_confusion(confusion) if confusion.sum() > 0 else None
        windows_tmp = tmp / "windows.csv"
        w_parts = [tmp / f"w{s.index}.part" for s in summaries]
        _concat(windows_tmp, _windows_header(classes), w_parts)
        written: list[Path] = []
        bouts_csv = budget_csv = None
        png: list[Path] = []
        if single:
            shutil.move(windows_tmp, tmp / "single.csv")
            written = [tmp / "single.csv"]
        else:
            _concat(tmp / "bouts.csv", ",".join(BOUT_COLUMNS) + "\n",
                    [tmp / f"b{s.index}.part" for s in summaries])  # fmt: skip
            daily.to_csv(tmp / "budget.csv", index=False)
            written = [windows_tmp, tmp / "bouts.csv", tmp / "budget.csv"]
            if plots:
                from ethoedge.experiment.ethogram import plot_budget

                animals = list(dict.fromkeys(a for s in summaries for a in s.animals))
                jobs: list[tuple[Any, tuple[Any, ...]]] = []
                for a in animals:
                    parts = [tmp / f"b{s.index}.part" for s in summaries if a in s.animals]
                    p = tmp / f"ethogram_{_safe(a)}.png"
                    jobs.append((_draw_ethogram, (parts, a, classes, tz, p)))
                    written.append(p)
                p = tmp / "budget.png"
                jobs.append((plot_budget, (daily, classes, tz, p)))
                written.append(p)
                _draw_all(jobs, plotter, forked=not several)
        # Every output is complete: move them into place.
        final = [out] if single else [out / p.name for p in written]
        try:
            if not single:
                made = make_folders(out) + made
            if not single and (dirs := [p for p in final if p.is_dir()]):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(dirs[0]))
            for src, dst in zip(written, final, strict=True):
                src.replace(dst)
            written = {p.name for p in final}
            removed = [] if single else remove_stale_outputs(out, PLOTS, written)
        except OSError as e:
            raise unwritable(out, e, folder=not single) from None
        done = True
        if not single:
            bouts_csv, budget_csv = out / "bouts.csv", out / "budget.csv"
            png = [p for p in final if p.suffix == ".png"]
        return ClassifyResult(
            out=out,
            windows_csv=out if single else out / "windows.csv",
            bouts_csv=bouts_csv,
            budget_csv=budget_csv,
            plots=png,
            daily=daily,
            budget=budget.totals(classes),
            metrics=metrics,
            confusion=confusion,
            class_names=classes,
            n_windows=n_windows,
            files=files,
            notes=[s.note for s in summaries],
            unknown=dict(sorted(unknown.items())),
            removed=removed,
        )
    finally:
        if plotter is not None:
            # wait for the helper to exit: an executor left running at interpreter exit can
            # fail to wake its manager thread (OSError: bad file descriptor on stderr)
            plotter.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            remove_folders(made)


def _input_files(cfg: DataConfig) -> list[Path]:
    """The annotation files ``cfg`` reads beside the recordings (labels, a video-start table)."""
    if cfg.labels is None:
        return []
    named = [cfg.labels.path, cfg.labels.video_start]
    return [Path(n) for n in named if n is not None and Path(n).is_file()]


def _check_out_apart(out: Path, single: bool, spec: str | None, inputs: list[Path]) -> None:
    """Answers must not replace an input file (a recording, the annotations), nor go where
    the data argument would read them as recordings next time (into its folder, or a name
    its pattern matches)."""
    import glob

    from ethoedge.data.loaders import folder_named_file
    from ethoedge.data.sources import FOLDER_SUFFIXES, is_data_name

    written = [out] if single else [out / n for n in ("windows.csv", "bouts.csv", "budget.csv")]
    where = [Path(os.path.abspath(w)) for w in written]
    for f in inputs:
        f_abs = Path(os.path.abspath(f))
        if f_abs in where or (f.exists() and any(w.exists() and w.samefile(f) for w in where)):
            raise ConfigError(
                f"would replace {f}, an input of this run: write the answers elsewhere", path=out
            )
    # Hidden files are never read as data; a folder holding a file named like itself is that
    # file (checked above); an existing name with [ ] is a file, not a pattern.
    if spec is None or folder_named_file(Path(spec)) is not None:
        return
    where = [w for w in where if not w.name.startswith(".")]
    if Path(spec).is_dir():
        folder = Path(os.path.abspath(spec))
        read = [w for w in where if w.parent == folder and w.name.lower().endswith(FOLDER_SUFFIXES)]
        what = "is in the data folder" if single else "is the data folder"
    elif glob.has_magic(spec) and not Path(spec).exists():
        read = [w for w in where if w.match(os.path.abspath(spec)) and is_data_name(w.name)]
        what = f"matches the data pattern {spec!r}"
    else:
        return
    if read:
        raise ConfigError(
            f"{what}: the next run over the same data would read {read[0].name} as a"
            " recording; write the answers elsewhere",
            path=out,
        )


def _with_gravity(tasks: list[_Task], pool: Any, progress: bool) -> list[_Task]:
    """The tasks with each animal's mean acceleration, for a calibrated bundle's turn: a
    first pass over every file (on ``pool``, a :class:`~ethoedge.experiment.pool.TaskPool`)
    sums each animal's windows' means (over all its files)."""
    from ethoedge.data.calibrate import GravitySums, no_direction

    sums = GravitySums()
    # Where both passes run in this process, the first keeps the blocks of files small
    # enough (KEEP_WINDOWS_BYTES) for the second: those files are read once.
    kept = _KeptWindows() if pool.runs_here(len(tasks)) else None
    first = [replace(t, kept=kept) for t in tasks]
    threads = min(len(tasks), os.cpu_count() or 1)
    if pool.executor == "serial" and threads > 1:
        # the files on threads of this process (the reading is mostly in pyarrow and NumPy,
        # which release the GIL), the rows in memory split between them as between worker
        # processes (the sums are exact: the same directions however the rows are chunked)
        split = [replace(t, chunk_rows=max(1, t.chunk_rows // threads)) for t in first]
        with ThreadPoolExecutor(threads, thread_name_prefix="ethoedge-gravity") as threaded:
            parts = list(threaded.map(_gravity_sums, split))
    else:
        parts = pool.map(_gravity_sums, first, progress=progress, label="orientation",
                         describe=lambda t: t.path.name)  # fmt: skip
    for part in parts:
        sums.merge(part)
    gravity = sums.directions()
    for a, d in gravity.items():
        if not np.any(d):  # all samples 0, most likely: no direction to turn by
            path = next(t.path for t, part in zip(tasks, parts, strict=True) if a in part.sums)
            raise no_direction(a, path)
    return [replace(t, gravity=gravity, kept=kept) for t in tasks]


def _several_animals(tasks: list[_Task]) -> bool:
    """Whether the files are likely to hold several animals, so several ethograms: several
    files, or one whose layout names animals (an ``animal`` column, or a layout read whole,
    such as the published data sets')."""
    if len(tasks) != 1:
        return True
    from ethoedge.data.stream import streamable
    from ethoedge.data.tables import read_header

    task = tasks[0]
    try:
        cfg = DataConfig.from_dict(task.data)
        return streamable(task.path, cfg) is not None or "animal" in read_header(task.path)
    except (ConfigError, DataError, OSError):  # the classifying says what is wrong
        return True


def _plot_process(several: bool) -> Any:
    """Helper processes for the plots, forked now so that they import matplotlib while this
    process classifies: two for several animals where there are two cores (the ethograms
    and the budget chart drawn side by side; for one animal's ethogram and the budget a
    second helper's import costs the classifying more than it saves), else one. None where
    forking is not safe or not available (another thread running, or no ``fork``): the plots
    are then drawn here."""
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from ethoedge.experiment.ethogram import import_matplotlib

    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    ctx = multiprocessing.get_context("fork")
    n = 2 if several and (os.cpu_count() or 1) > 1 else 1
    pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=import_matplotlib)
    for _ in range(n):
        pool.submit(int)  # a process starts for each task that finds none idle
    return pool


def _draw_all(jobs: list[tuple[Any, tuple[Any, ...]]], plotter: Any, forked: bool = False) -> None:
    """Run the drawing jobs in the helper processes (errors raised here), or here without
    them (or if a helper died). ``forked``: the helper is one process; it draws the jobs
    side by side in processes forked from it (:func:`_side_by_side`) where there are two
    cores."""
    from concurrent.futures.process import BrokenProcessPool

    if plotter is not None:
        try:
            if forked and len(jobs) > 1 and (os.cpu_count() or 1) > 1:
                plotter.submit(_side_by_side, jobs).result()
                return
            for f in [plotter.submit(fn, *args) for fn, args in jobs]:
                f.result()
            return
        except BrokenProcessPool:
            pass
    for fn, args in jobs:
        fn(*args)


def _side_by_side(jobs: list[tuple[Any, tuple[Any, ...]]]) -> None:
    """Run the jobs at once: each but the first in a process forked from this one (the plots'
    helper, where matplotlib is imported already: a fork costs milliseconds), the first
    here; the first error raised here. A job whose process died without a word (killed, out
    of memory) runs again here. One after the other where forking is not safe (another
    thread running) or not available."""
    import pickle
    import threading

    if threading.active_count() > 1 or not hasattr(os, "fork"):
        for fn, args in jobs:
            fn(*args)
        return
    children: list[tuple[int, int, int]] = []  # (pid, read end, job index)
    error: BaseException | None = None
    try:
        for k, (fn, args) in enumerate(jobs[1:], start=1):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: run the job, send its error back, leave at once
                status = 0
                try:
                    os.close(r)
                    fn(*args)
                except BaseException as e:  # sent to the parent, raised there
                    status = 1
                    with os.fdopen(w, "wb") as f:
                        f.write(_pickled_error(e))
                finally:
                    os._exit(status)
            os.close(w)
            children.append((pid, r, k))
        fn, args = jobs[0]
        fn(*args)
    except BaseException as e:  # raised after the children are reaped
        error = e
    finally:
        again = []
        for pid, r, k in children:
            with os.fdopen(r, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            if data and error is None:
                error = pickle.loads(data)
            elif not data and status != 0:
                again.append(k)
    if error is not None:
        raise error
    for k in again:
        fn, args = jobs[k]
        fn(*args)


def _pickled_error(e: BaseException) -> bytes:
    """``e`` pickled where it unpickles again, else a RuntimeError with its type and text."""
    import pickle

    try:
        data = pickle.dumps(e)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))


def _draw_ethogram(
    parts: list[Path], animal: str, classes: tuple[str, ...], tz: str, path: Path
) -> None:
    from ethoedge.experiment.ethogram import plot_ethogram

    plot_ethogram(_animal_bouts(parts, animal), animal, classes, tz, path)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _windows_header(classes: tuple[str, ...]) -> str:
    cols = ["animal", "segment", "start", "end", "label", *[f"score_{c}" for c in classes]]
    return ",".join([*cols, "true_label"]) + "\n"


def _concat(dst: Path, header: str, parts: list[Path]) -> None:
    with open(dst, "w", encoding="utf-8") as f:
        f.write(header)
        for p in parts:
            if p.exists():
                with open(p, encoding="utf-8") as src:
                    shutil.copyfileobj(src, f, 1 << 20)


def _animal_bouts(parts: list[Path], animal: str) -> pd.DataFrame:
    frames = []
    for p in parts:
        if not p.exists() or p.stat().st_size == 0:
            continue
        for chunk in pd.read_csv(p, names=list(BOUT_COLUMNS), dtype={"animal": str},
                                 usecols=[0, 1, 2, 3], chunksize=500_000):  # fmt: skip
            frames.append(chunk[chunk["animal"] == animal])
    if not frames:
        return pd.DataFrame({c: [] for c in BOUT_COLUMNS[:4]})
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- one file

# Read once per process (not once per file); keyed by the files' times, so a bundle written
# again at the same path (retrained, quantized again) is read again.
_CACHE: dict[tuple[str, str, int, str, int], Any] = {}
_BUNDLES: dict[tuple[str, int], Any] = {}


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def _bundle(task: _Task) -> Any:
    """The task's bundle description, read once per process (not once per file)."""
    from ethoedge.bundle import read_bundle_info

    key = (str(task.bundle_dir), _mtime(task.bundle_dir / "bundle.json"))
    if key not in _BUNDLES:
        _BUNDLES[key] = read_bundle_info(task.bundle_dir)
    return _BUNDLES[key]


def _classifier(task: _Task) -> Any:
    from ethoedge.inference import Classifier

    model_file = (task.bundle_dir / "student.npz" if task.engine == "float"
                  else task.bundle_dir / "quantized" / f"w{task.bits}.json")  # fmt: skip
    key = (str(task.bundle_dir), task.engine, task.bits, task.device, _mtime(model_file))
    if key not in _CACHE:
        _CACHE[key] = Classifier.from_bundle(
            task.bundle_dir, task.engine, bits=task.bits, device=task.device
        )
    return _CACHE[key]


def _classify_file(task: _Task, tick: Any = None) -> _FileSummary:
    """Classify one file: windows and bouts to part files; budget seconds and confusion back."""
    from ethoedge.data.windows import window_geometry

    recorder = _SpanRecorder(task.labeller) if task.labeller is not None else None
    task = replace(task, labeller=recorder) if recorder is not None else task
    bundle = _bundle(task)
    clf = _classifier(task)
    cfg = DataConfig.from_dict(task.data)
    classes = bundle.class_names
    length, hop = window_geometry(bundle.window, bundle.rate_hz)
    if length != bundle.n_samples:
        raise DataError(
            f"windows have {length} samples, the model expects {bundle.n_samples}",
            path=task.path,
        )
    step_s = min(hop, length) / bundle.rate_hz
    kept = task.kept.pop(task.index) if task.kept is not None else None
    blocks, note = kept if kept is not None else _blocks(task, cfg, bundle, length, hop)
    lut = {c: i for i, c in enumerate(classes)}
    names = np.asarray(classes, dtype=object)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    builder = BoutBuilder(step_s, smooth=task.smooth, min_bout_s=task.min_bout_s)
    budget = DailyBudget(task.tz)
    animals: list[str] = []
    unknown: dict[str, int] = {}
    spans: dict[str, tuple[float, float]] = {}
    n = 0
    with (
        open(task.part_dir / f"w{task.index}.part", "wb") as wf,
        open(task.part_dir / f"b{task.index}.part", "wb") as bf,
    ):

        def emit(bouts: list[Bout]) -> None:
            if bouts:
                frame = bouts_frame(bouts, task.tz)
                write_csv_rows(bf, {c: frame[c].to_numpy() for c in frame.columns})
                budget.add(bouts)

        def finish(wb: WindowBlock, scored: Future[tuple[np.ndarray, np.ndarray]]) -> None:
            nonlocal n
            pred, probs = scored.result()
            codes, uniq = pd.factorize(wb.label, use_na_sentinel=True)  # None: -1
            y = np.array([*(lut.get(str(u), -1) for u in uniq), -1], np.int64)[codes]
            for k, u in enumerate(uniq):
                if str(u) not in lut and str(u) != UNLABELLED:
                    unknown[str(u)] = unknown.get(str(u), 0) + int(np.sum(codes == k))
            ok = y >= 0
            np.add.at(confusion, (y[ok], pred[ok]), 1)
            lo, hi = spans.get(wb.animal, (np.inf, -np.inf))
            spans[wb.animal] = (min(lo, float(wb.start[0])), max(hi, float(wb.end[-1])))
            write_csv_rows(wf, _window_rows(wb, pred, probs, names, y))
            emit(builder.push(wb.animal, wb.segment, wb.run, wb.start, names[pred]))
            n += len(wb)
            if tick is not None:
                tick(f"{n:,} windows")
            _trim_heap()

        # One block ahead: the classifier scores a block on its own thread while this one
        # reads and windows the next block, and writes the previous one's rows.
        with ThreadPoolExecutor(1, thread_name_prefix="ethoedge-score") as scorer:
            pending: tuple[WindowBlock, Future[tuple[np.ndarray, np.ndarray]]] | None = None
            for wb in blocks:
                if wb.animal not in animals:
                    animals.append(wb.animal)
                # a calibrated bundle's turn, per animal: in float for the float engine, in
                # integers as the firmware turns the samples for the integer engines
                g = None if task.gravity is None else task.gravity[wb.animal]
                scored = scorer.submit(clf.predict_with_proba, wb.X, g)
                if pending is not None:
                    finish(*pending)
                pending = (wb, scored)
            if pending is not None:
                finish(*pending)
        emit(builder.flush())
    coverage = recorder.coverage if recorder is not None else _Coverage()
    return _FileSummary(task.index, n, confusion, budget.seconds, animals, note, coverage, unknown,
                        spans)  # fmt: skip


def _blocks(
    task: _Task, cfg: DataConfig, bundle: Any, length: int, hop: int, labels: bool = True
) -> tuple[Iterable[WindowBlock], str]:
    """The file's window blocks, as recorded (a calibrated bundle's turn is the classifier's,
    from the animal's mean acceleration), and a note on how it was read: streamed, or read
    whole (``labels=False``: streamed windows need not carry their labels)."""
    from ethoedge.data.stream import infer_rate, stream_windows, streamable

    why = streamable(task.path, cfg)
    if why is None:
        rate = infer_rate(task.path, cfg)
        if abs(rate - bundle.rate_hz) > 1e-9:
            why = f"{rate:g} Hz, resampled to the model's {bundle.rate_hz:g} Hz"
    if why is None:
        blocks: Iterable[WindowBlock] = stream_windows(
            task.path,
            cfg,
            length=length,
            hop=hop,
            rate_hz=bundle.rate_hz,
            max_gap_factor=bundle.window.max_gap_factor,
            chunk_rows=task.chunk_rows,
            labeller=task.labeller,
            labels=labels,
        )
        return blocks, f"{task.path.name}: streamed"
    as_recorded = replace(bundle, window=replace(bundle.window, calibrate="none"))
    return _whole_file_blocks(task, cfg, as_recorded), f"{task.path.name}: read whole ({why})"


def _sample_row(path: Path, blocks: list[Any], i: int) -> dict[str, object]:
    """The file and row of sample ``i`` of a recording joined from ``blocks``."""
    return {"path": path, "row": int(np.concatenate([b.rows for b in blocks])[i])}


def _gravity_sums(task: _Task, tick: Any = None) -> Any:
    """The first pass over a file for a calibrated bundle: per animal, the sum of its
    windows' means (:class:`~ethoedge.data.calibrate.GravitySums`)."""
    from ethoedge.data.calibrate import GravitySums
    from ethoedge.data.windows import window_geometry

    bundle = _bundle(task)
    cfg = DataConfig.from_dict(task.data)
    length, hop = window_geometry(bundle.window, bundle.rate_hz)
    sums = GravitySums()
    # Blocks are kept for the second pass (with their labels) where it runs here and labels
    # nothing itself (a labeller records which samples it labelled as it labels them).
    keep = task.kept is not None and task.labeller is None
    first = replace(task, labeller=None)
    blocks, note = _blocks(first, cfg, bundle, length, hop, labels=keep)
    kept: list[WindowBlock] | None = [] if keep else None
    used = 0
    for wb in blocks:
        sums.add(wb.animal, wb.X)
        if kept is not None and task.kept is not None:
            n = _KeptWindows.nbytes(wb)
            if task.kept.reserve(n):
                kept.append(wb)
                used += n
            else:  # too large to keep: read again in the second pass
                task.kept.give_back(used)
                kept = None
        _trim_heap()
    if kept is not None and task.kept is not None:
        task.kept.put(task.index, kept, note)
    return sums


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``; elsewhere a
    no-op). Each block's windows and the float engine's threads leave freed memory behind in
    glibc's arenas that is not reused well; without this, peak memory creeps up with the
    length of the recording."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # no glibc (TypeError: Windows)
        return None


def _window_rows(
    wb: WindowBlock, pred: np.ndarray, probs: np.ndarray, names: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """The block's rows of ``windows.csv``, column by column (no true label: empty)."""
    n = len(wb)
    cols: dict[str, np.ndarray] = {
        "animal": np.full(n, wb.animal, dtype=object),
        "segment": np.full(n, wb.segment, dtype=object),
        "start": wb.start,
        "end": wb.end,
        "label": names[pred],
    }
    for c, name in enumerate(names):
        cols[f"score_{name}"] = probs[:, c].round(6)
    true = np.full(n, None, dtype=object)
    true[y >= 0] = names[y[y >= 0]]
    cols["true_label"] = true
    return cols


def _whole_file_blocks(task: _Task, cfg: DataConfig, bundle: Any) -> list[WindowBlock]:
    """A file read whole (another layout or rate), as window blocks per (animal, segment,
    run): loaded, labelled, windowed (and resampled) as :func:`window_like_bundle` does."""
    from ethoedge.bundle import window_like_bundle
    from ethoedge.data import load_dataset
    from ethoedge.data.dataset import Dataset
    from ethoedge.data.loaders import check_steady_rate
    from ethoedge.data.recording import Recording
    from ethoedge.data.resample import run_bounds
    from ethoedge.data.stream import infer_rate, iter_blocks, streamable

    if streamable(task.path, cfg) is None:  # generic at another rate: our reader, whole
        rate = infer_rate(task.path, cfg)
        parts: dict[tuple[str, str], list[Any]] = {}
        for b in iter_blocks(task.path, cfg, chunk_rows=task.chunk_rows, labeller=task.labeller):
            parts.setdefault((b.animal, b.segment), []).append(b)
        recs = [
            Recording(a, s, np.concatenate([b.t for b in bs]),
                      np.concatenate([b.acc for b in bs]),
                      np.concatenate([b.labels for b in bs]), rate, str(task.path))
            for (a, s), bs in parts.items()
        ]  # fmt: skip
        if cfg.rate_hz is None:  # the rate was inferred: a recording sampled at another is wrong
            for r, bs in zip(recs, parts.values(), strict=True):
                where = functools.partial(_sample_row, task.path, bs)
                check_steady_rate(np.diff(r.t), rate, r.animal, r.segment, where)
        present = {v for r in recs for v in r.labels if v is not None}
        order = tuple(c for c in (cfg.classes or ()) if c in present)
        names = (*order, *sorted(present - set(order)))
        ds = Dataset(task.path.name, recs, names, str(task.path))
    else:
        ds = load_dataset(replace(cfg, unlabelled="keep"))
        if task.labeller is not None:
            recs = [
                replace(r, labels=np.asarray(task.labeller.label_samples(r.animal, r.t), object))
                for r in ds.recordings
            ]
            present = sorted({v for r in recs for v in r.labels if v is not None})
            ds = replace(ds, recordings=recs, class_names=tuple(present))
    w = window_like_bundle(bundle, ds, every_stretch=True)
    # Run of each window: the gap-free run of its recording that holds its start.
    run_starts = {
        (r.animal, r.segment): r.t[run_bounds(r.t, r.rate_hz, bundle.window.max_gap_factor)[:, 0]]
        for r in ds.recordings
    }
    label_names = np.asarray([*w.class_names, None], dtype=object)
    lab = label_names[np.where(w.y >= 0, w.y, len(w.class_names))]
    out: list[WindowBlock] = []
    # (animal, segment) in order of first appearance (the order of whole-file windowing)
    codes, uniq = pd.factorize(pd.Series(w.animal).astype(str) + "\x00" + w.segment.astype(str))
    for g, name in enumerate(uniq):
        a, s = name.split("\x00", 1)
        idx = np.flatnonzero(codes == g)
        run = np.searchsorted(run_starts[(a, s)], w.start[idx], side="right") - 1
        for r in np.unique(run):
            sel = idx[run == r]
            out.append(WindowBlock(a, s, int(r), w.X[sel], w.start[sel], w.end[sel], lab[sel]))
    return out
