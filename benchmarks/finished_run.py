"""Reloading the fold models of a finished ``ethoedge run`` folder, for the probes that score
them on other windows (``tilt_robustness.py``, ``heldout_recordings.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def fold_model(ctx: Any, fold: str, key: str, seed: int, run: Path) -> Any:
    """The model ``key`` (``teacher``, ``student``, ``student_kd``, ...) of ``fold`` and
    ``seed``, from its checkpoint in ``ctx.work_dir``. Exits when there is no checkpoint;
    says so on stderr when the checkpoint was made by other code or settings, in which case
    loading it trains the model again (so the figures are of a retrained model)."""
    from ethoedge.experiment.jobs import Job, train_model
    from ethoedge.experiment.keys import ModelKey

    job = Job(fold, ModelKey.parse(key), seed)
    if not (ctx.work_dir / f"{job.id}.pt").is_file():
        raise SystemExit(f"{run}: no checkpoint of {job.id} (a model of the run?)")
    model, res = train_model(ctx, job)
    if res.resumed_from == 0:  # the checkpoint did not match: trained again
        print(f"{job.id}: its checkpoint was made by other code or settings and was trained"
              " again", file=sys.stderr)  # fmt: skip
    return model
