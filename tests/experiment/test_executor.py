"""Fold jobs give the same results on every executor: in this process, on local worker
processes, and on a local Ray instance (started and shut down by the test)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ethoedge.errors import ConfigError
from ethoedge.experiment.executor import execute
from ethoedge.experiment.folds import fold_windows
from ethoedge.experiment.jobs import Job, JobContext, plan_jobs
from ethoedge.experiment.keys import TEACHER
from kdhelpers import separable_windows, tiny_config


def _context(tmp_path, **kw):
    w = separable_windows(n_per_animal=24, animals="abc")
    fast = replace(tiny_config().student_train, epochs=2)
    cfg = tiny_config(protocol="loao", val_animals=0, seeds=(0, 1), student_sizes=(3,),
                      teacher_train=fast, student_train=fast, deploy=False, quantize=False,
                      **kw)  # fmt: skip
    folds = fold_windows(cfg, w)
    return JobContext(cfg, w, {f.name: f for f in folds}, tmp_path, threads=1), folds


def _figures(outputs):
    return {
        job.id: (out.test_idx.tolist(), out.probs.round(6).tolist(), out.best_epoch)
        for job, out in outputs.items()
    }


@pytest.fixture(scope="module")
def serial_outputs(tmp_path_factory):
    ctx, folds = _context(tmp_path_factory.mktemp("serial"))
    jobs = plan_jobs(ctx.cfg, folds)
    return jobs, execute(ctx, jobs, executor="serial", progress=False)


def test_plan_has_every_job_once(serial_outputs):
    jobs, outputs = serial_outputs
    # 3 folds x (teacher + baseline + 2 sizes x 2 seeds x {plain, KD})
    assert len(jobs) == len(set(jobs)) == 3 * (2 + 2 * 2 * 2)
    assert set(outputs) == set(jobs)
    teachers = [j for j in jobs if j.key == TEACHER]
    assert all(outputs[t].soft_logits is not None for t in teachers)
    for job, out in outputs.items():
        assert len(out.test_idx) == 24 and out.probs.shape == (24, 3), job


def test_processes_equal_serial(serial_outputs, tmp_path):
    jobs, serial = serial_outputs
    ctx, _ = _context(tmp_path)
    got = execute(ctx, jobs, executor="processes", workers=2, progress=False)
    assert _figures(got) == _figures(serial)


def test_ray_equals_serial(serial_outputs, tmp_path):
    pytest.importorskip("ray")
    import ray

    jobs, serial = serial_outputs
    ctx, _ = _context(tmp_path)
    got = execute(ctx, jobs, executor="ray", workers=2, progress=False)
    assert not ray.is_initialized()  # the local instance it started is shut down
    assert _figures(got) == _figures(serial)


def test_distilled_students_wait_for_their_teacher(tmp_path, monkeypatch):
    import ethoedge.experiment.executor as ex

    ctx, folds = _context(tmp_path)
    order: list[Job] = []
    real = ex.run_job

    def spy(ctx, job, soft=None):
        if job.key.kd:
            assert soft is not None, f"{job} ran without its teacher's soft labels"
            assert Job(job.fold, TEACHER, ctx.cfg.seeds[0]) in order
        order.append(job)
        return real(ctx, job, soft)

    monkeypatch.setattr(ex, "run_job", spy)
    jobs = plan_jobs(ctx.cfg, folds)
    # Shuffled submission order: the scheduler still runs each teacher before its students.
    shuffled = [jobs[i] for i in np.random.default_rng(0).permutation(len(jobs))]
    results = {}

    def submit(job, soft):  # runs at once; the handle is the job itself
        results[job] = spy(ctx, job, soft)
        return job

    with ex._Tracker(False, len(jobs), "jobs") as tracker:
        ex._schedule(ctx, shuffled, submit, lambda h: (set(h), set()), results.pop, tracker)
    assert len(order) == len(jobs)


def test_unknown_executor_is_a_config_error(tmp_path):
    ctx, folds = _context(tmp_path)
    with pytest.raises(ConfigError, match="executor must be one of"):
        execute(ctx, plan_jobs(ctx.cfg, folds), executor="dask", progress=False)


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_a_ray_address_needs_the_ray_executor(tmp_path, executor):
    """With another executor the address would be ignored without a word."""
    from ethoedge.experiment.pool import map_tasks

    ctx, folds = _context(tmp_path)
    with pytest.raises(ConfigError, match="--ray-address needs --executor ray"):
        execute(ctx, plan_jobs(ctx.cfg, folds), executor=executor, ray_address="host:6379",
                progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match=f"'host:6379' with executor '{executor}'"):
        map_tasks(_pid, [1, 2], executor=executor, ray_address="host:6379", progress=False)


def _pid(item, tick=None):
    import os

    return item, os.getpid()


def test_processes_start_workers_only_for_more_than_one_item():
    import os

    from ethoedge.experiment.pool import map_tasks

    one = map_tasks(_pid, [7], executor="processes", workers=2, progress=False)
    assert one == [(7, os.getpid())]  # one item: run here, no worker start-up
    two = map_tasks(_pid, [1, 2], executor="processes", workers=2, progress=False)
    assert [i for i, _ in two] == [1, 2] and all(pid != os.getpid() for _, pid in two)


def test_a_task_pool_keeps_its_workers_for_several_maps():
    """classify's two passes over the files (orientation, then classification) share one set
    of worker processes: started by the first map that needs them, closed on leaving."""
    import os

    from ethoedge.experiment.pool import task_pool

    with task_pool("processes", workers=2) as pool:
        assert pool.map(_pid, [5], progress=False) == [(5, os.getpid())]  # no workers yet
        first = pool.map(_pid, [1, 2, 3, 4], progress=False)
        second = pool.map(_pid, [1, 2, 3, 4], progress=False)
        workers = pool._pool
        assert [i for i, _ in second] == [1, 2, 3, 4]
        pids = {pid for _, pid in first + second}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert pool._pool is None
    with pytest.raises(RuntimeError):  # the workers were shut down
        workers.submit(int)


def test_map_tasks_on_ray_keeps_the_order_and_shuts_ray_down():
    """classify's files on a local Ray instance: results in item order, and the instance the
    pool started is shut down when it closes."""
    pytest.importorskip("ray")
    import ray

    from ethoedge.data.calibrate import parse_axis  # importable on Ray's workers
    from ethoedge.experiment.pool import task_pool

    with task_pool("ray", workers=2) as pool:
        first = pool.map(parse_axis, ["-z", "x", "y"], progress=False)
        second = pool.map(parse_axis, ["-x", "z"], progress=False)  # the same session
    assert first + second == [(2, -1), (0, 1), (1, 1), (0, -1), (2, 1)]
    assert not ray.is_initialized()


def test_a_local_pool_takes_the_longest_ready_jobs_first(tmp_path):
    """With worker slots, no more jobs are in flight than workers, and a free worker takes the
    ready job of the highest priority: teachers, distilled students, plain students,
    baselines; so the feature baselines (seconds each) fill the end, not the long students."""
    import ethoedge.experiment.executor as ex
    from ethoedge.experiment.jobs import JobOutput

    ctx, folds = _context(tmp_path)
    jobs = plan_jobs(ctx.cfg, folds)
    started: list[Job] = []
    in_flight: list[Job] = []
    peak = 0

    def submit(job, soft):
        nonlocal peak
        assert soft is not None or not job.key.kd
        started.append(job)
        in_flight.append(job)
        peak = max(peak, len(in_flight))
        return job

    def wait_any(handles):
        first = next(j for j in in_flight if j in handles)  # the oldest finishes first
        in_flight.remove(first)
        return {first}, set(handles) - {first}

    def result(job):
        soft = np.zeros((1, 3), np.float32) if job.key == TEACHER else None
        return JobOutput(job, np.arange(0), np.zeros((0, 3)), 0, 0, soft_logits=soft)

    with ex._Tracker(False, len(jobs), "jobs") as tracker:
        ex._schedule(ctx, jobs, submit, wait_any, result, tracker, slots=2)
    assert peak == 2 and len(started) == len(jobs) and set(started) == set(jobs)
    rank = [ex._priority(j) for j in started]
    assert rank == sorted(rank)  # every teacher is done before the first student needs one
    assert [j.key.name for j in started[-3:]] == ["baseline"] * 3
