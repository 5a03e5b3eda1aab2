"""The GRU-MLP student's float forward pass in NumPy: what the float engine runs on the CPU
for a bundle's student, without importing PyTorch (about 1.3 s and 280 MB per process).

It computes :class:`~ethoedge.models.gru_mlp.GRUStudent`'s function in float32 from the same
weights (a bundle's ``student.npz``): the input stage, ``relu(inp(x))``, PyTorch's GRU
(gates ``r, z, n`` in that order, ``n = tanh(W_in a + b_in + r * (W_hn h + b_hn))``,
``h' = (1 - z) * n + z * h``), then ``out(relu(mlp(h)))``. Its logits differ from PyTorch's by
float32 rounding only (about 1e-6; the tests bound it on the bundled windows).

Speed: the input projections of all time steps are one matrix product; each step is one
product with the recurrent weights and a few element-wise passes over the batch. The
sigmoids are ``(1 + tanh(x / 2)) / 2``, with the halving folded into the weights (exact:
scaling by a power of two), so each step calls ``tanh`` twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

INPUT_STAGES = ("raw", "dynamic", "static_dynamic")


def static_filter_matrix(length: int, alpha: float) -> np.ndarray:
    """``W (L, L)`` float64 with ``static = x @ W.T`` the causal first-order low-pass
    ``s_0 = x_0, s_t = a s_{t-1} + (1 - a) x_t`` (:mod:`ethoedge.models.frontend`):
    ``W[t, 0] = a^t``, ``W[t, j] = (1 - a) a^(t - j)`` for ``1 <= j <= t``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"static_alpha must be in (0, 1), got {alpha}")
    t = np.arange(length, dtype=np.float64)
    lag = t[:, None] - t[None, :]
    W = np.where(lag >= 0, (1.0 - alpha) * alpha ** np.maximum(lag, 0.0), 0.0)
    W[:, 0] = alpha**t
    return W


