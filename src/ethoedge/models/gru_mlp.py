"""The student: GRU-MLP over the raw samples of a window (Arablouei et al.'s RNN student).

Per sample t: ``a_t = relu(W_in x_t + b_in)`` (3 -> H); one GRU layer over ``a_1..a_L``
(PyTorch gate equations); the last hidden state ``h_L`` goes through a small MLP
``m = relu(W_1 h_L + b_1)`` (H -> M) and the output layer ``z = W_2 m + b_2`` (M -> C).

Input: ``(batch, 3, L)`` *normalised* windows; output: ``(batch, C)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from ethoedge.models.frontend import input_channels, make_input_stage
from ethoedge.models.settings import StudentConfig


class GRUStudent(nn.Module):
    """GRU-MLP student. Layer names (``inp``, ``gru``, ``mlp``, ``out``) are shared with the
    quantizer and the generated C."""

    def __init__(self, n_classes: int, cfg: StudentConfig | None = None, n_channels: int = 3):
        super().__init__()
        cfg = cfg or StudentConfig()
        self.cfg = cfg
        self.n_classes = n_classes
        self.n_channels = n_channels
        h, m = cfg.hidden, cfg.mlp
        self.front = make_input_stage(cfg.input, cfg.static_shift)
        self.inp = nn.Linear(input_channels(cfg.input, n_channels), h)
        self.gru = nn.GRU(h, h, num_layers=1, batch_first=True)
        self.mlp = nn.Linear(h, m)
        self.out = nn.Linear(m, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.inp(self.front(x).transpose(1, 2)))  # (b, L, H)
        _, h = self.gru(a)  # h: (1, b, H)
        m = torch.relu(self.mlp(h[0]))  # (b, M)
        return self.out(m)  # (b, C)

    def macs(self, n_samples: int) -> int:
        """Multiply-accumulates per window of ``n_samples`` samples.

        GRU: ``(6 H^2 + 3 H) L`` as in the method notes (the 3H covers r * (W_hn h)
        and the two products of the hidden-state update are counted in 3H)."""
        h, m, c, k = self.cfg.hidden, self.cfg.mlp, self.n_classes, self.inp.in_features
        per_sample = k * h + 6 * h * h + 3 * h
        if self.cfg.input != "raw":
            per_sample += 2 * self.n_channels  # one filter multiply-accumulate per axis
        return per_sample * n_samples + h * m + m * c


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
