"""The students' recipe chosen per fold by inner animal-wise validation: the inner folds never
hold the fold's test animal, the choice is the best pooled inner MCC, and every student of
the fold (and the deployment bundle's) trains with it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ethoedge.config import RunConfig, StudentRecipe
from ethoedge.errors import ConfigError
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.experiment.folds import fold_windows
from ethoedge.experiment.jobs import Job, JobContext, train_model
from ethoedge.experiment.keys import STUDENT, STUDENT_KD
from ethoedge.experiment.recipes import choose_recipes, inner_fold_name, inner_folds
from ethoedge.experiment.run import run_windows
from ethoedge.models import count_params
from kdhelpers import separable_windows, tiny_config

# The classes differ only in the static (gravity) part of axis x: the `dynamic` input stage
# removes it and cannot tell them apart; `raw` can.
BLIND = StudentRecipe(input="dynamic", yaw_deg=0.0)
SEES = StudentRecipe(input="raw", yaw_deg=0.0)


def _cfg(**kw: object) -> RunConfig:
    fast = replace(tiny_config().student_train, epochs=10, lr=5e-2)
    base = dict(protocol="loao", val_animals=0, student_train=fast, quantize=False,
                deploy=False, student_recipes=(BLIND, SEES), recipe_groups=2)  # fmt: skip
    base.update(kw)
    return tiny_config(**base)


def test_recipe_names_and_duplicates():
    assert StudentRecipe().name == "static_dynamic_yaw180"
    assert SEES.name == "raw_yaw0"
    cfg = SEES.apply(tiny_config())
    assert cfg.student.input == "raw" and cfg.student_train.augment.yaw_deg == 0.0
    with pytest.raises(ConfigError, match="duplicates"):
        tiny_config(student_recipes=(SEES, StudentRecipe(input="raw", yaw_deg=0)))
    back = RunConfig.from_dict(_cfg().to_dict())
    assert back.student_recipes == (BLIND, SEES) and back.recipe_groups == 2


def test_inner_folds_never_see_the_test_animal_nor_their_group(tmp_path):
    w = separable_windows(n_per_animal=12, animals="abcde")
    cfg = _cfg(recipe_groups=3)
    folds = fold_windows(cfg, w)
    ctx = JobContext(cfg, w, {f.name: f for f in folds}, tmp_path)
    for fold in folds:
        test_animal = set(np.unique(w.animal[fold.test]))
        groups, inner = inner_folds(ctx, fold)
        assert len(groups) == 3 and len(inner) == 3 * 2
        assert set().union(*map(set, groups)) == set(np.unique(w.animal[fold.train]))
        for g, members in enumerate(groups):
            for recipe in (BLIND, SEES):
                r, f = inner[inner_fold_name(fold.name, recipe, g)]
                assert r == recipe
                train_animals = set(np.unique(w.animal[f.train]))
                assert set(np.unique(w.animal[f.test])) == set(members)
                assert not train_animals & set(members)
                assert not (train_animals | set(members)) & test_animal
                assert set(f.train) | set(f.test) == set(fold.train)


@pytest.fixture(scope="module")
def chosen(tmp_path_factory):
    w = separable_windows(n_per_animal=24, animals="abcd")
    cfg = _cfg()
    folds = fold_windows(cfg, w)
    ctx = JobContext(cfg, w, {f.name: f for f in folds}, tmp_path_factory.mktemp("rec"))
    return ctx, folds, choose_recipes(ctx, folds, progress=False)


def test_the_choice_is_the_best_pooled_inner_mcc(chosen):
    ctx, folds, choices = chosen
    w = ctx.windows
    assert set(choices) == {f.name for f in folds}
    for fold in folds:
        c = choices[fold.name]
        # recomputed from the inner students' saved predictions
        for recipe in (BLIND, SEES):
            idx, pred = [], []
            for g in range(len(c.groups)):
                stem = f"{inner_fold_name(fold.name, recipe, g)}_student_s0"
                with np.load(ctx.work_dir / f"{stem}.pred.npz") as z:
                    idx.append(z["test_idx"])
                    pred.append(z["probs"].argmax(axis=1))
            mcc = classification_metrics(
                w.y[np.concatenate(idx)], np.concatenate(pred), w.class_names
            )["mcc"]
            assert c.inner_mcc[recipe.name] == pytest.approx(mcc)
        # the blind students are at chance, the seeing ones well above it
        assert c.inner_mcc[BLIND.name] < 0.1
        assert c.inner_mcc[SEES.name] > c.inner_mcc[BLIND.name] + 0.3
        assert c.chosen == SEES  # listed second, chosen on its score
        assert c.to_json()["chosen"] == "raw_yaw0"


def test_a_tie_keeps_the_first_candidate(tmp_path):
    w = separable_windows(n_per_animal=12, animals="abc")
    twin = StudentRecipe(input="raw", yaw_deg=1e-9)  # another name, the same students
    cfg = _cfg(student_recipes=(SEES, twin), student_train=tiny_config().student_train)
    fold = fold_windows(cfg, w)[0]
    ctx = JobContext(cfg, w, {fold.name: fold}, tmp_path)
    (c,) = choose_recipes(ctx, [fold], progress=False).values()
    assert c.inner_mcc[SEES.name] == c.inner_mcc[twin.name]
    assert c.chosen == SEES


def test_every_student_of_a_fold_trains_with_its_choice(tmp_path):
    w = separable_windows(n_per_animal=24, animals="abcd")
    cfg = _cfg(deploy=True, export_bits=(), kd=replace(tiny_config().kd, baseline_weight=0.0))
    doc = run_windows(w, cfg, tmp_path, progress=False)
    rec = doc["student_recipes"]
    assert set(rec) == set(doc["folds"])
    assert all(r["chosen"] == "raw_yaw0" for r in rec.values())
    folds = {f.name: f for f in fold_windows(cfg, w)}
    ctx = JobContext(cfg, w, folds, tmp_path / "work",
                     recipes={f: SEES for f in folds})  # fmt: skip
    for f in folds:
        for key in (STUDENT, STUDENT_KD):
            model, res = train_model(ctx, Job(f, key, 0))
            assert model.cfg.input == "raw"
            assert res.resumed_from == res.epochs_run  # the run's own checkpoint, not retrained
    assert doc["models"]["student"]["mcc"] > 0.3  # a blind student would be at chance
    # sizes are those of the chosen recipe's students (`raw`: 3 inputs, not 6)
    assert doc["models"]["student"]["params"] == count_params(model)
    bundle = json.loads((tmp_path / "model" / "bundle.json").read_text())
    assert bundle["student"]["input"] == "raw"
    assert bundle["meta"]["student_recipe"]["chosen"] == "raw_yaw0"
    report = (tmp_path / "report.md").read_text()
    assert "chosen by inner animal-wise validation" in report
    assert all(f"{f} `raw_yaw0`" in report for f in folds)
