"""Configuration of the C export stage (one frozen dataclass, saved beside the C it produced)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ethoedge.configbase import Bool, Int, Str, config_dataclass, from_plain, to_plain
from ethoedge.errors import ConfigError

_C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary""".split()
)
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")

SUPPORTED_WORD_BITS = (8, 16)
GRAVITY_AXES = ("x", "y", "z", "-x", "-y", "-z")
# the example main.c, the kernel library's files, and its ETHOEDGE_ macros and symbols
RESERVED_PREFIXES = frozenset({"main", "ethoedge", "ethoedge_kernels", "ethoedge_batch"})


def is_c_identifier(name: str) -> bool:
    """Whether ``name`` can prefix every C symbol we emit (letter first, no keyword, <= 40 chars).

    >>> is_c_identifier("ethoedge_model"), is_c_identifier("1abc"), is_c_identifier("int")
    (True, False, False)
    >>> is_c_identifier("my-model"), is_c_identifier("_x")
    (False, False)
    """
    return bool(_IDENT.match(name)) and name not in _C_KEYWORDS and len(name) <= 40


@config_dataclass(key="export")
class ExportConfig:
    """How the quantized student becomes C.

    Types are checked on construction; the values are checked against the model by
    :meth:`validate` (a config may name, say, a word length the model does not have).

    Attributes:
        prefix: C identifier that prefixes every emitted symbol, file name and macro
            (``<prefix>.h``, ``<prefix>_classify``, ``<PREFIX>_N_SAMPLES``).
        word_bits: word length W of the exported model (8 or 16); None takes the quantized
            model's own; a value different from the model's is an error.
        n_samples: window length L in samples; None takes ``qmodel.meta["n_samples"]``.
        use_dsp: let the C use the Arm DSP (SIMD32) instructions ``SMLAD``/``SMLALD``/
            ``SXTB16`` where the compiler targets them (Cortex-M4/M7/M33). Integer results are
            identical with and without them; the plain C path runs everywhere else.
        example_main: also write an example ``main.c`` that classifies one constant window.
        hop: samples between window starts of the streaming API (``<prefix>_push``); None
            takes the window length (windows do not overlap). It must divide the window
            length L: the device then keeps L / hop staggered GRU states and emits a
            classification every hop samples, as ``make_windows`` with that hop does.
        gravity_axis: the axis (``"-z"``, ...) each animal's samples are turned onto when the
            model was trained with ``window.calibrate: gravity`` (the bundle's
            ``window.gravity_axis``): the header then names it (``<PREFIX>_GRAVITY_AXIS``,
            ``<PREFIX>_GRAVITY_SIGN``) for the kernel library's ``ethoedge_orientation`` and
            ``ethoedge_orient``, which the firmware calls before the model. None: samples as
            recorded.
    """

    prefix: Str = "ethoedge_model"
    word_bits: Int | None = None
    n_samples: Int | None = None
    use_dsp: Bool = True
    example_main: Bool = True
    hop: Int | None = None
    gravity_axis: Str | None = None

    def validate(self) -> None:
        """Raise :class:`~ethoedge.errors.ConfigError` on an invalid value."""
        if not is_c_identifier(self.prefix):
            raise ConfigError(
                f"prefix {self.prefix!r} is not a C identifier (a letter, then letters, "
                "digits or '_', at most 40 characters, not a C keyword)"
            )
        if self.prefix in RESERVED_PREFIXES:
            raise ConfigError(
                f"prefix {self.prefix!r} is taken by a file or the symbols the export writes"
                f" beside the model ({', '.join(sorted(RESERVED_PREFIXES))} are): choose another"
            )
        if self.word_bits is not None and self.word_bits not in SUPPORTED_WORD_BITS:
            raise ConfigError(
                f"word length {self.word_bits} cannot be exported to C (supported: 8, 16)"
            )
        if self.n_samples is not None and not 1 <= self.n_samples <= 65535:
            raise ConfigError(f"n_samples must be in 1..65535, got {self.n_samples}")
        if self.hop is not None and not 1 <= self.hop <= 65535:
            raise ConfigError(f"hop must be in 1..65535 samples, got {self.hop}")
        if self.gravity_axis is not None and self.gravity_axis not in GRAVITY_AXES:
            raise ConfigError(
                f"gravity_axis {self.gravity_axis!r} is not one of {', '.join(GRAVITY_AXES)}"
            )

    def gravity(self) -> tuple[int, int] | None:
        """``(axis index, sign)`` of :attr:`gravity_axis` (``"-z"``: ``(2, -1)``), or None."""
        if self.gravity_axis is None:
            return None
        from ethoedge.data.calibrate import parse_axis

        return parse_axis(self.gravity_axis)

    def to_json(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExportConfig:
        """Inverse of :meth:`to_json`; unknown keys are a :class:`ConfigError`."""
        return from_plain(cls, d)

    def hash(self) -> str:
        """Short SHA-256 of the canonical JSON (printed in the generated files' header).

        >>> len(ExportConfig().hash())
        16
        """
        return config_hash(self.to_json())


def config_hash(config: dict[str, Any]) -> str:
    """Short SHA-256 of an export config's canonical JSON (:meth:`ExportConfig.hash` of the
    config that ``config`` is the JSON of)."""
    blob = json.dumps(config, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
