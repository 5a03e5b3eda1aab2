"""Hand-made window statistics as a differentiable layer, for the teacher's optional wide branch.

The feature baseline (:mod:`ethoedge.baseline.features`) summarises every window by standard
accelerometry statistics, and a forest on them is hard to beat on animals a model never saw. A
ResNet that sees only the high-passed signal (the ``dynamic`` input stage) cannot compute
posture, and one that pools its convolutions over time does not compute order statistics.
:class:`WindowStatistics` hands the teacher's head the same kind of summary, computed in
PyTorch from the teacher's own input (the *normalised* window, before its input stage), so it
needs no other data path and follows the augmentation of every batch:

================================  ================================================================
per channel ``c``                 mean, sd, min, max, quantiles 10/25/50/75/90 %, mean |x[t+1]-x[t]|
dynamic magnitude                 mean and sd over t of ``|d_t|``, and mean of ``sum_c |d_c,t|``
                                  (VeDBA-, ODBA-like), ``d`` = the window minus its mean
spectrum per channel              ``log(1e-4 + E_b)`` of the power of ``d`` in octave bands of
                                  FFT bins: bin 1, bins 2-3, 4-7, 8-15 and 16 up to Nyquist
                                  (cut at Nyquist)
cross-channel                     Pearson correlation of every pair of channels
================================  ================================================================

The bands are in FFT bins, not Hz (the model does not know the sampling rate); for 5 s
windows a bin is 0.2 Hz. Statistics of normalised windows are an affine (per channel) image
of those of the raw ones, so the means still carry posture. ``n_stats`` gives the count.
"""

from __future__ import annotations

import torch
from torch import nn

_QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
_BAND_STARTS = (1, 2, 4, 8, 16)  # first FFT bin of each octave band; the last ends at Nyquist


def octave_bands(L: int) -> list[tuple[int, int]]:
    """FFT bin ranges ``[lo, hi)`` of the five spectral statistics for windows of ``L``
    samples: bin 1, 2-3, 4-7, 8-15 and 16 up to Nyquist, cut at Nyquist (a band past it is
    empty and reads ``log(1e-4)``), so the count does not depend on ``L``.

    >>> octave_bands(50)
    [(1, 2), (2, 4), (4, 8), (8, 16), (16, 26)]
    >>> octave_bands(8)
    [(1, 2), (2, 4), (4, 5), (5, 5), (5, 5)]
    """
    K = L // 2 + 1
    edges = [min(e, K) for e in _BAND_STARTS] + [K]
    return [(edges[i], max(edges[i], edges[i + 1])) for i in range(len(_BAND_STARTS))]


def n_stats(n_channels: int) -> int:
    """How many statistics :class:`WindowStatistics` returns per window of ``n_channels``."""
    pairs = n_channels * (n_channels - 1) // 2
    return n_channels * (4 + len(_QUANTILES) + 1 + len(_BAND_STARTS)) + 3 + pairs


class WindowStatistics(nn.Module):
    """``(b, k, L) -> (b, n_stats(k))``: the statistics of the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_q", torch.tensor(_QUANTILES), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, k, L = x.shape
        mean = x.mean(dim=2)
        d = x - mean[:, :, None]
        var = (d * d).mean(dim=2)
        sd = torch.sqrt(var + 1e-8)
        q = torch.quantile(x, self._q.to(x.dtype), dim=2)  # (5, b, k)
        mad = (x[:, :, 1:] - x[:, :, :-1]).abs().sum(dim=2) / max(L - 1, 1)
        cols = [mean, sd, x.amin(dim=2), x.amax(dim=2), *q, mad]
        mag = torch.sqrt((d * d).sum(dim=1) + 1e-8)  # (b, L)
        odba = d.abs().sum(dim=1).mean(dim=1)
        cols.append(torch.stack([mag.mean(dim=1), mag.std(dim=1, correction=0), odba], 1))
        power = torch.fft.rfft(d, dim=2).abs() ** 2 / (L * L)
        cols += [torch.log(1e-4 + power[:, :, lo:hi].sum(dim=2)) for lo, hi in octave_bands(L)]
        z = d / sd[:, :, None]
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        cols += [(z[:, i] * z[:, j]).mean(dim=1) for i, j in pairs]
        return torch.cat([c if c.ndim == 2 else c[:, None] for c in cols], dim=1)
