"""One inference API for every model a run makes: :class:`Classifier`, scikit-learn style.

``predict(X_g)`` and ``predict_proba(X_g)`` take raw windows in g, ``(n, channels, L)``, the
shape :func:`windows_for_bundle` returns. Two engines compute the same model:

- ``float``: the PyTorch student (or teacher), on normalised windows;
- ``int``: the integer-only reference of its dynamic fixed-point version
  (:class:`~ethoedge.quantize.qmodel.QuantizedStudent`; what the exported C computes, bit for
  bit), on the windows quantized to int16; its scores are the softmax of its logits and its
  class is the first index of the largest integer logit.

``classify``, the evaluation of a run's models and its deployment bundle's integer models
predict through this class; the quantize stage's word-length sweep calls the same integer
reference function that the ``int`` engine wraps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ethoedge.bundle import Bundle, load_bundle, window_like_bundle, windows_for_bundle
from ethoedge.data.windows import Normalizer
from ethoedge.errors import ConfigError
from ethoedge.quantize.qmodel import QuantizedStudent

Engine = Literal["float", "int"]
ENGINES = ("float", "int")

__all__ = ["ENGINES", "Classifier", "Engine", "window_like_bundle", "windows_for_bundle"]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Classifier:
    """A trained model behind one contract.

    Args:
        model: a float PyTorch model (``engine="float"``) or a
            :class:`~ethoedge.quantize.qmodel.QuantizedStudent` (``engine="int"``).
        normalizer: the per-axis normaliser the float model was trained with (the integer
            model has it folded into its first layer).
        class_names: label names, index = class id (default: the integer model's).
        device: where the float engine runs (``auto``, ``cpu`` or ``cuda``).
        batch_size: windows per forward pass of the float engine.

    Attributes:
        classes_: the class names as an array (index = class id).
        engine: ``"float"`` or ``"int"``.
    """

    def __init__(
        self,
        model: torch.nn.Module | QuantizedStudent,
        normalizer: Normalizer | None = None,
        class_names: Sequence[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 512,
    ) -> None:
        self.model = model
        self.engine: Engine = "int" if isinstance(model, QuantizedStudent) else "float"
        if self.engine == "float" and normalizer is None:
            raise ConfigError("the float engine needs the model's normalizer")
        self.normalizer = normalizer
        if class_names is None:
            class_names = model.class_names if isinstance(model, QuantizedStudent) else ()
        self.class_names = tuple(class_names)
        self.classes_ = np.asarray(self.class_names, dtype=object)
        self.batch_size = int(batch_size)
        self.device = "cpu"
        if self.engine == "float":
            from ethoedge.train import resolve_device

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
        """The bundle's student: float, or its ``quantized/w{bits}.json`` integer model."""
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        bundle_dir = None if isinstance(bundle, Bundle) else Path(bundle)
        b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if engine == "int":
            if bundle_dir is None:
                raise ConfigError("the int engine loads BUNDLE/quantized/w{bits}.json: give a path")
            q_path = bundle_dir / "quantized" / f"w{bits}.json"
            if not q_path.is_file():
                raise ConfigError(
                    f"no {bits}-bit integer model at {q_path}: run "
                    f"`ethoedge quantize {bundle_dir} --bits {bits}` first"
                )
            return cls(QuantizedStudent.load(q_path), class_names=b.class_names)
        return cls(b.student, b.normalizer, b.class_names, device=device)

    # ------------------------------------------------------------------ predictions

    def decision_function(self, X_g: np.ndarray) -> np.ndarray:
        """Logits ``(n, C)``: float32 from the float engine, int64 from the integer engine."""
        X_g = np.asarray(X_g, dtype=np.float32)
        if X_g.ndim != 3:
            raise ConfigError(f"windows must be (n, channels, L), got shape {X_g.shape}")
        if self.engine == "int":
            from ethoedge.quantize.reference import quantize_input, reference_logits_batched

            q = self.model
            assert isinstance(q, QuantizedStudent)
            return reference_logits_batched(q, quantize_input(X_g, q.in_frac))
        return self._float_logits(X_g)

    def predict_proba(self, X_g: np.ndarray) -> np.ndarray:
        """Class scores ``(n, C)`` (float64 rows summing to 1)."""
        z = self.decision_function(X_g)
        if self.engine == "int":
            q = self.model
            assert isinstance(q, QuantizedStudent)
            return softmax(z.astype(np.float64) * 2.0 ** -q.frac("logits"))
        return softmax(z.astype(np.float64))

    def predict(self, X_g: np.ndarray) -> np.ndarray:
        """Class ids ``(n,)``: the first index of the largest score."""
        return np.asarray(self.decision_function(X_g)).argmax(axis=1)

    def _float_logits(self, X_g: np.ndarray) -> np.ndarray:
        assert self.normalizer is not None
        model = self.model
        assert isinstance(model, torch.nn.Module)
        model.to(self.device).eval()
        Xn = self.normalizer.apply(X_g)
        out = []
        with torch.no_grad():
            for i in range(0, len(Xn), self.batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(Xn[i : i + self.batch_size]))
                out.append(model(xb.to(self.device)).float().cpu().numpy())
        if not out:
            n_classes = len(self.class_names) or int(getattr(model, "n_classes", 0))
            return np.zeros((0, n_classes), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)
