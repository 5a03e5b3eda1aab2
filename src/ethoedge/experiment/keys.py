"""Model identity: one small frozen type, rendered to and parsed from the documented
``results.json`` names in exactly one place.

Names: ``teacher``, ``baseline``, ``ensemble`` (the distillation teacher of
``kd.baseline_weight``: teacher and baseline probabilities mixed), ``student``,
``student_kd``, ``student_h{H}``, ``student_kd_h{H}`` and, quantized at W bits, the same
with ``_w{W}`` appended (``student_kd_w8``, ``student_h16_w8``). ``student`` without ``_h``
is the run's headline student size (``RunConfig.student``); ``_h{H}`` names the further
sizes of ``RunConfig.student_sizes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["teacher", "baseline", "ensemble", "student"]
_WHOLE = ("teacher", "baseline", "ensemble")

_STUDENT = re.compile(r"^student(?P<kd>_kd)?(?:_h(?P<h>[1-9][0-9]*))?(?:_w(?P<w>[1-9][0-9]*))?$")


@dataclass(frozen=True, order=True)
class ModelKey:
    """Which model: its role, its student size, whether it was distilled, its word length.

    Attributes:
        role: ``teacher``, ``baseline``, ``ensemble`` or ``student``.
        hidden: the student's hidden size H where it is not the run's headline size; None for
            the headline student (and for teacher and baseline).
        kd: trained by knowledge distillation from the teacher.
        bits: word length W of the dynamic fixed-point version; None for the float model.

    >>> ModelKey.parse("student_kd_h16_w8")
    ModelKey(role='student', hidden=16, kd=True, bits=8)
    >>> ModelKey("student", kd=True, bits=8).name
    'student_kd_w8'
    """

    role: Role
    hidden: int | None = None
    kd: bool = False
    bits: int | None = None

    def __post_init__(self) -> None:
        if self.role not in (*_WHOLE, "student"):
            raise ValueError(f"unknown model role {self.role!r}")
        if self.role != "student" and (self.hidden is not None or self.kd or self.bits):
            raise ValueError(f"a {self.role} has no student size, distillation or word length")

    @property
    def name(self) -> str:
        """The documented ``results.json`` name."""
        if self.role != "student":
            return self.role
        name = "student" + ("_kd" if self.kd else "")
        if self.hidden is not None:
            name += f"_h{self.hidden}"
        if self.bits is not None:
            name += f"_w{self.bits}"
        return name

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, name: str) -> ModelKey:
        """Inverse of :attr:`name`; ValueError for a name that is none of the documented ones."""
        if name in _WHOLE:
            return cls(name)  # type: ignore[arg-type]
        m = _STUDENT.match(name)
        if m is None:
            raise ValueError(f"not a model name: {name!r}")
        return cls(
            "student",
            hidden=int(m["h"]) if m["h"] else None,
            kd=bool(m["kd"]),
            bits=int(m["w"]) if m["w"] else None,
        )

    @property
    def is_quantized(self) -> bool:
        return self.bits is not None

    @property
    def float_key(self) -> ModelKey:
        """The float model this one was quantized from (itself when float)."""
        return ModelKey(self.role, self.hidden, self.kd, None)

    @property
    def plain_key(self) -> ModelKey:
        """The same student trained without distillation."""
        return ModelKey(self.role, self.hidden, False, self.bits)

    def quantized(self, bits: int) -> ModelKey:
        return ModelKey(self.role, self.hidden, self.kd, bits)

    def with_kd(self, kd: bool = True) -> ModelKey:
        return ModelKey(self.role, self.hidden, kd, self.bits)


TEACHER = ModelKey("teacher")
BASELINE = ModelKey("baseline")
ENSEMBLE = ModelKey("ensemble")
STUDENT = ModelKey("student")
STUDENT_KD = ModelKey("student", kd=True)
