"""ethoedge.distill: the KD loss, its settings and the teacher's stored soft labels."""

from ethoedge.distill.config import KDConfig
from ethoedge.distill.loss import kd_loss
from ethoedge.distill.soft_labels import (
    SoftLabels,
    load_soft_labels,
    make_soft_labels,
    predict_logits,
    save_soft_labels,
    softmax,
)

__all__ = [
    "KDConfig",
    "SoftLabels",
    "kd_loss",
    "load_soft_labels",
    "make_soft_labels",
    "predict_logits",
    "save_soft_labels",
    "softmax",
]
