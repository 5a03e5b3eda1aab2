"""ethoedge.models: the ResNet teacher and the GRU-MLP student, with their cost figures.

The PyTorch models load on first use (``ethoedge.models.GRUStudent`` imports PyTorch, about
1.3 s); :mod:`ethoedge.models.student_numpy` (the student's float forward pass in NumPy) and
:mod:`ethoedge.models.device` work without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from ethoedge.models.gru_mlp import GRUStudent, count_params
    from ethoedge.models.resnet import ResNetTeacher
    from ethoedge.models.settings import StudentConfig, TeacherConfig

_LAZY = {
    "GRUStudent": "ethoedge.models.gru_mlp",
    "StudentConfig": "ethoedge.models.settings",
    "count_params": "ethoedge.models.gru_mlp",
    "ResNetTeacher": "ethoedge.models.resnet",
    "TeacherConfig": "ethoedge.models.settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_cost(model: nn.Module, n_samples: int) -> dict[str, int]:
    """Parameters, multiply-accumulates per window of ``n_samples`` and float32 bytes.

    ``bytes`` is the storage of the trainable parameters at 4 bytes each (batch-norm running
    statistics are folded into the convolutions for deployment and are not counted).
    """
    from ethoedge.models.gru_mlp import count_params

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
