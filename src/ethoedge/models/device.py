"""Where models run."""

from __future__ import annotations

import torch

from ethoedge.errors import ConfigError


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; validates the name."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device '{device}' (auto, cpu or cuda)")
    return device
