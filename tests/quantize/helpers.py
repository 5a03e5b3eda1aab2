"""Test helpers of the quantization tests."""

from __future__ import annotations

import numpy as np


def random_windows(n: int = 64, length: int = 20, seed: int = 0) -> np.ndarray:
    """Raw windows in g (gravity on z plus noise and a few out-of-range spikes)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 0.4, size=(n, 3, length)) + np.array([0.0, 0.0, 1.0])[None, :, None]
    X[0, 0, :3] = [40.0, -40.0, 15.999]  # beyond +-16 g: the int16 input saturates
    return X.astype(np.float32)
