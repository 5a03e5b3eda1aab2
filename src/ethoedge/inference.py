"""One inference API for every model a run makes: :class:`Classifier`, scikit-learn style.

``predict(X_g)`` and ``predict_proba(X_g)`` take raw windows in g, ``(n, channels, L)``, the
shape :func:`windows_for_bundle` returns. Three engines compute the same model:

- ``float``: the float student (or teacher), on normalised windows: a PyTorch model as given,
  or, for a bundle's student on the CPU, the same function in NumPy float32
  (:class:`~ethoedge.models.student_numpy.NumpyStudent`: no PyTorch import, logits equal to
  PyTorch's up to float32 rounding);
- ``int``: the integer-only reference of its dynamic fixed-point version
  (:class:`~ethoedge.quantize.qmodel.QuantizedStudent`; what the exported C computes, bit for
  bit), on the windows quantized to int16; its scores are the softmax of its logits and its
  class is the first index of the largest integer logit;
- ``c``: the same integer model as exported C, compiled for this machine with gcc into a
  shared library (cached per user, :mod:`ethoedge.export.host_engine`) and run over the
  windows on several threads; its logits are the ``int`` engine's, bit for bit.

``classify``, the evaluation of a run's models and its deployment bundle's integer models
predict through this class; the quantize stage's word-length sweep calls the same integer
reference function that the ``int`` engine wraps.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ethoedge.bundle import (
    Bundle,
    BundleInfo,
    load_bundle,
    read_bundle_info,
    window_like_bundle,
    windows_for_bundle,
)
from ethoedge.data.windows import Normalizer
from ethoedge.errors import ConfigError, DataError
from ethoedge.models.student_numpy import NumpyStudent
from ethoedge.quantize.qmodel import QuantizedStudent

if TYPE_CHECKING:  # imported by the float engine when it runs
    import torch

Engine = Literal["float", "int", "c"]
ENGINES = ("float", "int", "c")

__all__ = ["ENGINES", "Classifier", "Engine", "window_like_bundle", "windows_for_bundle"]


def _check_fits(n_classes: int, n_channels: int, info: BundleInfo, model_file: Path) -> None:
    """A :class:`ConfigError` naming ``model_file`` when its model scores another number of
    classes, or reads another number of channels, than ``bundle.json`` describes."""
    want = (len(info.class_names), info.n_channels)
    if (n_classes, n_channels) != want:
        raise ConfigError(
            f"not the model bundle.json describes: {n_classes} classes from {n_channels}"
            f" channels, bundle.json has {want[0]} classes ({', '.join(info.class_names)})"
            f" from {want[1]} channels",
            path=model_file,
        )


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Classifier:
    """A trained model behind one contract.

    Args:
        model: a float model (``engine="float"``: a PyTorch module or a
            :class:`~ethoedge.models.student_numpy.NumpyStudent`) or a
            :class:`~ethoedge.quantize.qmodel.QuantizedStudent` (``engine="int"`` or ``"c"``).
        normalizer: the per-axis normaliser the float model was trained with (the integer
            model has it folded into its first layer).
        class_names: label names, index = class id (default: the integer model's).
        device: where a PyTorch float model runs (``auto``, ``cpu`` or ``cuda``; a
            ``NumpyStudent`` runs on the CPU).
        batch_size: windows per forward pass of a PyTorch float model (a ``NumpyStudent``
            has its own).
        engine: ``"c"`` runs a quantized student as compiled C; default: ``"int"`` for a
            quantized student, ``"float"`` otherwise.
        threads: threads of every engine on the CPU (default
            :func:`~ethoedge.models.device.cpu_threads`: PyTorch's intra-op count where
            PyTorch is loaded).
        gravity_axis: for a model trained on orientation-calibrated windows
            (``window.calibrate: gravity``; :meth:`from_bundle` sets it), the axis each
            animal's windows were turned onto: the predictions then take the windows as
            recorded and the animal's mean acceleration (``gravity=``) and turn them as
            training did (float engine) or as the firmware does (integer engines:
            :mod:`ethoedge.quantize.orient`, the same integers as the C).

    Attributes:
        classes_: the class names as an array (index = class id).
        engine: ``"float"``, ``"int"`` or ``"c"``.
    """

    def __init__(
        self,
        model: torch.nn.Module | NumpyStudent | QuantizedStudent,
        normalizer: Normalizer | None = None,
        class_names: Sequence[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 256,
        engine: str | None = None,
        threads: int | None = None,
        gravity_axis: str | None = None,
        n_samples: int | None = None,
    ) -> None:
        self.model = model
        self.gravity_axis = gravity_axis
        self.n_samples = n_samples  # the window length the model was trained on (None: any)
        quantized = isinstance(model, QuantizedStudent)
        if engine is None:
            engine = "int" if quantized else "float"
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        if (engine != "float") != quantized:
            raise ConfigError(
                f"the {engine} engine needs "
                + ("a float model" if engine == "float" else "a quantized student")
                + f", got {type(model).__name__}"
            )
        self.engine: Engine = engine  # type: ignore[assignment]
        self.threads = threads
        if self.engine == "float" and normalizer is None:
            raise ConfigError("the float engine needs the model's normalizer")
        self.normalizer = normalizer
        if class_names is None:
            class_names = model.class_names if isinstance(model, QuantizedStudent) else ()
        self.class_names = tuple(class_names)
        self.classes_ = np.asarray(self.class_names, dtype=object)
        self.batch_size = int(batch_size)
        self.device = "cpu"
        if self.engine == "float" and not isinstance(model, NumpyStudent):
            from ethoedge.models.device import resolve_device

            self.device = resolve_device(device)

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle | str | Path,
        engine: str = "float",
        *,
        bits: int = 8,
        device: str = "cpu",
    ) -> Classifier:
        """The bundle's student: float, or its ``quantized/w{bits}.json`` integer model
        (``int``: the NumPy reference; ``c``: compiled C). The float student of a bundle
        directory runs as a :class:`~ethoedge.models.student_numpy.NumpyStudent` where
        ``device`` resolves to the CPU (PyTorch is then not imported), else in PyTorch.
        For a bundle trained on orientation-calibrated windows (``window.calibrate``) it
        has the bundle's ``gravity_axis``: give it windows as recorded with their animal's
        mean acceleration (``gravity=``), or windows already turned (cut with
        :func:`window_like_bundle` or :func:`windows_for_bundle`) without."""
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        bundle_dir = None if isinstance(bundle, Bundle) else Path(bundle)
        if engine in ("int", "c"):
            from ethoedge.quantize.config import check_word_bits

            check_word_bits(bits, key="bits")
            if engine == "c" and bits not in (8, 16):
                raise ConfigError(f"the c engine runs W = 8 or 16 (the C export's), got {bits}")
            if bundle_dir is None:
                raise ConfigError(
                    f"the {engine} engine loads BUNDLE/quantized/w{{bits}}.json: give a path"
                )
            q_path = bundle_dir / "quantized" / f"w{bits}.json"
            if not q_path.is_file():
                raise ConfigError(
                    f"no {bits}-bit integer model at {q_path}: run "
                    f"`ethoedge quantize {bundle_dir} --bits {bits}` first"
                )
            info = read_bundle_info(bundle_dir)
            q = QuantizedStudent.load(q_path, info.class_names)
            if q.word_bits != bits:
                raise ConfigError(
                    f"holds a {q.word_bits}-bit model where its name says {bits} bits:"
                    f" run `ethoedge quantize {bundle_dir} --bits {bits}` again",
                    path=q_path,
                )
            _check_fits(q.n_classes, q.n_channels, info, q_path)
            return cls(q, class_names=info.class_names,
                       engine=engine, gravity_axis=info.window.turned_onto,
                       n_samples=info.n_samples)  # fmt: skip
        if bundle_dir is not None:
            from ethoedge.models.device import resolve_device

            if resolve_device(device) == "cpu":
                info = read_bundle_info(bundle_dir)
                student = NumpyStudent.from_npz(bundle_dir / "student.npz", info.student)
                _check_fits(student.n_classes, student.n_channels, info, bundle_dir / "student.npz")
                return cls(student, info.normalizer, info.class_names,
                           gravity_axis=info.window.turned_onto,
                           n_samples=info.n_samples)  # fmt: skip
        b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, teacher=False)
        return cls(b.student, b.normalizer, b.class_names, device=device,
                   gravity_axis=b.window.turned_onto, n_samples=b.n_samples)  # fmt: skip

    # ------------------------------------------------------------------ predictions

    def decision_function(self, X_g: np.ndarray, gravity: np.ndarray | None = None) -> np.ndarray:
        """Logits ``(n, C)``: float32 from the float engine, int64 from the integer engines.

        ``gravity``: the windows' animal's mean acceleration (g, x, y, z), for a model with a
        :attr:`gravity_axis`: ``X_g`` are then the windows as recorded, turned here."""
        X_g = self._checked_windows(X_g)
        if gravity is not None:
            gravity = self._checked_gravity(gravity)
        elif self.gravity_axis is not None:
            self._warn_if_not_turned(X_g)
        if self.engine == "float":
            R = None
            if gravity is not None:
                from ethoedge.data.calibrate import axis_vector, rotation_onto

                assert self.gravity_axis is not None
                R = rotation_onto(np.asarray(gravity, np.float64), axis_vector(self.gravity_axis))
            return self._float_logits(X_g, R)
        from ethoedge.quantize.reference import quantize_input, reference_logits_batched

        q = self.model
        assert isinstance(q, QuantizedStudent)
        X_int = quantize_input(X_g, q.in_frac)
        if gravity is not None:  # as the firmware turns the samples
            from ethoedge.quantize.orient import mean_q, orient_q, orientation_q

            assert self.gravity_axis is not None
            rot = orientation_q(mean_q(gravity, q.in_frac), self.gravity_axis)
            X_int = orient_q(X_int, rot)
        if self.engine == "c":
            from ethoedge.export.host_engine import host_library

            return host_library(q, X_g.shape[2]).logits(X_int, self.threads)
        from ethoedge.models.device import cpu_threads

        return reference_logits_batched(q, X_int, threads=self.threads or cpu_threads())

    def _checked_windows(self, X_g: Any) -> np.ndarray:
        """``X_g`` as float32 ``(n, 3, L)`` of finite real numbers (L the model's), or a
        DataError / ConfigError saying what is wrong with it."""
        try:
            arr = np.asarray(X_g)
        except ValueError as e:  # a ragged nested list
            raise DataError(f"windows must be an array (n, 3, L): {e}") from None
        if arr.dtype.kind not in "biuf":
            raise DataError(f"windows must be real numbers, got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[1] != 3:
            raise ConfigError(
                f"windows must be (n, 3, L): x, y, z over time, got shape {arr.shape}"
            )
        if self.n_samples is not None and arr.shape[2] != self.n_samples and len(arr):
            raise ConfigError(
                f"windows of {arr.shape[2]} samples: the model takes {self.n_samples}"
                " (windows_for_bundle cuts them as it was trained)"
            )
        arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            n, c, t = np.argwhere(~np.isfinite(arr))[0]
            raise DataError(f"window {n} holds {arr[n, c, t]} (channel {c}, sample {t})")
        return arr

    def _warn_if_not_turned(self, X_g: np.ndarray) -> None:
        """A warning where windows given to a calibrated model without ``gravity`` do not look
        turned: their mean acceleration more than 25 degrees off the gravity axis (turned
        windows, each animal's onto the axis, have their mean along it)."""
        if len(X_g) < 10:
            return
        from ethoedge.data.calibrate import axis_vector

        assert self.gravity_axis is not None
        mean = X_g.mean(axis=(0, 2), dtype=np.float64)
        norm = float(np.linalg.norm(mean))
        if norm == 0.0:
            return
        cos = float(mean @ axis_vector(self.gravity_axis)) / norm
        angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        if angle > 25.0:
            import warnings

            warnings.warn(
                f"the windows' mean acceleration is {angle:.0f} degrees off the model's gravity"
                f" axis ({self.gravity_axis}): a model trained on calibrated windows expects"
                " them turned per animal (windows_for_bundle), or windows as recorded with"
                " gravity=, the animal's mean acceleration",
                UserWarning,
                stacklevel=3,
            )

    def _checked_gravity(self, gravity: Any) -> np.ndarray:
        if self.gravity_axis is None:
            raise ConfigError("gravity given, but the model was not trained on calibrated windows")
        try:
            g = np.asarray(gravity, dtype=np.float64)
        except (TypeError, ValueError):
            g = None
        if g is None or g.shape != (3,) or not np.isfinite(g).all() or not np.any(g):
            raise ConfigError(
                "gravity must be the animal's mean acceleration: 3 finite numbers (g, x, y, z),"
                f" not all 0; got {gravity!r}"
            )
        return g

    def predict_proba(self, X_g: np.ndarray, gravity: np.ndarray | None = None) -> np.ndarray:
        """Class scores ``(n, C)`` (float64 rows summing to 1); ``gravity`` as in
        :meth:`decision_function`."""
        return self._proba(self.decision_function(X_g, gravity))

    def predict(self, X_g: np.ndarray, gravity: np.ndarray | None = None) -> np.ndarray:
        """Class ids ``(n,)``: the first index of the largest score."""
        return np.asarray(self.decision_function(X_g, gravity)).argmax(axis=1)

    def predict_with_proba(
        self, X_g: np.ndarray, gravity: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(X_g), predict_proba(X_g))`` from one pass over the windows."""
        z = self.decision_function(X_g, gravity)
        return np.asarray(z).argmax(axis=1), self._proba(z)

    def _proba(self, z: np.ndarray) -> np.ndarray:
        if self.engine != "float":
            q = self.model
            assert isinstance(q, QuantizedStudent)
            return softmax(z.astype(np.float64) * 2.0 ** -q.frac("logits"))
        return softmax(z.astype(np.float64))

    def _prepared(self, X_g: np.ndarray, R: np.ndarray | None) -> np.ndarray:
        """Windows turned by ``R`` (if any) and normalised: window by window, so a batch at a
        time gives the same values as all at once."""
        assert self.normalizer is not None
        if R is not None:
            from ethoedge.data.calibrate import rotate

            X_g = rotate(X_g, R)
        return self.normalizer.apply(X_g)

    def _float_logits(self, X_g: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
        """Float logits of windows ``X_g`` turned by ``R`` (if any), one batch per forward
        pass. On the CPU with several threads and
        more than one batch, the batches run side by side on that many Python threads
        (a GRU step is too small to split well across threads; whole batches are not), each
        with one BLAS or PyTorch intra-op thread: the same values, batch for batch, as one
        thread computes them; else one batch at a time (the NumPy student on one BLAS
        thread, PyTorch on ``threads``).
        PyTorch's intra-op thread count is process-wide: it is 1 for the duration of such a
        call and restored after it (a thread that first uses PyTorch meanwhile starts
        with 1)."""
        from ethoedge.models.device import cpu_threads

        model = self.model
        threads = self.threads or cpu_threads()
        if isinstance(model, NumpyStudent):
            from threadpoolctl import threadpool_limits

            size = model.batch_size
            starts = range(0, len(X_g), size)
            side_by_side = threads > 1 and len(starts) > 1
            # BLAS on one thread: the student's products are small, and a product split
            # among threads could round a window otherwise than one thread does. Each
            # batch is turned and normalised on its own thread too.
            with threadpool_limits(limits=1, user_api="blas"):
                if not side_by_side:
                    return model(self._prepared(X_g, R))
                pool = self._thread_pool(threads)
                return np.concatenate(
                    list(pool.map(lambda i: model(self._prepared(X_g[i : i + size], R)), starts))
                )
        Xn = self._prepared(X_g, R)
        import torch

        assert isinstance(model, torch.nn.Module)
        model.to(self.device).eval()
        starts = range(0, len(Xn), self.batch_size)

        def one(i: int) -> np.ndarray:
            xb = torch.from_numpy(np.ascontiguousarray(Xn[i : i + self.batch_size]))
            with torch.inference_mode():
                return model(xb.to(self.device)).float().cpu().numpy()

        if self.device == "cpu" and threads > 1 and len(starts) > 1:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                out = list(self._thread_pool(threads).map(one, starts))
            finally:
                torch.set_num_threads(before)
        else:
            out = [one(i) for i in starts]
        if not out:
            n_classes = len(self.class_names) or int(getattr(model, "n_classes", 0))
            return np.zeros((0, n_classes), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def _thread_pool(self, threads: int) -> Any:
        """The float engine's threads, kept between calls (fresh threads pay PyTorch's
        per-thread start-up on every call)."""
        from concurrent.futures import ThreadPoolExecutor

        size, pool = self.__dict__.get("_pool", (0, None))
        if size != threads:
            if pool is not None:
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(threads, thread_name_prefix="ethoedge-float")
            self._pool = (threads, pool)
            _POOLED.add(self)
        return pool

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_pool", None)  # threads do not pickle; a copy starts its own
        return state


# A forked child inherits the pools without their threads: work sent to one would wait
# forever. The child drops them; its classifiers start fresh threads on first use.
_POOLED: weakref.WeakSet[Classifier] = weakref.WeakSet()


def _drop_pools_after_fork() -> None:
    for clf in list(_POOLED):
        clf.__dict__.pop("_pool", None)
    _POOLED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_pools_after_fork)
