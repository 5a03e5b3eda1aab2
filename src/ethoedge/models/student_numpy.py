"""The GRU-MLP student's float forward pass in NumPy: what the float engine runs on the CPU
for a bundle's student, without importing PyTorch (about 1.3 s and 280 MB per process).

It computes :class:`~ethoedge.models.gru_mlp.GRUStudent`'s function in float32 from the same
weights (a bundle's ``student.npz``): the input stage, ``relu(inp(x))``, PyTorch's GRU
(gates ``r, z, n`` in that order, ``n = tanh(W_in a + b_in + r * (W_hn h + b_hn))``,
``h' = (1 - z) * n + z * h``), then ``out(relu(mlp(h)))``. Its logits differ from PyTorch's by
float32 rounding only (about 1e-6; the tests bound it on the bundled windows).

Speed: arrays are batch-minor (a row of a batch's windows per channel, gate or state unit),
so every element-wise pass is one contiguous sweep; the input stage runs for every step at
once, then each step is one product of the stacked gate weights with ``[a_t; h + 1; 1]`` (the
working set stays in cache) and eleven element-wise passes. Every non-linearity is built on
NumPy's float32 ``exp`` (vectorised on x86-64, its float32 ``tanh`` is not): the sigmoids as
``1 / (1 + exp(-x))`` and ``n + 1`` as ``2 / (1 + exp(-2 x))``, with the signs and factors
folded into the weights (exact: powers of two), and the state kept as ``h + 1`` so that no
pass subtracts the one again (the recurrent weights' row sums move into the biases).

A window's logits do not depend on the batch it is in, bit for bit. BLAS does not promise
that: how it splits the columns of a matrix product among its kernels depends on the number
of columns, and on some CPUs a column is rounded differently at different positions (OpenBLAS
on AVX2: the first and last 8 of 64 columns one way, the middle 48 another). So every product
here is a stack of products of one fixed width (:func:`lane_width`: the widest of 64, 32, 16,
8, 4, 2 at which this machine's BLAS computes every column of a product of that shape alike,
checked once per shape on random data; 1 otherwise), each window in one column of one of
them, and batches padded to whole blocks. BLAS should run on one thread, as the float engine
(:class:`~ethoedge.inference.Classifier`) runs it, batches side by side: these products are
too small to gain from more, and a product split among threads could be rounded otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ethoedge.errors import ConfigError

INPUT_STAGES = ("raw", "dynamic", "static_dynamic")
_WIDTHS = (64, 32, 16, 8, 4, 2)  # widths tried by lane_width, widest first


@functools.cache
def _uniform_width(rows: int, inner: int, width: int) -> bool:
    """Whether ``np.matmul(W, X)`` for ``W (rows, inner)`` and a stack ``X (k, inner, width)``
    gives a column the same float32 values at every position of ``width``, whatever the other
    columns hold: the same column is put at each position of one stack, among random others,
    with the stack contiguous and as a view of a ``(inner, k * width)`` array (both forms are
    used)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    W = rng.normal(size=(rows, inner)).astype(np.float32)
    X = rng.normal(size=(width, inner, width)).astype(np.float32)
    col = rng.normal(size=inner).astype(np.float32)
    lanes = np.arange(width)
    X[lanes, :, lanes] = col
    flat = np.ascontiguousarray(X.transpose(1, 0, 2)).reshape(inner, width * width)
    with threadpool_limits(limits=1, user_api="blas"):
        for stack in (X, flat.reshape(inner, width, width).transpose(1, 0, 2)):
            got = np.matmul(W, stack)[lanes, :, lanes]  # (width, rows): column j of slice j
            if not (got == got[0]).all():
                return False
    return True


