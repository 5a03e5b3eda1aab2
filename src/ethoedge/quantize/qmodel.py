"""The quantized student: integer tensors that carry their own format.

This is what the quantizer produces, the integer reference runs, and the C exporter emits.
Semantics: ``docs/fixedpoint.md``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ethoedge.models.student_numpy import INPUT_STAGES


@dataclass(frozen=True)
class QTensor:
    """Integer values with their binary point: real value = ``values * 2**-frac_bits``."""

    values: np.ndarray  # int64 array (any shape)
    frac_bits: int
    word_bits: int

    def to_float(self) -> np.ndarray:
        return self.values.astype(np.float64) * (2.0**-self.frac_bits)

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.values.shape),
            "frac_bits": int(self.frac_bits),
            "word_bits": int(self.word_bits),
            "values": [int(v) for v in self.values.ravel()],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QTensor:
        raw = d["values"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            bad = next(v for v in raw if not isinstance(v, int) or isinstance(v, bool))
            raise ValueError(f"a value {bad!r} that is not an integer")
        vals = np.asarray(raw, dtype=np.int64).reshape(d["shape"])
        return cls(vals, int(d["frac_bits"]), int(d["word_bits"]))


# Tensor names, shared by Python, C and tests (one name per layer everywhere).
WEIGHT_NAMES = (
    "inp.weight", "inp.bias",
    "gru.weight_ih", "gru.weight_hh", "gru.bias_ih", "gru.bias_hh",
    "mlp.weight", "mlp.bias",
    "out.weight", "out.bias",
)  # fmt: skip
ACTIVATION_NAMES = ("a", "h", "m", "logits")


@dataclass(frozen=True)
class QuantizedStudent:
    """A GRU-MLP student in dynamic fixed point.

    Attributes:
        word_bits: W.
        in_frac: fraction bits of the int16 input (acceleration in g).
        weights: quantized parameters by name (``WEIGHT_NAMES``), normalisation folded in.
        act_frac: fraction bits of the activations by name (``ACTIVATION_NAMES``).
        hidden, mlp_hidden, n_classes, n_channels: sizes.
        class_names: label names, index = class id.
        input_stage: ``raw``, ``static_dynamic`` (the integer static/dynamic split of
            :func:`~ethoedge.quantize.fixedpoint.static_dynamic` in front of the input layer,
            which then has ``2 * n_channels`` inputs) or ``dynamic`` (its dynamic part only).
        static_shift: ``k`` of that split (smoothing factor ``1 - 2**-k``).
        meta: free-form provenance (rule, calibration windows, source bundle hash, ...).
    """

    word_bits: int
    in_frac: int
    weights: dict[str, QTensor]
    act_frac: dict[str, int]
    hidden: int
    mlp_hidden: int
    n_classes: int
    n_channels: int = 3
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    input_stage: str = "raw"
    static_shift: int = 3

    @property
    def n_inputs(self) -> int:
        """Inputs of the input layer: the channels, twice with the static/dynamic split."""
        return 2 * self.n_channels if self.input_stage == "static_dynamic" else self.n_channels

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every tensor of :data:`WEIGHT_NAMES` at this model's sizes."""
        h, m, c, k = self.hidden, self.mlp_hidden, self.n_classes, self.n_inputs
        return {
            "inp.weight": (h, k),
            "inp.bias": (h,),
            "gru.weight_ih": (3 * h, h),
            "gru.weight_hh": (3 * h, h),
            "gru.bias_ih": (3 * h,),
            "gru.bias_hh": (3 * h,),
            "mlp.weight": (m, h),
            "mlp.bias": (m,),
            "out.weight": (c, m),
            "out.bias": (c,),
        }

    def check(self) -> QuantizedStudent:
        """This model, if it is whole: a word length of 4 to 16 bits, sizes >= 1, a known
        input stage, every tensor of :data:`WEIGHT_NAMES` with its shape, the model's word
        length and values within it, the fraction bits of every activation, and as many class
        names as classes (or none). Else a ``ValueError`` saying what is wrong."""
        w = self.word_bits
        if not 4 <= w <= 16:
            raise ValueError(f"word length {w} outside 4..16")
        if min(self.hidden, self.mlp_hidden, self.n_classes, self.n_channels) < 1:
            raise ValueError(
                f"sizes H={self.hidden}, M={self.mlp_hidden}, C={self.n_classes},"
                f" channels={self.n_channels} must be >= 1"
            )
        if self.input_stage not in INPUT_STAGES:
            raise ValueError(f"unknown input stage {self.input_stage!r}")
        lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
        for name, shape in self.expected_shapes().items():
            if name not in self.weights:
                raise ValueError(f"quantized model has no tensor {name!r}")
            t = self.weights[name]
            if tuple(t.values.shape) != shape:
                raise ValueError(
                    f"tensor {name!r} has shape {tuple(t.values.shape)}, expected {shape}"
                )
            if t.word_bits != w:
                raise ValueError(f"tensor {name!r} is {t.word_bits}-bit in a W={w} model")
            if t.values.size and (t.values.min() < lo or t.values.max() > hi):
                raise ValueError(f"tensor {name!r} has values outside the {w}-bit range")
        for name in ACTIVATION_NAMES:
            if name not in self.act_frac:
                raise ValueError(f"quantized model has no fraction bits for activation {name!r}")
        if len(self.class_names) not in (0, self.n_classes):
            raise ValueError(f"{len(self.class_names)} class names for {self.n_classes} classes")
        names = self.class_names
        if not all(isinstance(c, str) for c in names) or len(set(names)) != len(names):
            raise ValueError(f"class names must be distinct names, got {list(names)!r}")
        return self

    def frac(self, name: str) -> int:
        """Fraction bits of a weight or activation tensor by name."""
        if name in self.weights:
            return self.weights[name].frac_bits
        return self.act_frac[name]

    def n_bytes(self) -> int:
        """Bytes of the parameters at their storage width (8 -> 1 byte, <=16 -> 2, else 4)."""
        per = 1 if self.word_bits <= 8 else 2 if self.word_bits <= 16 else 4
        return sum(int(t.values.size) * per for t in self.weights.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "ethoedge.quantized_student/1",
            "word_bits": self.word_bits,
            "in_frac": self.in_frac,
            "hidden": self.hidden,
            "mlp_hidden": self.mlp_hidden,
            "n_classes": self.n_classes,
            "n_channels": self.n_channels,
            "class_names": list(self.class_names),
            "act_frac": dict(self.act_frac),
            "weights": {k: v.to_json() for k, v in self.weights.items()},
            "meta": self.meta,
            # the input stage is written only where there is one (older files stay identical)
            **(
                {"input_stage": self.input_stage, "static_shift": self.static_shift}
                if self.input_stage != "raw"
                else {}
            ),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QuantizedStudent:
        return cls(
            word_bits=int(d["word_bits"]),
            in_frac=int(d["in_frac"]),
            weights={k: QTensor.from_json(v) for k, v in d["weights"].items()},
            act_frac={k: int(v) for k, v in d["act_frac"].items()},
            hidden=int(d["hidden"]),
            mlp_hidden=int(d["mlp_hidden"]),
            n_classes=int(d["n_classes"]),
            n_channels=int(d.get("n_channels", 3)),
            class_names=tuple(d.get("class_names", ())),
            meta=dict(d.get("meta", {})),
            input_stage=str(d.get("input_stage", "raw")),
            static_shift=int(d.get("static_shift", 3)),
        )

    def checksum(self) -> str:
        """SHA-256 of the canonical JSON of the integer model (provenance in generated C)."""
        d = self.to_json()
        d.pop("meta", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def save(self, path: str | Path) -> Path:
        from ethoedge.io import atomic_write_json

        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, class_names: tuple[str, ...] | None = None) -> QuantizedStudent:
        """The integer model saved at ``path``; a :class:`~ethoedge.errors.ConfigError` naming
        the file when it cannot be read (missing, not JSON, not an integer model) or, given
        the bundle's ``class_names``, when it names its classes otherwise."""
        from ethoedge.errors import ConfigError

        try:
            q = cls.from_json(json.loads(Path(path).read_text())).check()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            what = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise ConfigError(f"not a readable integer model ({what})", path=path) from None
        if class_names is not None and q.class_names not in ((), tuple(class_names)):
            raise ConfigError(
                f"class_names {list(q.class_names)} differ from bundle.json's"
                f" {list(class_names)}: quantize the bundle again",
                path=path,
            )
        return q
