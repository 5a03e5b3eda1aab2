"""The teacher: the ResNet for time-series classification (Wang et al. 2017; Fawaz et al. 2019).

Three residual blocks; each is three 1-D convolutions (kernels 8, 5, 3, "same" padding) with
batch norm and ReLU, plus a shortcut (1x1 convolution + batch norm) added before the last ReLU.
Global average pooling over time and a linear layer give the logits.

Input: ``(batch, n_channels, L)`` *normalised* windows; output: ``(batch, C)`` logits.

For 3 channels, 4 classes and the default sizes the model has 522,180 parameters (the paper's
"about 0.5 M") and ``517,824 * L`` multiply-accumulates per window (25.9 M for L = 50).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ethoedge.models.frontend import input_channels, make_input_stage
from ethoedge.models.settings import TeacherConfig
from ethoedge.models.window_stats import WindowStatistics, n_stats


class SameConv1d(nn.Conv1d):
    """1-D convolution with Keras-style "same" padding (``(k-1)//2`` left, ``k//2`` right).

    Explicit padding avoids PyTorch's copy-and-warn path for even kernels (k = 8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        return super().forward(F.pad(x, ((k - 1) // 2, k // 2)))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU, conv-BN-ReLU, conv-BN; plus shortcut conv1x1-BN; then ReLU."""

    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        c = c_in
        for i, k in enumerate(kernels):
            layers.append(SameConv1d(c, c_out, k))
            layers.append(nn.BatchNorm1d(c_out))
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
            c = c_out
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))  # (b, c_out, L)


class ResNetTeacher(nn.Module):
    """ResNet teacher (Wang et al. 2017). Layer names: ``blocks.{0,1,2}``, ``fc``."""

    def __init__(
        self, n_classes: int, cfg: TeacherConfig | None = None, n_channels: int = 3
    ) -> None:
        super().__init__()
        cfg = cfg or TeacherConfig()
        self.cfg = cfg
        self.n_classes = n_classes
        self.n_channels = n_channels
        self.front = make_input_stage(cfg.input, cfg.static_shift)
        blocks = []
        c = input_channels(cfg.input, n_channels)
        for f in cfg.filters:
            blocks.append(ResidualBlock(c, f, cfg.kernels))
            c = f
        self.blocks = nn.Sequential(*blocks)
        self.wide: nn.Module | None = None
        if cfg.stats:
            m = n_stats(n_channels)
            self.wide = nn.Sequential(
                WindowStatistics(), nn.BatchNorm1d(m), nn.Linear(m, cfg.stats), nn.ReLU()
            )
        self.fc = nn.Linear(c + cfg.stats, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.front(x)).mean(dim=2)  # (b, F, L) -> GAP (b, F)
        if self.wide is not None:
            h = torch.cat([h, self.wide(x)], dim=1)
        return self.fc(h)  # (b, C)

    def macs(self, n_samples: int) -> int:
        """Multiply-accumulates per window: every convolution (incl. shortcuts) and the linear
        layer (and the wide branch's linear layer). Batch norm, ReLU, additions, pooling and the
        window statistics are not counted."""
        per_sample = 0
        c = input_channels(self.cfg.input, self.n_channels)
        for f in self.cfg.filters:
            cin = c
            for k in self.cfg.kernels:
                per_sample += cin * f * k
                cin = f
            per_sample += c * f  # shortcut 1x1
            c = f
        wide = n_stats(self.n_channels) * self.cfg.stats if self.cfg.stats else 0
        return per_sample * n_samples + wide + (c + self.cfg.stats) * self.n_classes


def expected_param_count(
    n_classes: int, cfg: TeacherConfig | None = None, n_channels: int = 3
) -> int:
    """Parameter count of :class:`ResNetTeacher` from the architecture, by hand.

    >>> expected_param_count(4)
    522180
    """
    cfg = cfg or TeacherConfig()
    total, c = 0, input_channels(cfg.input, n_channels)
    for f in cfg.filters:
        cin = c
        for k in cfg.kernels:
            total += cin * f * k + f + 2 * f  # conv weight + bias, BN gamma + beta
            cin = f
        total += c * f + f + 2 * f  # shortcut conv + BN
        c = f
    if cfg.stats:
        m = n_stats(n_channels)
        total += 2 * m + m * cfg.stats + cfg.stats  # batch norm, linear
    return total + (c + cfg.stats) * n_classes + n_classes
