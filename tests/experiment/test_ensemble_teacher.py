"""The ensemble teacher (``kd.baseline_weight``): soft labels mix the ResNet teacher's
probabilities with the feature baseline's, each window's baseline probability from a forest
that never saw the window's animal."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ethoedge.baseline import BaselineConfig, FeatureBaseline
from ethoedge.distill import KDConfig, load_soft_labels
from ethoedge.distill.soft_labels import predict_logits, softmax
from ethoedge.errors import ConfigError
from ethoedge.experiment.folds import fold_windows
from ethoedge.experiment.jobs import Job, JobContext, run_job, soft_labels_path, train_model
from ethoedge.experiment.keys import TEACHER
from kdhelpers import separable_windows, tiny_config


def test_consistent_soft_labels_cannot_be_mixed():
    with pytest.raises(ConfigError, match="baseline_weight"):
        KDConfig(soft_labels="consistent", baseline_weight=0.5)


def test_soft_labels_mix_teacher_and_out_of_animal_baseline(tmp_path):
    w = separable_windows(n_per_animal=20, animals="abcdef")
    fast = replace(tiny_config().student_train, epochs=2)
    base = BaselineConfig(n_estimators=10)
    cfg = tiny_config(protocol="loao", val_animals=0, teacher_train=fast, student_train=fast,
                      kd=KDConfig(cross_fit_groups=3, baseline_weight=0.25), baseline=base,
                      deploy=False, quantize=False)  # fmt: skip
    fold = fold_windows(cfg, w)[0]
    ctx = JobContext(cfg, w, {fold.name: fold}, tmp_path, threads=1)
    out = run_job(ctx, Job(fold.name, TEACHER, 0))
    groups = out.info["ensemble_baseline"]["groups"]
    animals = w.animal[fold.train]
    train_animals = {str(a) for a in np.unique(animals)}
    assert len(groups) == 3
    assert set().union(*(set(g["animals"]) for g in groups)) == train_animals
    teacher, _ = train_model(ctx, Job(fold.name, TEACHER, 0))
    p_teacher = softmax(predict_logits(teacher, fold.normalizer.apply(w.X[fold.train])))
    soft = load_soft_labels(soft_labels_path(ctx.work_dir, fold.name))
    np.testing.assert_array_equal(soft.logits, out.soft_logits)
    mix = softmax(soft.logits)  # T = 1: the mixture itself
    for g in groups:
        assert not set(g["animals"]) & set(g["trained_on"])
        assert set(g["trained_on"]) == train_animals - set(g["animals"])
        rows = np.isin(animals, g["animals"])
        others = fold.train[~rows]
        forest = FeatureBaseline(base).fit(w.X[others], w.y[others], w.rate_hz, 0, n_classes=3)
        p_base = forest.predict_proba(w.X[fold.train[rows]])
        expected = 0.75 * p_teacher[rows] + 0.25 * p_base
        np.testing.assert_allclose(mix[rows], expected, atol=1e-5)
        # a forest fitted on every training animal would give other probabilities
        full = FeatureBaseline(base).fit(
            w.X[fold.train], w.y[fold.train], w.rate_hz, 0, n_classes=3
        )
        assert not np.allclose(full.predict_proba(w.X[fold.train[rows]]), p_base)


def test_the_ensemble_forests_take_their_own_tree_count(tmp_path):
    """``kd.baseline_trees``: the per-group forests of the soft labels have that many trees;
    the baseline row keeps its own ``n_estimators``."""
    w = separable_windows(n_per_animal=20, animals="abcdef")
    fast = replace(tiny_config().student_train, epochs=2)
    base = BaselineConfig(n_estimators=10)
    kd = KDConfig(cross_fit_groups=3, baseline_weight=1.0, baseline_trees=3)
    cfg = tiny_config(protocol="loao", val_animals=0, teacher_train=fast, student_train=fast,
                      kd=kd, baseline=base, deploy=False, quantize=False)  # fmt: skip
    fold = fold_windows(cfg, w)[0]
    ctx = JobContext(cfg, w, {fold.name: fold}, tmp_path, threads=1)
    out = run_job(ctx, Job(fold.name, TEACHER, 0))
    assert out.info["ensemble_baseline"]["trees"] == 3
    animals = w.animal[fold.train]
    mix = softmax(load_soft_labels(soft_labels_path(ctx.work_dir, fold.name)).logits)
    g = out.info["ensemble_baseline"]["groups"][0]
    rows = np.isin(animals, g["animals"])
    others = fold.train[~rows]
    for trees, same in ((3, True), (10, False)):  # weight 1: the forests' probabilities alone
        forest = FeatureBaseline(replace(base, n_estimators=trees)).fit(
            w.X[others], w.y[others], w.rate_hz, 0, n_classes=3
        )
        p = forest.predict_proba(w.X[fold.train[rows]])
        assert np.allclose(np.maximum(mix[rows], 1e-12), np.maximum(p, 1e-12), atol=1e-5) == same


def test_the_deployed_student_is_distilled_from_the_ensemble_teacher(tmp_path):
    from ethoedge.experiment.deploy import train_deployment

    w = separable_windows(n_per_animal=20, animals="abcdef")
    fast = replace(tiny_config().student_train, epochs=2)
    cfg = tiny_config(protocol="loao", val_animals=0, teacher_train=fast, student_train=fast,
                      kd=KDConfig(cross_fit_groups=3, baseline_weight=0.5),
                      baseline=BaselineConfig(n_estimators=10))  # fmt: skip
    bundle = train_deployment(cfg, w, tmp_path, {}, progress=False)
    soft = load_soft_labels(soft_labels_path(tmp_path, "all"))
    assert len(soft.index) == len(w)  # every animal's windows
    p_teacher = softmax(predict_logits(bundle.teacher, bundle.normalizer.apply(w.X[soft.index])))
    mix = softmax(soft.logits)
    # half the teacher's probabilities plus half a forest's: never below half the teacher's
    assert np.all(mix >= 0.5 * p_teacher - 1e-5)
    assert not np.allclose(mix, p_teacher, atol=1e-3)


def test_ensemble_predictions_mix_the_fold_probabilities():
    from ethoedge.experiment.aggregate import Prediction, ensemble_predictions

    rng = np.random.default_rng(0)
    idx = {"a": np.arange(5), "b": np.arange(5, 9)}
    probs = {k: rng.dirichlet(np.ones(3), size=(2, len(v))) for k, v in idx.items()}
    teacher = [Prediction(f, 0, idx[f], probs[f][0], 3, 4) for f in "ab"]
    baseline = [Prediction(f, 0, idx[f], probs[f][1], 0, 0) for f in "ba"]  # another order
    out = ensemble_predictions(teacher, baseline, 0.25)
    assert [p.fold for p in out] == ["a", "b"]
    for p in out:
        np.testing.assert_allclose(p.probs, 0.75 * probs[p.fold][0] + 0.25 * probs[p.fold][1],
                                   rtol=1e-6)  # fmt: skip
        np.testing.assert_array_equal(p.test_idx, idx[p.fold])
    with pytest.raises(ValueError, match="other windows"):
        ensemble_predictions(teacher, [Prediction("a", 0, idx["b"], probs["b"][1], 0, 0)], 0.5)
    with pytest.raises(ValueError, match="weight"):
        ensemble_predictions(teacher, baseline, 0.0)


def test_a_run_with_an_ensemble_teacher_scores_it_beside_teacher_and_baseline(tmp_path):
    import pandas as pd

    from ethoedge.experiment import run_windows

    w = separable_windows(n_per_animal=20, animals="abcd")
    fast = replace(tiny_config().student_train, epochs=2)
    cfg = tiny_config(protocol="loao", val_animals=0, teacher_train=fast, student_train=fast,
                      kd=KDConfig(cross_fit_groups=2, baseline_weight=0.5),
                      baseline=BaselineConfig(n_estimators=10), deploy=False,
                      quantize=False)  # fmt: skip
    res = run_windows(w, cfg, tmp_path / "run", dataset_name="separable", progress=False)
    names = list(res["models"])
    assert names[:3] == ["teacher", "baseline", "ensemble"]
    cv = pd.read_csv(tmp_path / "run" / "predictions_cv.csv")
    score = [f"score_{c}" for c in w.class_names]
    key = ["fold", "start", "animal"]
    t, b, e = (cv[cv.model == m].sort_values(key) for m in ("teacher", "baseline", "ensemble"))
    assert len(e) == len(w)  # LOAO: every window once
    np.testing.assert_allclose(e[score].to_numpy(),
                               0.5 * t[score].to_numpy() + 0.5 * b[score].to_numpy(),
                               atol=2e-6)  # fmt: skip
    assert res["models"]["ensemble"]["per_fold"][0]["n"] > 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| ensemble |" in report and "`ensemble` is the teacher the students" in report
    # Without the mixture there is no ensemble row.
    plain = replace(cfg, kd=KDConfig(cross_fit_groups=2))
    res = run_windows(w, plain, tmp_path / "plain", dataset_name="separable", progress=False)
    assert "ensemble" not in res["models"]
