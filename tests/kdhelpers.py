"""Helpers for the teacher/student/KD tests: a separable generated data set, tiny configs."""

from __future__ import annotations

import numpy as np

from ethoedge.baseline import BaselineConfig
from ethoedge.config import RunConfig
from ethoedge.data import Windows
from ethoedge.models import StudentConfig, TeacherConfig
from ethoedge.train import AugmentConfig, TrainConfig


def separable_windows(
    n_per_animal: int = 60, animals: str = "abcde", L: int = 20, seed: int = 0
) -> Windows:
    """Three classes that differ in the mean of axis x (-0.8, 0, +0.8 g) plus noise."""
    rng = np.random.default_rng(seed)
    n = n_per_animal * len(animals)
    y = np.tile(np.arange(3), n // 3 + 1)[:n]
    rng.shuffle(y)
    X = rng.normal(scale=0.2, size=(n, 3, L)).astype(np.float32)
    X[:, 0, :] += (y[:, None] - 1) * 0.8
    X[:, 2, :] += 1.0  # gravity on z
    animal = np.repeat(np.array(list(animals)), n_per_animal)
    start = np.arange(n, dtype=np.float64) * 2.0
    return Windows(X, y.astype(np.int64), animal, np.full(n, "0"), start, start + 2.0,
                   ("left", "mid", "right"), 10.0)  # fmt: skip


def tiny_config(**kw: object) -> RunConfig:
    """A run that trains in seconds: 4-filter teacher, H=4 student, few epochs, no augmentation."""
    fast = TrainConfig(epochs=4, batch_size=16, lr=2e-2, patience=0, device="cpu",
                       augment=AugmentConfig(rotate=False, scale=0.0, jitter=0.0))  # fmt: skip
    base = dict(
        teacher=TeacherConfig(filters=(4, 4, 4)),
        student=StudentConfig(hidden=4),
        teacher_train=fast,
        student_train=fast,
        protocol="holdout",
        seeds=(0,),
        baseline=BaselineConfig(n_estimators=30),
    )
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]
