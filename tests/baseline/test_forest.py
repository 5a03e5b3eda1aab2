"""The feature baseline's classifier: it learns, it is deterministic, its columns are every
class, and its settings validate and reach scikit-learn."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from ethoedge.baseline import BaselineConfig, FeatureBaseline, make_estimator, window_features
from ethoedge.configbase import from_plain, to_plain
from ethoedge.errors import ConfigError, DataError

SMALL = BaselineConfig(n_estimators=40)


def make_windows(
    rng: np.random.Generator,
    x_means: dict[int, float],
    per_class: int,
    noise: float = 0.1,
    L: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, 3, L) whose class sets the mean of x; z carries gravity."""
    y = np.repeat(np.array(list(x_means), dtype=np.int64), per_class)
    X = rng.normal(0.0, noise, size=(y.size, 3, L))
    X[:, 0] += np.array([x_means[c] for c in y])[:, None]
    X[:, 2] += 1.0
    return X.astype(np.float32), y


THREE = {0: -0.5, 1: 0.0, 2: 0.5}


@pytest.mark.parametrize(
    "cfg",
    [SMALL, BaselineConfig(model="hist_gradient_boosting", n_estimators=30)],
    ids=["random_forest", "hist_gradient_boosting"],
)
def test_learns_a_separable_problem(cfg):
    rng = np.random.default_rng(0)
    X, y = make_windows(rng, THREE, 40)
    X_test, y_test = make_windows(rng, THREE, 30)
    model = FeatureBaseline(cfg).fit(X, y, 10.0, seed=0)
    acc = float(np.mean(model.predict(X_test) == y_test))
    assert acc > 0.9
    proba = model.predict_proba(X_test)
    assert proba.shape == (90, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X_test), proba.argmax(axis=1))
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])


@pytest.mark.parametrize("model", ["random_forest", "hist_gradient_boosting"])
def test_same_data_and_seed_give_identical_probabilities(model):
    rng = np.random.default_rng(1)
    means = {0: 0.0, 1: 0.05, 2: 0.1}  # overlapping: the fit depends on its randomness
    X, y = make_windows(rng, means, 30, noise=0.5)
    X_test, _ = make_windows(rng, means, 10, noise=0.5)
    cfg = BaselineConfig(model=model, n_estimators=25)
    a = FeatureBaseline(cfg).fit(X, y, 10.0, seed=7).predict_proba(X_test)
    b = FeatureBaseline(cfg).fit(X, y, 10.0, seed=7).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    if model == "random_forest":
        c = FeatureBaseline(cfg).fit(X, y, 10.0, seed=8).predict_proba(X_test)
        assert not np.array_equal(a, c), "the seed does not reach the forest"


