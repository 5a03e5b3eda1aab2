"""The deployment models train in the cross-validation's job pool when nothing they need comes
from it, and give the same bundle as when they train after it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ethoedge.config import StudentRecipe
from ethoedge.experiment import run_windows
from ethoedge.experiment.deploy import deploy_with_cross_validation, train_deployment
from ethoedge.train import KDConfig
from kdhelpers import separable_windows, tiny_config

torch.set_num_threads(1)
FAST = replace(tiny_config().student_train, epochs=2)


def _cfg(**kw):
    base = dict(protocol="loao", val_animals=0, teacher_train=FAST, student_train=FAST,
                quantize=False, export_bits=(), kd=KDConfig(soft_labels="consistent"))  # fmt: skip
    return tiny_config(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "early"),
    [
        ({}, True),
        ({"val_animals": 1}, False),  # epochs from the cross-validated best epochs
        ({"deploy": False}, False),
        ({"student_train": replace(FAST, patience=2)}, False),  # early stopping switched off
        ({"student_recipes": (StudentRecipe(input="raw"), StudentRecipe())}, False),
    ],
)
def test_when_the_deployment_trains_beside_the_cross_validation(kw, early):
    assert deploy_with_cross_validation(_cfg(**kw)) is early


def test_deployment_in_the_job_pool_gives_the_same_bundle(tmp_path):
    w = separable_windows(n_per_animal=20, animals="abcd")
    cfg = _cfg()
    res = run_windows(w, cfg, tmp_path / "run", dataset_name="sep", progress=False)
    assert "cross_validation_and_deployment_models_s" in res["timings_s"]
    assert "cross_validation_s" not in res["timings_s"]
    work = tmp_path / "run" / "work"
    # trained in the pool, before the cross-validated predictions were aggregated and written
    written = (tmp_path / "run" / "predictions_cv.csv").stat().st_mtime_ns
    for ckpt in ("all_teacher.pt", "all_student_kd_s0.pt"):
        assert (work / ckpt).stat().st_mtime_ns < written, ckpt
    # the cross-validation's figures hold only its own folds
    assert {f["fold"] for f in res["models"]["student_kd"]["per_fold"]} == {
        f"loao-{a}" for a in "abcd"
    }
    # the same bundle as the deployment trained on its own, after the cross-validation
    alone = train_deployment(cfg, w, tmp_path / "alone", {}, progress=False)
    from ethoedge.bundle import load_bundle

    pooled = load_bundle(tmp_path / "run" / "model")
    for a, b in ((pooled.student, alone.student), (pooled.teacher, alone.teacher)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert pooled.meta["student_epochs"] == alone.meta["student_epochs"] == FAST.epochs
