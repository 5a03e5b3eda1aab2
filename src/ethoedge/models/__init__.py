"""ethoedge.models: the ResNet teacher and the GRU-MLP student, with their cost figures."""

from __future__ import annotations

from torch import nn

from ethoedge.models.gru_mlp import GRUStudent, StudentConfig, count_params
from ethoedge.models.resnet import ResNetTeacher, TeacherConfig


def model_cost(model: nn.Module, n_samples: int) -> dict[str, int]:
    """Parameters, multiply-accumulates per window of ``n_samples`` and float32 bytes.

    ``bytes`` is the storage of the trainable parameters at 4 bytes each (batch-norm running
    statistics are folded into the convolutions for deployment and are not counted).
    """
    params = count_params(model)
    macs = int(model.macs(n_samples))  # type: ignore[operator]
    return {"params": params, "macs": macs, "bytes": 4 * params}


__all__ = [
    "GRUStudent",
    "ResNetTeacher",
    "StudentConfig",
    "TeacherConfig",
    "count_params",
    "model_cost",
]