def lane_width(*shapes: tuple[int, int]) -> int:
    """The widest of 64, 32, 16, 8, 4 and 2 columns at which every product ``W @ X`` with ``W``
    of one of ``shapes`` (rows, inner) computes each column alike at every position (else 1):
    products stacked at that width give each window the same values in any batch."""
    for width in _WIDTHS:
        if all(_uniform_width(r, k, width) for r, k in shapes):
            return width
    return 1


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


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """The arrays of a bundle's ``.npz`` file (``what``: student, teacher); a
    :class:`~ethoedge.errors.ConfigError` naming the file when it is missing or is not an
    ``.npz`` of arrays."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ConfigError(f"the bundle's {what} is missing", path=path) from None
    except OSError as e:
        raise ConfigError(
            f"cannot read the bundle's {what} ({e.strerror or e})", path=path
        ) from None
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile):
        raise ConfigError(
            f"not a readable {what} (not a NumPy .npz of arrays)", path=path
        ) from None


_TWO, _ONE = np.float32(2.0), np.float32(1.0)


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
        # The state is kept as u = h + 1 (in [0, 2]); a step is one product of stacked
        # weights with [a_t; u; 1] (a_t: the input stage's output), every bias folded into
        # the last column, the recurrent weights' part of h = u - 1 (minus their row sums)
        # with it. Rows: [-(r); -(z)] pre-activations (input and recurrent parts summed), so
        # that a sigmoid is 1 / (1 + exp(row)); then -2 (W_in a + b_in) and -2 (W_hn h + b_hn),
        # so that n + 1 = 2 / (1 + exp(-2 (W_in a + b_in) + r * -2 (W_hn h + b_hn))). And
        # u' = h' + 1 = (n + 1) + z (u - (n + 1)). The scalings are powers of two: exact.
        w_ih, b_ih = f32["gru.weight_ih_l0"], f32["gru.bias_ih_l0"]
        w_hh, b_hh = f32["gru.weight_hh_l0"], f32["gru.bias_hh_l0"]
        D = int(w_ih.shape[1])
        row_sums = w_hh.astype(np.float64).sum(axis=1)  # W_hh 1: h = u - 1
        gates = np.zeros((4 * H, D + H + 1), dtype=np.float64)
        gates[: 2 * H, :D] = -w_ih[: 2 * H]
        gates[: 2 * H, D : D + H] = -w_hh[: 2 * H]
        gates[: 2 * H, D + H] = -(b_ih[: 2 * H].astype(np.float64) + b_hh[: 2 * H]
                                  - row_sums[: 2 * H])  # fmt: skip
        gates[2 * H : 3 * H, :D] = -2.0 * w_ih[2 * H :]
        gates[2 * H : 3 * H, D + H] = -2.0 * b_ih[2 * H :]
        gates[3 * H :, D : D + H] = -2.0 * w_hh[2 * H :]
        gates[3 * H :, D + H] = -2.0 * (b_hh[2 * H :].astype(np.float64) - row_sums[2 * H :])
        gates = gates.astype(np.float32)
        self._gates = gates
        # The input stage on [x_t; 1] (its bias as the last column).
        self._inp_w = np.concatenate([f32["inp.weight"], f32["inp.bias"][:, None]], axis=1)
        self._mlp_w = np.ascontiguousarray(f32["mlp.weight"])
        mlp_b = f32["mlp.bias"].astype(np.float64) - f32["mlp.weight"].astype(np.float64).sum(1)
        self._mlp_b = mlp_b.astype(np.float32)[:, None]  # mlp(h) = W u + (b - W 1)
        self._out_w = np.ascontiguousarray(f32["out.weight"])
        self._out_b = f32["out.bias"][:, None]
        self._filters: dict[int, np.ndarray] = {}
        self._widths: dict[int, int] = {}

    @classmethod
    def from_npz(
        cls, path: str | Path, cfg: Mapping[str, object], batch_size: int = 512
    ) -> NumpyStudent:
        """From a bundle's ``student.npz`` and its ``student`` configuration."""
        state = read_npz(path, "student")
        try:
            return cls(cfg, state, batch_size=batch_size)
        except (ValueError, KeyError) as e:  # missing tensors, other shapes
            what = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise ConfigError(
                f"not the student bundle.json describes ({what})", path=path
            ) from None

    def __call__(self, Xn: np.ndarray) -> np.ndarray:
        Xn = np.asarray(Xn, dtype=np.float32)
        if Xn.ndim != 3 or Xn.shape[1] != self.n_channels:
            raise ValueError(f"windows must be (n, {self.n_channels}, L), got {Xn.shape}")
        if len(Xn) == 0:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        size = self.batch_size
        parts = [self._batch(Xn[i : i + size]) for i in range(0, len(Xn), size)]
        return np.concatenate(parts)

    def width(self, length: int) -> int:
        """Windows per block of every matrix product, for windows of ``length`` samples (see
        the module docstring)."""
        if length not in self._widths:
            shapes = [self._inp_w.shape, self._gates.shape, self._mlp_w.shape, self._out_w.shape]
            if self.input != "raw":
                shapes.append((length, length))
            self._widths[length] = lane_width(*[(int(r), int(k)) for r, k in shapes])
        return self._widths[length]

    def _front(self, x: np.ndarray, width: int) -> np.ndarray:
        """The input stage's channels and a channel of ones, time-major, in blocks of
        ``width`` windows: ``(L, blocks, k + 1, width)``."""
        n, c, L = x.shape
        blocks = -(-n // width)
        xt = np.zeros((blocks * width, c, L), dtype=np.float32)
        xt[:n] = x
        if self.input != "raw":
            if L not in self._filters:
                self._filters[L] = np.ascontiguousarray(
                    static_filter_matrix(L, self.alpha).astype(np.float32)
                )
            # (blocks * c, L, width): a block's windows as the columns, one product per channel.
            cols = xt.reshape(blocks, width, c, L).transpose(0, 2, 3, 1).reshape(-1, L, width)
            static = np.matmul(self._filters[L], cols)
            dynamic = cols - static
            parts = [dynamic] if self.input == "dynamic" else [dynamic, static]
            # back to (L, blocks, k, width)
            stage = np.concatenate(
                [p.reshape(blocks, c, L, width) for p in parts], axis=1
            ).transpose(2, 0, 1, 3)
        else:
            stage = xt.reshape(blocks, width, c, L).transpose(3, 0, 2, 1)
        k = stage.shape[2]
        steps = np.empty((L, blocks, k + 1, width), dtype=np.float32)
        steps[:, :, :k] = stage
        steps[:, :, k] = 1.0
        return steps

    def _batch(self, x: np.ndarray) -> np.ndarray:
        # Batch-minor arrays (a row of the batch's windows per gate or state unit): every
        # element-wise pass is one contiguous sweep. Each product is a stack of products of
        # one block of `width` windows each (a view of those rows).
        H = self.hidden
        D = self._inp_w.shape[0]
        width = self.width(x.shape[2])
        steps = self._front(x, width)  # (L, blocks, k + 1, width)
        blocks = steps.shape[1]
        n = blocks * width

        def stack(a: np.ndarray) -> np.ndarray:  # (rows, n) -> (blocks, rows, width) view
            return a.reshape(a.shape[0], blocks, width).transpose(1, 0, 2)

        buf = np.zeros((D + H + 1, n), dtype=np.float32)  # [a_t; u; 1]
        buf[D:] = 1.0  # u = h + 1 = 1 at the start, and the ones
        a_t, u = buf[:D], buf[D : D + H]
        g = np.empty((4 * H, n), dtype=np.float32)
        rz, r, z = g[: 2 * H], g[:H], g[H : 2 * H]
        g_in, g_hn = g[2 * H : 3 * H], g[3 * H :]
        cand = np.empty((H, n), dtype=np.float32)
        buf_s, g_s, a_s = stack(buf), stack(g), stack(a_t)
        inputs = np.matmul(self._inp_w, steps)  # (L, blocks, D, width): every step at once
        np.maximum(inputs, 0.0, out=inputs)
        with np.errstate(over="ignore"):  # exp to inf: a sigmoid of 0, n + 1 of 0
            for a_in in inputs:
                a_s[...] = a_in
                np.matmul(self._gates, buf_s, out=g_s)
                np.exp(rz, out=rz)  # r, z = 1 / (1 + exp(-pre-activation))
                rz += _ONE
                np.divide(_ONE, rz, out=rz)
                np.multiply(r, g_hn, out=cand)
                cand += g_in
                np.exp(cand, out=cand)  # n + 1 = 2 / (1 + exp(-2 (...)))
                cand += _ONE
                np.divide(_TWO, cand, out=cand)
                u -= cand  # u' = (n + 1) + z (u - (n + 1))
                u *= z
                u += cand
        m = np.matmul(self._mlp_w, stack(u))
        m += self._mlp_b
        np.maximum(m, 0.0, out=m)
        z = np.matmul(self._out_w, m)
        z += self._out_b
        # (blocks, C, width) -> (windows, C)
        return np.ascontiguousarray(z.transpose(0, 2, 1).reshape(-1, z.shape[1])[: x.shape[0]])
