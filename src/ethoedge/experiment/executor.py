"""Run a list of training jobs: in this process (``serial``), on local worker processes
(``processes``), or on a Ray cluster (``ray``).

Distilled students wait for their fold's teacher (they need its soft labels); every other job
is free to run at once. Each executor gives the same outputs for the same jobs: a job is a
pure function of its context and key (see :mod:`ethoedge.experiment.jobs`). One progress bar
counts the jobs that are running and finished.

The executors themselves, and :func:`~ethoedge.experiment.pool.map_tasks` for independent
tasks, are in :mod:`ethoedge.experiment.pool`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ethoedge.errors import ConfigError
from ethoedge.experiment.jobs import Job, JobContext, JobOutput, run_job
from ethoedge.experiment.keys import BASELINE, TEACHER
from ethoedge.experiment.pool import check_executor, progress_bar, ray_session, spawn_pool


class _Tracker(AbstractContextManager["_Tracker"]):
    """The one bar over jobs."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.bar = progress_bar(enabled, running=True)
        self.total = total
        self.label = label
        self.running = 0
        self.task: Any = None

    def __enter__(self) -> _Tracker:
        self.bar.__enter__()
        self.task = self.bar.add_task(self.label, total=self.total, running=0, last="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def started(self, n: int = 1) -> None:
        self.running += n
        self.bar.update(self.task, running=self.running)

    def finished(self, out: JobOutput) -> None:
        self.running -= 1
        self.bar.update(self.task, advance=1, running=self.running, last=str(out.job))


def execute(
    ctx: JobContext,
    jobs: Iterable[Job],
    *,
    executor: str = "serial",
    workers: int = 1,
    ray_address: str | None = None,
    use_gpu: bool = False,
    progress: bool = True,
    label: str = "jobs",
) -> dict[Job, JobOutput]:
    """Run ``jobs`` (see the module docstring); returns every job's output."""
    jobs = list(jobs)
    check_executor(executor, ray_address)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    with _Tracker(progress, len(jobs), label) as tracker:
        if executor == "serial":
            return _serial(ctx, jobs, tracker)
        if executor == "processes":
            return _processes(ctx, jobs, workers, tracker)
        return _ray(ctx, jobs, workers, ray_address, use_gpu, tracker)


def _teacher_of(job: Job, ctx: JobContext) -> Job:
    return Job(job.fold, TEACHER, ctx.cfg.seeds[0])


def _priority(job: Job) -> int:
    """Which ready job a free worker takes first: teachers (distilled students wait for them),
    then distilled students (the longest: the teacher runs on every batch they see), plain
    students, and the feature baselines (seconds each) last, to fill the end."""
    if job.key == TEACHER:
        return 0
    if job.key == BASELINE:
        return 3
    return 1 if job.key.kd else 2


def _schedule(
    ctx: JobContext,
    jobs: list[Job],
    submit: Callable[[Job, np.ndarray | None], Any],
    wait_any: Callable[[set[Any]], tuple[set[Any], set[Any]]],
    result: Callable[[Any], JobOutput],
    tracker: _Tracker,
    slots: int | None = None,
) -> dict[Job, JobOutput]:
    """Submit jobs whose teacher is done, collect them as they finish. With ``slots`` (a
    local pool of that many workers) a job is submitted only when a worker is free, the
    first ready job by :func:`_priority` (then in the given order), so that the long jobs
    do not wait at the end of a queue; without, every ready job is submitted at once
    (teachers first) and the cluster schedules them."""
    done: dict[Job, JobOutput] = {}
    order = {j: i for i, j in enumerate(jobs)}
    waiting = sorted(jobs, key=lambda j: (_priority(j) if slots else j.key != TEACHER, order[j]))
    in_flight: dict[Any, Job] = {}
    while waiting or in_flight:
        still = []
        for job in waiting:
            teacher = _teacher_of(job, ctx)
            free = slots is None or len(in_flight) < slots
            if free and (not job.needs_teacher or teacher in done):
                soft = done[teacher].soft_logits if job.needs_teacher else None
                in_flight[submit(job, soft)] = job
                tracker.started()
            else:
                still.append(job)
        waiting = still
        if not in_flight:
            missing = sorted({str(_teacher_of(j, ctx)) for j in waiting})
            raise ConfigError(f"jobs wait for teachers that are not scheduled: {missing}")
        finished, _ = wait_any(set(in_flight))
        for handle in finished:
            out = result(handle)
            done[in_flight.pop(handle)] = out
            tracker.finished(out)
    return {j: done[j] for j in jobs}


def _serial(ctx: JobContext, jobs: list[Job], tracker: _Tracker) -> dict[Job, JobOutput]:
    done: dict[Job, JobOutput] = {}
    for job in jobs:
        soft = None
        if job.needs_teacher:
            teacher = done.get(_teacher_of(job, ctx))
            soft = teacher.soft_logits if teacher is not None else None
        tracker.started()
        done[job] = run_job(ctx, job, soft)
        tracker.finished(done[job])
    return done


# ----------------------------------------------------------------------------- processes

_WORKER_CTX: JobContext | None = None


def _init_worker(ctx: JobContext) -> None:
    global _WORKER_CTX
    import torch

    torch.set_num_threads(ctx.threads)
    _WORKER_CTX = ctx


def _worker_run(job: Job, soft: np.ndarray | None) -> JobOutput:
    assert _WORKER_CTX is not None, "worker not initialised"
    return run_job(_WORKER_CTX, job, soft)


def _processes(
    ctx: JobContext, jobs: list[Job], workers: int, tracker: _Tracker
) -> dict[Job, JobOutput]:
    pool = spawn_pool(workers, _init_worker, (ctx,))
    try:

        def wait_any(handles: set[Future[JobOutput]]) -> tuple[set[Any], set[Any]]:
            d, nd = wait(handles, return_when=FIRST_COMPLETED)
            return set(d), set(nd)

        return _schedule(
            ctx,
            jobs,
            lambda job, soft: pool.submit(_worker_run, job, soft),
            wait_any,
            lambda f: f.result(),
            tracker,
            slots=workers,
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- ray


def _ray_run(ctx: JobContext, job: Job, soft: np.ndarray | None) -> JobOutput:
    return run_job(ctx, job, soft)


def _ray(
    ctx: JobContext,
    jobs: list[Job],
    workers: int,
    address: str | None,
    use_gpu: bool,
    tracker: _Tracker,
) -> dict[Job, JobOutput]:
    with ray_session(workers, address) as ray:
        ctx_ref = ray.put(ctx)
        remote = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(_ray_run)

        def wait_any(handles: set[Any]) -> tuple[set[Any], set[Any]]:
            ready, rest = ray.wait(list(handles), num_returns=1)
            return set(ready), set(rest)

        return _schedule(
            ctx,
            jobs,
            lambda job, soft: remote.remote(ctx_ref, job, soft),
            wait_any,
            lambda ref: ray.get(ref),
            tracker,
        )