class NumpyStudent:
    """A GRU-MLP student as NumPy arrays; ``student(Xn)`` gives float32 logits ``(n, C)``
    for normalised windows ``Xn (n, channels, L)``.

    Args:
        cfg: the student's configuration as a mapping (``hidden``, ``mlp_hidden``,
            ``input``, ``static_shift``; the ``student`` entry of ``bundle.json``).
        state: its ``state_dict`` arrays by name (``inp.weight``, ``gru.weight_ih_l0``, ...).
        batch_size: windows per pass (larger batches amortise the per-step overhead).
    """

    def __init__(
        self, cfg: Mapping[str, object], state: Mapping[str, np.ndarray], batch_size: int = 512
    ) -> None:
        stage = str(cfg.get("input", "raw"))
        if stage not in INPUT_STAGES:
            raise ValueError(f"unknown input stage {stage!r} (one of {list(INPUT_STAGES)})")
        self.input = stage
        self.alpha = 1.0 - 2.0 ** -int(cfg.get("static_shift", 3))  # type: ignore[call-overload]
        f32 = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
        H = int(f32["gru.weight_hh_l0"].shape[1])
        self.hidden = H
        self.n_classes = int(f32["out.weight"].shape[0])
        self.n_channels = int(f32["inp.weight"].shape[1]) // (2 if stage == "static_dynamic" else 1)
        self.batch_size = int(batch_size)
        self._inp_t = np.ascontiguousarray(f32["inp.weight"].T)
        self._inp_b = f32["inp.bias"]
        # Input projections, all steps at once; r and z halved for the tanh form of sigmoid,
        # and the recurrent biases of r and z folded in (they are added unscaled by r).
        w_ih, b_ih = f32["gru.weight_ih_l0"], f32["gru.bias_ih_l0"]
        w_hh, b_hh = f32["gru.weight_hh_l0"], f32["gru.bias_hh_l0"]
        self._ih_t = np.ascontiguousarray(w_ih.T)
        self._ih_t[:, : 2 * H] *= 0.5
        self._ih_b = b_ih.copy()
        self._ih_b[: 2 * H] = 0.5 * (b_ih[: 2 * H] + b_hh[: 2 * H])
        # Recurrent product on [h, 1]: the last row holds b_hn; every column halved (r, z for
        # the sigmoid; n because r * (W_hn h + b_hn) is computed as (1 + t_r) * half of it).
        hh = np.zeros((H + 1, 3 * H), dtype=np.float32)
        hh[:H] = 0.5 * w_hh.T
        hh[H, 2 * H :] = 0.5 * b_hh[2 * H :]
        self._hh_t = hh
        self._mlp_t = np.ascontiguousarray(f32["mlp.weight"].T)
        self._mlp_b = f32["mlp.bias"]
        self._out_t = np.ascontiguousarray(f32["out.weight"].T)
        self._out_b = f32["out.bias"]
        self._filters: dict[int, np.ndarray] = {}

    @classmethod
    def from_npz(
        cls, path: str | Path, cfg: Mapping[str, object], batch_size: int = 512
    ) -> NumpyStudent:
        """From a bundle's ``student.npz`` and its ``student`` configuration."""
        with np.load(path) as z:
            state = {k: z[k] for k in z.files}
        return cls(cfg, state, batch_size=batch_size)

    def __call__(self, Xn: np.ndarray) -> np.ndarray:
        Xn = np.asarray(Xn, dtype=np.float32)
        if Xn.ndim != 3 or Xn.shape[1] != self.n_channels:
            raise ValueError(f"windows must be (n, {self.n_channels}, L), got {Xn.shape}")
        if len(Xn) == 0:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        size = self.batch_size
        parts = [self._batch(Xn[i : i + size]) for i in range(0, len(Xn), size)]
        return np.concatenate(parts)

    def _front(self, x: np.ndarray) -> np.ndarray:
        if self.input == "raw":
            return x
        L = x.shape[2]
        if L not in self._filters:
            self._filters[L] = np.ascontiguousarray(
                static_filter_matrix(L, self.alpha).T.astype(np.float32)
            )
        static = x @ self._filters[L]
        dynamic = x - static
        return dynamic if self.input == "dynamic" else np.concatenate([dynamic, static], axis=1)

    def _batch(self, x: np.ndarray) -> np.ndarray:
        H = self.hidden
        n, _, L = x.shape
        steps = np.ascontiguousarray(self._front(x).transpose(2, 0, 1))  # (L, n, k)
        a = steps @ self._inp_t
        a += self._inp_b
        np.maximum(a, 0.0, out=a)
        gi = a @ self._ih_t  # (L, n, 3H): [r/2, z/2, n] input parts
        gi += self._ih_b
        h1 = np.zeros((n, H + 1), dtype=np.float32)
        h1[:, H] = 1.0
        h = h1[:, :H]
        gh = np.empty((n, 3 * H), dtype=np.float32)
        rz = np.empty((n, 2 * H), dtype=np.float32)
        cand = np.empty((n, H), dtype=np.float32)
        t_r, t_z = rz[:, :H], rz[:, H:]
        gh_rz, gh_n = gh[:, : 2 * H], gh[:, 2 * H :]
        for t in range(L):
            np.matmul(h1, self._hh_t, out=gh)
            g = gi[t]
            np.add(g[:, : 2 * H], gh_rz, out=rz)
            np.tanh(rz, out=rz)  # r = (1 + t_r) / 2, z = (1 + t_z) / 2
            np.multiply(t_r, gh_n, out=cand)  # gh_n is half of W_hn h + b_hn
            cand += gh_n
            cand += g[:, 2 * H :]
            np.tanh(cand, out=cand)
            t_z *= 0.5
            t_z += 0.5
            h -= cand  # h' = n + z (h - n)
            h *= t_z
            h += cand
        m = h @ self._mlp_t
        m += self._mlp_b
        np.maximum(m, 0.0, out=m)
        z = m @ self._out_t
        z += self._out_b
        return z
