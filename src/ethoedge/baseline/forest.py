"""The feature baseline: hand-made accelerometry features and a tree ensemble (scikit-learn).

:class:`FeatureBaseline` computes :func:`~ethoedge.baseline.features.window_features` of raw
windows in g and fits a random forest (default) or a histogram gradient boosting classifier on
them, with the settings of :class:`BaselineConfig`. ``predict_proba`` has one column per class
id ``0 .. n_classes - 1``, classes absent from the training labels included (with probability
0), so its output lines up with the deep models' scores.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from ethoedge.baseline.features import window_features
from ethoedge.configbase import PosInt, config_dataclass
from ethoedge.errors import ConfigError, DataError


@config_dataclass(key="baseline")
class BaselineConfig:
    """Settings of the feature baseline (:class:`FeatureBaseline`).

    A random forest is the default because it is what accelerometry users run on such features
    every day and it is robust with no tuning (no scaling, no learning rate, little overfitting
    as trees are added); histogram gradient boosting is there for a stronger, tuned baseline.
    Classes are unweighted by default, as the deep models train with plain cross-entropy, so
    the comparison is like for like; ``"balanced"`` reweights classes by inverse frequency.

    Attributes:
        model: ``"random_forest"`` (:class:`sklearn.ensemble.RandomForestClassifier`) or
            ``"hist_gradient_boosting"``
            (:class:`sklearn.ensemble.HistGradientBoostingClassifier`).
        n_estimators: trees of the forest, or boosting iterations (``max_iter``; boosting runs
            them all: no early stopping, whose internal hold-out would be windows of the
            training animals rather than other animals).
        max_depth: the trees' maximum depth; ``None``: unlimited (the forest grows full trees,
            boosting limits trees by its default of 31 leaves).
        min_samples_leaf: fewest training windows in a leaf; ``None``: the model's own default
            (1 for the forest, 20 for boosting).
        class_weight: ``"none"`` or ``"balanced"`` (scikit-learn's inverse class frequency).
    """

    model: Literal["random_forest", "hist_gradient_boosting"] = "random_forest"
    n_estimators: PosInt = 300
    max_depth: PosInt | None = None
    min_samples_leaf: PosInt | None = None
    class_weight: Literal["balanced", "none"] = "none"


def make_estimator(cfg: BaselineConfig, seed: int, n_jobs: int = 1) -> Any:
    """The unfitted scikit-learn classifier of ``cfg`` with ``random_state=seed``.

    ``n_jobs`` is the forest's process-local parallelism (1 by default, so that several fold
    jobs can run side by side in processes without oversubscribing the cores; the results do
    not depend on it). Boosting has no ``n_jobs``: its OpenMP threads follow
    ``OMP_NUM_THREADS``.
    """
    common: dict[str, Any] = {
        "max_depth": cfg.max_depth,
        "class_weight": None if cfg.class_weight == "none" else "balanced",
        "random_state": seed,
    }
    if cfg.min_samples_leaf is not None:
        common["min_samples_leaf"] = cfg.min_samples_leaf
    if cfg.model == "random_forest":
        return RandomForestClassifier(n_estimators=cfg.n_estimators, n_jobs=n_jobs, **common)
    return HistGradientBoostingClassifier(max_iter=cfg.n_estimators, early_stopping=False, **common)


class FeatureBaseline:
    """Window features + a tree ensemble, with the scikit-learn contract of the deep models'
    :class:`~ethoedge.inference.Classifier` (raw windows in g in, class ids out).

    Args:
        config: the model settings (default: :class:`BaselineConfig`'s defaults).
        n_jobs: the forest's parallel jobs (see :func:`make_estimator`).

    Attributes (after :meth:`fit`):
        classes_: the class ids ``0 .. n_classes - 1`` (int64), the columns of
            :meth:`predict_proba`.
        rate_hz_: the sampling rate of the training windows (the features of every later
            window are computed at it).
        feature_names_: the feature columns the estimator was trained on.
        estimator_: the fitted scikit-learn classifier; ``None`` when the training labels hold
            a single class (then every window gets that class with probability 1).
    """

    def __init__(self, config: BaselineConfig | None = None, *, n_jobs: int = 1) -> None:
        self.config = BaselineConfig() if config is None else config
        if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0:
            raise ConfigError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
        self.n_jobs = n_jobs
        self.estimator_: Any = None
        self.classes_: np.ndarray | None = None
        self.rate_hz_: float | None = None
        self.feature_names_: tuple[str, ...] = ()
        self._window_shape: tuple[int, ...] = ()
        self._only_class: int | None = None

    def fit(
        self,
        X_g: np.ndarray,
        y: np.ndarray,
        rate_hz: float,
        seed: int,
        n_classes: int | None = None,
    ) -> FeatureBaseline:
        """Fit on windows ``X_g`` (n, 3, L) in g at ``rate_hz`` with labels ``y`` (n,) in
        ``0 .. n_classes - 1`` (default ``n_classes``: ``max(y) + 1``); ``seed`` fixes the
        result (the same data and seed give identical probabilities). Returns ``self``."""
        X_g = np.asarray(X_g)
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"labels must be a 1-D integer array, got {y.dtype} {y.shape}")
        if X_g.ndim != 3 or X_g.shape[0] != y.shape[0]:
            raise DataError(
                f"windows (n, 3, L) and labels (n,) must match, got {X_g.shape} and {y.shape}"
            )
        if y.size == 0:
            raise DataError("the baseline needs at least one training window")
        n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
        if y.min() < 0 or y.max() >= n_classes:
            raise DataError(
                f"labels must be class ids in 0..{n_classes - 1}, got {y.min()}..{y.max()}"
            )
        F, names = window_features(X_g, rate_hz)
        self.rate_hz_ = float(rate_hz)
        self.feature_names_ = names
        self._window_shape = tuple(X_g.shape[1:])
        self.classes_ = np.arange(n_classes, dtype=np.int64)
        present = np.unique(y)
        if present.size == 1:
            self.estimator_, self._only_class = None, int(present[0])
        else:
            est = make_estimator(self.config, seed, self.n_jobs)
            self.estimator_, self._only_class = est.fit(F, y), None
        return self

    def predict_proba(self, X_g: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), float64; a class absent from the training labels
        has probability 0."""
        if self.classes_ is None or self.rate_hz_ is None:
            raise ConfigError("the baseline is not fitted: call fit first")
        X_g = np.asarray(X_g)
        if X_g.ndim != 3 or tuple(X_g.shape[1:]) != self._window_shape:
            raise DataError(
                f"windows must be (n, {', '.join(map(str, self._window_shape))}) like the "
                f"training windows, got shape {X_g.shape}"
            )
        out = np.zeros((X_g.shape[0], self.classes_.size), dtype=np.float64)
        if self._only_class is not None:
            out[:, self._only_class] = 1.0
            return out
        F, _ = window_features(X_g, self.rate_hz_)
        if F.shape[0]:
            out[:, self.estimator_.classes_] = self.estimator_.predict_proba(F)
        return out

    def predict(self, X_g: np.ndarray) -> np.ndarray:
        """Class ids (n,) int64: the most probable class (the lowest id on ties)."""
        return np.argmax(self.predict_proba(X_g), axis=1).astype(np.int64)


__all__ = ["BaselineConfig", "FeatureBaseline", "make_estimator"]
