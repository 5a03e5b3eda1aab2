"""Independent tasks on one of three executors: in this process (``serial``), on local
worker processes (``processes``) or on a Ray cluster (``ray``).

:func:`map_tasks` maps a function over items (``classify``'s files; :func:`task_pool` keeps
its workers for several calls); :func:`ray_session`
connects to Ray. Both are free of the training stages, so that classifying new recordings
imports neither them nor scikit-learn; :mod:`ethoedge.experiment.executor` schedules training
jobs on the same executors.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from typing import Any

from ethoedge.errors import ConfigError

EXECUTORS = ("serial", "processes", "ray")
RAY_MISSING = "executor 'ray' needs the ray package: pip install 'ethoedge[ray]'"


def check_executor(executor: str, ray_address: str | None = None) -> None:
    """Raise a ConfigError for an executor this machine cannot run (an unknown name, or Ray
    without its package), or a Ray address for another executor, before anything is
    written."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    if ray_address and executor != "ray":
        raise ConfigError(
            f"--ray-address needs --executor ray (ray_address {ray_address!r} with executor"
            f" {executor!r})"
        )
    if executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ConfigError(RAY_MISSING)


@contextmanager
def ray_session(workers: int, address: str | None) -> Iterator[Any]:
    """The ray module, connected to ``address`` or to a local instance of ``workers`` CPUs
    that is started here if none is running (and then shut down on leaving)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if address:
            init["address"] = address
        else:
            init.update(num_cpus=workers, include_dashboard=False)
        ray.init(**init)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def spawn_pool(workers: int, initializer: Callable[..., None], initargs: tuple) -> Any:
    """A pool of ``workers`` local processes, each a fresh interpreter (spawn: forking after
    PyTorch has started its threads can hang) set up by ``initializer(*initargs)``."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )


def _map_init(threads: int) -> None:
    from ethoedge.models.device import set_cpu_threads

    set_cpu_threads(threads)


def progress_bar(enabled: bool, *, running: bool = False) -> Any:
    """The one progress bar of a set of tasks or jobs: description, bar, finished of total
    (and, with ``running``, how many are running: field ``running``), elapsed time and the
    last one finished (field ``last``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    count = [TextColumn("finished, {task.fields[running]} running")] if running else []
    return Progress(  # file and job names are text: no markup parsed in them
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        *count,
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}", markup=False),
        disable=not enabled,
    )


def runs_here(executor: str, n_items: int) -> bool:
    """Whether ``n_items`` tasks on ``executor`` run in this process: serially, or one task
    on local processes (a worker would add only its start-up)."""
    return executor == "serial" or (executor == "processes" and n_items <= 1)


class TaskPool:
    """Independent tasks on one executor, for several :meth:`map` calls in a row: the worker
    processes (or the Ray session) start at the first call that needs them and serve every
    later one, until :meth:`close` (:func:`task_pool` closes it on leaving)."""

    def __init__(self, executor: str = "serial", workers: int = 1,
                 ray_address: str | None = None) -> None:  # fmt: skip
        check_executor(executor, ray_address)
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.executor, self.workers, self.ray_address = executor, workers, ray_address
        self._pool: Any = None  # the local worker processes
        self._ray: Any = None  # the ray module, connected (its session left by _stack)
        self._stack = ExitStack()

    def _processes(self) -> Any:
        if self._pool is None:
            threads = max(1, (multiprocessing.cpu_count() or 1) // self.workers)
            self._pool = spawn_pool(self.workers, _map_init, (threads,))
        return self._pool

    def _ray_module(self) -> Any:
        if self._ray is None:
            self._ray = self._stack.enter_context(ray_session(self.workers, self.ray_address))
        return self._ray

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ray = None
        self._stack.close()

    def runs_here(self, n_items: int) -> bool:
        """Whether :meth:`map` runs ``n_items`` items in this process (:func:`runs_here`)."""
        return runs_here(self.executor, n_items)

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        *,
        progress: bool = True,
        label: str = "tasks",
        describe: Callable[[Any], str] = str,
    ) -> list[Any]:
        """``[fn(item) for item in items]`` on the pool's executor (see :func:`map_tasks`)."""
        items = list(items)
        bar = progress_bar(progress)
        out: list[Any] = [None] * len(items)
        executor = self.executor
        with bar:
            task = bar.add_task(label, total=len(items), last="")
            # One item gains nothing from a worker process but its start-up: it runs here
            # (the same result; a Ray cluster is still used as asked).
            if self.runs_here(len(items)):
                for i, item in enumerate(items):
                    name = describe(item)

                    def tick(msg: str, name: str = name) -> None:
                        bar.update(task, last=f"{name}: {msg}")

                    out[i] = fn(item, tick=tick)
                    bar.update(task, advance=1, last=name)
                return out
            if executor == "processes":
                pool = self._processes()
                futs = {pool.submit(fn, item): i for i, item in enumerate(items)}
                pending = set(futs)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        out[futs[f]] = f.result()
                        bar.update(task, advance=1, last=describe(items[futs[f]]))
                return out
            ray = self._ray_module()
            remote = ray.remote(num_cpus=1)(fn)
            refs = {remote.remote(item): i for i, item in enumerate(items)}
            pending_refs = list(refs)
            while pending_refs:
                ready, pending_refs = ray.wait(pending_refs, num_returns=1)
                for r in ready:
                    out[refs[r]] = ray.get(r)
                    bar.update(task, advance=1, last=describe(items[refs[r]]))
        return out


@contextmanager
def task_pool(
    executor: str = "serial", workers: int = 1, ray_address: str | None = None
) -> Iterator[TaskPool]:
    """A :class:`TaskPool`, closed on leaving."""
    pool = TaskPool(executor, workers, ray_address)
    try:
        yield pool
    finally:
        pool.close()


def map_tasks(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    executor: str = "serial",
    workers: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    label: str = "tasks",
    describe: Callable[[Any], str] = str,
) -> list[Any]:
    """``[fn(item) for item in items]`` in this process, on local worker processes or on Ray,
    results in the order of ``items`` whatever order they finish in. ``fn`` must be a
    module-level function (pickled by name); where it runs in this process (``serial``, or
    ``processes`` with a single item) it is also given a ``tick`` keyword: a callable that
    shows progress within an item. A worker process uses
    ``cpu_count // workers`` threads for its models (PyTorch's and the NumPy float
    engine's); a single item runs in this process. One progress bar counts finished items.
    Several calls in a row can share their workers: :func:`task_pool`."""
    with task_pool(executor, workers, ray_address) as pool:
        return pool.map(fn, items, progress=progress, label=label, describe=describe)