def test_n_jobs_does_not_change_the_forest():
    rng = np.random.default_rng(2)
    X, y = make_windows(rng, THREE, 20, noise=0.5)
    a = FeatureBaseline(SMALL, n_jobs=1).fit(X, y, 10.0, seed=3)
    b = FeatureBaseline(SMALL, n_jobs=2).fit(X, y, 10.0, seed=3)
    assert a.estimator_.n_jobs == 1 and b.estimator_.n_jobs == 2
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("model", ["random_forest", "hist_gradient_boosting"])
def test_a_class_missing_from_training_still_has_its_column(model):
    rng = np.random.default_rng(3)
    means = {0: -0.6, 1: 0.0, 3: 0.6}  # class 2 never occurs in training
    X, y = make_windows(rng, means, 30)
    X_test, y_test = make_windows(rng, means, 10)
    cfg = BaselineConfig(model=model, n_estimators=30)
    fitted = FeatureBaseline(cfg).fit(X, y, 10.0, seed=0, n_classes=5)
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (30, 5)
    np.testing.assert_array_equal(fitted.classes_, np.arange(5))
    assert (proba[:, 2] == 0).all() and (proba[:, 4] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = fitted.predict(X_test)
    assert float(np.mean(pred == y_test)) > 0.9  # columns line up with the class ids
    assert set(pred.tolist()) <= {0, 1, 3}


def test_the_default_class_count_is_the_largest_label_plus_one():
    rng = np.random.default_rng(4)
    X, y = make_windows(rng, {0: -0.5, 2: 0.5}, 10)
    proba = FeatureBaseline(SMALL).fit(X, y, 10.0, seed=0).predict_proba(X)
    assert proba.shape == (20, 3) and (proba[:, 1] == 0).all()


def test_a_single_training_class_predicts_it_with_certainty():
    rng = np.random.default_rng(5)
    X, _ = make_windows(rng, {1: 0.0}, 10)
    fitted = FeatureBaseline(SMALL).fit(X, np.full(10, 1), 10.0, seed=0, n_classes=3)
    np.testing.assert_array_equal(fitted.predict_proba(X[:4]), np.tile([0.0, 1.0, 0.0], (4, 1)))
    np.testing.assert_array_equal(fitted.predict(X[:4]), [1, 1, 1, 1])


def test_predictions_use_the_training_rate():
    rng = np.random.default_rng(6)
    X, y = make_windows(rng, THREE, 15, noise=0.5)
    fitted = FeatureBaseline(SMALL).fit(X, y, 25.0, seed=0)
    assert fitted.rate_hz_ == 25.0
    assert fitted.feature_names_ == window_features(X[:1], 25.0)[1]
    assert "x_band_3-12.5hz" in fitted.feature_names_
    F25, _ = window_features(X, 25.0)
    np.testing.assert_array_equal(fitted.predict_proba(X), fitted.estimator_.predict_proba(F25))


def test_no_windows_give_an_empty_prediction():
    rng = np.random.default_rng(7)
    X, y = make_windows(rng, THREE, 5)
    fitted = FeatureBaseline(SMALL).fit(X, y, 10.0, seed=0)
    assert fitted.predict_proba(X[:0]).shape == (0, 3)
    assert fitted.predict(X[:0]).shape == (0,)


def test_a_fitted_baseline_survives_pickling():
    rng = np.random.default_rng(8)
    X, y = make_windows(rng, THREE, 10, noise=0.5)
    fitted = FeatureBaseline(SMALL).fit(X, y, 10.0, seed=0)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_bad_use_is_a_clear_error():
    rng = np.random.default_rng(9)
    X, y = make_windows(rng, THREE, 5)
    with pytest.raises(ConfigError, match="not fitted"):
        FeatureBaseline().predict(X)
    with pytest.raises(DataError, match="class ids"):
        FeatureBaseline(SMALL).fit(X, y, 10.0, seed=0, n_classes=2)
    with pytest.raises(DataError, match="class ids"):
        FeatureBaseline(SMALL).fit(X, y - 1, 10.0, seed=0)
    with pytest.raises(DataError, match="integer"):
        FeatureBaseline(SMALL).fit(X, y.astype(float), 10.0, seed=0)
    with pytest.raises(DataError, match="must match"):
        FeatureBaseline(SMALL).fit(X, y[:-1], 10.0, seed=0)
    with pytest.raises(DataError, match="at least one"):
        FeatureBaseline(SMALL).fit(X[:0], y[:0], 10.0, seed=0)
    fitted = FeatureBaseline(SMALL).fit(X, y, 10.0, seed=0)
    with pytest.raises(DataError, match="like the training windows"):
        fitted.predict(X[:, :, :40])
    with pytest.raises(ConfigError, match="n_jobs"):
        FeatureBaseline(n_jobs=0)


# ----------------------------------------------------------------------------- settings


def test_config_defaults_and_key():
    cfg = BaselineConfig()
    assert (cfg.model, cfg.n_estimators, cfg.max_depth) == ("random_forest", 300, None)
    assert (cfg.min_samples_leaf, cfg.class_weight) == (None, "none")
    assert BaselineConfig.__config_key__ == "baseline"
    assert from_plain(BaselineConfig, to_plain(cfg)) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_estimators = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("plain", "message"),
    [
        ({"model": "svm"}, "baseline.model must be one of"),
        ({"n_estimators": 0}, "baseline.n_estimators must be >= 1"),
        ({"n_estimators": "300"}, "baseline.n_estimators must be an integer"),
        ({"max_depth": 2.5}, "baseline.max_depth"),
        ({"min_samples_leaf": 0}, "baseline.min_samples_leaf"),
        ({"class_weight": None}, "baseline.class_weight must be one of"),
        ({"n_trees": 10}, "unknown keys ['baseline.n_trees']"),
    ],
)
def test_config_rejects_bad_values(plain, message):
    with pytest.raises(ConfigError) as e:
        from_plain(BaselineConfig, plain)
    assert message in str(e.value)
    with pytest.raises(ConfigError):
        BaselineConfig(**plain)


def test_settings_reach_the_random_forest():
    cfg = BaselineConfig(n_estimators=12, max_depth=4, min_samples_leaf=3, class_weight="balanced")
    p = make_estimator(cfg, seed=5, n_jobs=1).get_params()
    assert (p["n_estimators"], p["max_depth"], p["min_samples_leaf"]) == (12, 4, 3)
    assert (p["class_weight"], p["random_state"], p["n_jobs"]) == ("balanced", 5, 1)
    p = make_estimator(BaselineConfig(), seed=0).get_params()
    assert (p["class_weight"], p["min_samples_leaf"], p["max_depth"]) == (None, 1, None)
    assert p["n_estimators"] == 300


def test_settings_reach_the_gradient_boosting():
    cfg = BaselineConfig(model="hist_gradient_boosting", n_estimators=12, max_depth=4)
    p = make_estimator(cfg, seed=5).get_params()
    assert (p["max_iter"], p["max_depth"], p["random_state"]) == (12, 4, 5)
    assert (p["early_stopping"], p["class_weight"], p["min_samples_leaf"]) == (False, None, 20)
    cfg = dataclasses.replace(cfg, min_samples_leaf=2, class_weight="balanced")
    p = make_estimator(cfg, seed=5).get_params()
    assert (p["min_samples_leaf"], p["class_weight"]) == (2, "balanced")


def test_balanced_class_weight_changes_an_imbalanced_fit():
    rng = np.random.default_rng(10)
    X0, y0 = make_windows(rng, {0: 0.0}, 60, noise=0.5)
    X1, y1 = make_windows(rng, {1: 0.1}, 6, noise=0.5)
    X, y = np.concatenate([X0, X1]), np.concatenate([y0, y1])
    plain = FeatureBaseline(BaselineConfig(n_estimators=30, max_depth=2)).fit(X, y, 10.0, 0)
    weighted = FeatureBaseline(
        BaselineConfig(n_estimators=30, max_depth=2, class_weight="balanced")
    ).fit(X, y, 10.0, 0)
    # inverse-frequency weights raise the rare class's probability on average
    assert weighted.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
