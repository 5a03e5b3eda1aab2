"""Cross-fitted soft labels: every training window's soft label comes from a teacher that
never saw the window's animal."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ethoedge.distill import KDConfig, load_soft_labels
from ethoedge.experiment.folds import fold_windows
from ethoedge.experiment.jobs import (
    Job,
    JobContext,
    animal_groups,
    run_job,
    soft_labels_path,
    train_model,
)
from ethoedge.experiment.keys import STUDENT_KD, TEACHER
from kdhelpers import separable_windows, tiny_config


def test_animal_groups_partition_the_animals():
    groups = animal_groups(np.array(list("ddcbbaae")), 3)
    assert [list(g) for g in groups] == [["a", "d"], ["b", "e"], ["c"]]
    assert len(animal_groups(np.array(["x", "y"]), 4)) == 2  # never more groups than animals


@pytest.fixture(scope="module")
def fold_run(tmp_path_factory):
    w = separable_windows(n_per_animal=20, animals="abcdef")
    fast = replace(tiny_config().student_train, epochs=2)
    cfg = tiny_config(protocol="loao", val_animals=0, teacher_train=fast, student_train=fast,
                      kd=KDConfig(soft_labels="cross_fit", cross_fit_groups=3),
                      deploy=False, quantize=False)  # fmt: skip
    fold = fold_windows(cfg, w)[0]
    ctx = JobContext(cfg, w, {fold.name: fold}, tmp_path_factory.mktemp("cf"), threads=1)
    out = run_job(ctx, Job(fold.name, TEACHER, 0))
    return ctx, fold, out


def test_no_soft_label_from_a_teacher_that_saw_its_animal(fold_run):
    ctx, fold, out = fold_run
    w = ctx.windows
    prov = json.loads((ctx.work_dir / f"{fold.name}_soft_labels_cross_fit.json").read_text())
    assert prov == out.info
    groups = prov["cross_fit"]
    assert len(groups) == 3
    train_animals = {str(a) for a in np.unique(w.animal[fold.train])}
    assert set().union(*(set(g["animals"]) for g in groups)) == train_animals
    for g in groups:
        assert not set(g["animals"]) & set(g["trained_on"])
        assert set(g["trained_on"]) == train_animals - set(g["animals"])
    # The stored soft label of each window is its group's teacher's logit.
    soft = load_soft_labels(soft_labels_path(ctx.work_dir, fold.name))
    assert np.array_equal(soft.index, fold.train)
    np.testing.assert_array_equal(out.soft_logits, soft.logits)
    animals = w.animal[fold.train]
    fold_teacher, _ = train_model(ctx, Job(fold.name, TEACHER, 0))
    for k, g in enumerate(groups):
        rows = np.isin(animals, g["animals"])
        others = fold.teacher_train[~np.isin(w.animal[fold.teacher_train], g["animals"])]
        teacher, _ = train_model(ctx, Job(fold.name, TEACHER, 0), teacher_idx=others,
                                 name=f"{fold.name}_teacher_cf{k}")  # fmt: skip
        with torch.no_grad():
            z = teacher(torch.from_numpy(fold.normalizer.apply(w.X[fold.train[rows]])))
        np.testing.assert_allclose(soft.logits[rows], z.numpy(), rtol=1e-5, atol=1e-5)
        # and not the fold teacher's, which saw every training animal
        with torch.no_grad():
            zf = fold_teacher(torch.from_numpy(fold.normalizer.apply(w.X[fold.train[rows]])))
        assert not np.allclose(soft.logits[rows], zf.numpy())


def test_distilled_student_trains_on_the_cross_fitted_labels(fold_run):
    ctx, fold, out = fold_run
    res = run_job(ctx, Job(fold.name, STUDENT_KD, 0), out.soft_logits)
    assert res.probs.shape == (len(fold.test), 3)
