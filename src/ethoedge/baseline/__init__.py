"""ethoedge.baseline: the everyday method as a baseline, hand-made accelerometry features of
raw windows (:func:`window_features`, documented in :data:`FEATURES_DOC`) and a random forest
or gradient boosting on them (:class:`FeatureBaseline`, settings :class:`BaselineConfig`).

It depends on NumPy and scikit-learn only (no PyTorch), and takes the same raw windows in g as
the deep models.
"""

from ethoedge.baseline.features import FEATURES_DOC, bands, feature_names, window_features
from ethoedge.baseline.forest import BaselineConfig, FeatureBaseline, make_estimator

__all__ = [
    "FEATURES_DOC",
    "BaselineConfig",
    "FeatureBaseline",
    "bands",
    "feature_names",
    "make_estimator",
    "window_features",
]
