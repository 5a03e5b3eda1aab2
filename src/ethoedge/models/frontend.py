"""Input stages in front of the models: how a window's samples are presented to them.

``raw``: the (normalised) samples as they come. ``dynamic``: the dynamic part below only (a
first-order high-pass), ``k`` channels. ``static_dynamic``: every axis split into its
*static* part, a causal first-order low-pass (an exponential moving average started at the
window's first sample), and its *dynamic* part, the signal minus the static part; the model
sees both, ``2 k`` channels for ``k`` axes::

    s_0 = x_0,   s_t = a s_{t-1} + (1 - a) x_t,   d_t = x_t - s_t,   a = 1 - 2**-k

The static part carries posture (where gravity points: collar angle, head up or down), the
dynamic part the movement (the quantities VeDBA and spectral energies summarise), so that a
model can learn to rely on motion where an animal's collar sits at another angle. The filter
is causal and of first order, so a device can run it sample by sample in the streaming API;
with ``a = 1 - 2**-k`` its integer version is one subtraction, one rounding shift by ``k`` and
one addition per axis and sample (``docs/fixedpoint.md``).
"""

from __future__ import annotations

import torch
from torch import nn

from ethoedge.models.student_numpy import INPUT_STAGES, static_filter_matrix


def static_alpha(shift: int) -> float:
    """The smoothing factor ``a = 1 - 2**-shift`` of the static part (3: 0.875, a time
    constant of about 7.5 samples)."""
    return 1.0 - 2.0 ** -int(shift)


def input_channels(stage: str, n_channels: int) -> int:
    """Channels the model body sees after the input stage."""
    return 2 * n_channels if stage == "static_dynamic" else n_channels


class DynamicPart(nn.Module):
    """``(b, k, L) -> (b, k, L)``: the dynamic part of :class:`StaticDynamicSplit` only."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.split = StaticDynamicSplit(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.split(x)[:, : x.shape[1]]


class StaticDynamicSplit(nn.Module):
    """``(b, k, L) -> (b, 2k, L)``: ``[dynamic, static]`` (see the module docstring).

    Implemented as one matrix product with the filter's impulse response (exactly the
    recursion above, in floating point), so training stays fast.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"static_alpha must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)
        self._cache: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}

    def weights(self, L: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """``W (L, L)`` with ``s = x @ W.T``: ``W[t, 0] = a^t``, ``W[t, j] = (1-a) a^(t-j)``
        for ``1 <= j <= t``."""
        key = (L, str(device), dtype)
        if key not in self._cache:
            W = torch.from_numpy(static_filter_matrix(L, self.alpha))
            self._cache[key] = W.to(device=device, dtype=dtype)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        W = self.weights(x.shape[-1], x.device, x.dtype)
        static = x @ W.T
        return torch.cat([x - static, static], dim=1)


def make_input_stage(stage: str, shift: int) -> nn.Module:
    if stage == "static_dynamic":
        return StaticDynamicSplit(static_alpha(shift))
    if stage == "dynamic":
        return DynamicPart(static_alpha(shift))
    if stage == "raw":
        return nn.Identity()
    raise ValueError(f"unknown input stage {stage!r} (one of {list(INPUT_STAGES)})")
