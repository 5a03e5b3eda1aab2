"""Configuration of the quantization stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ethoedge.errors import ConfigError


@dataclass(frozen=True)
class QuantConfig:
    """Dynamic fixed-point quantization of the student (``docs/fixedpoint.md``).

    Attributes:
        word_bits: word lengths W to sweep (each in 4..16).
        in_frac: fraction bits of the int16 input in g (11: Q4.11, +-16 g, 0.49 mg step).
        rule: fraction-bit rule, ``"max"`` (``r = max|x|``) or ``"percentile"``
            (``r`` = the ``percentile``-th percentile of ``|x|``; larger values saturate).
        percentile: percentile of ``|x|`` used by the ``"percentile"`` rule.
        calib_windows: at most this many training windows (chosen at random with ``seed``)
            feed the calibration pass of the activations.
        qat: ``False``: post-training quantization only; ``"auto"``: quantization-aware
            fine-tuning when post-training quantization at 8 bits loses more than
            ``qat_threshold`` MCC against the float student; ``True``: always fine-tune.
        qat_epochs: epochs of quantization-aware fine-tuning.
        qat_lr: Adam learning rate of the fine-tuning.
        qat_batch: mini-batch size of the fine-tuning.
        qat_threshold: MCC loss at 8 bits that triggers fine-tuning when ``qat="auto"``.
        kd_alpha: weight of the soft-label term when teacher soft labels are given.
        kd_temperature: distillation temperature when teacher soft labels are given.
        seed: random seed (calibration subset, fine-tuning order).
    """

    word_bits: tuple[int, ...] = (16, 12, 8, 6)
    in_frac: int = 11
    rule: Literal["max", "percentile"] = "max"
    percentile: float = 99.99
    calib_windows: int = 2048
    qat: bool | Literal["auto"] = False
    qat_epochs: int = 5
    qat_lr: float = 1e-3
    qat_batch: int = 64
    qat_threshold: float = 0.02
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.word_bits:
            raise ConfigError("quantize: word_bits is empty")
        for w in self.word_bits:
            check_word_bits(w)
        if not 0 <= self.in_frac <= 15:
            raise ConfigError(f"quantize: in_frac must be in 0..15, got {self.in_frac}")
        if self.rule not in ("max", "percentile"):
            raise ConfigError(f"quantize: unknown rule {self.rule!r} (use 'max' or 'percentile')")
        if not 0.0 < self.percentile <= 100.0:
            raise ConfigError(f"quantize: percentile must be in (0, 100], got {self.percentile}")
        if self.calib_windows < 1:
            raise ConfigError("quantize: calib_windows must be >= 1")
        if self.qat not in (False, True, "auto"):
            raise ConfigError(f"quantize: qat must be false, true or 'auto', got {self.qat!r}")
        if self.qat_epochs < 0 or self.qat_lr <= 0 or self.qat_batch < 1:
            raise ConfigError("quantize: qat_epochs >= 0, qat_lr > 0 and qat_batch >= 1 needed")
        if not 0.0 <= self.kd_alpha <= 1.0 or self.kd_temperature <= 0:
            raise ConfigError("quantize: kd_alpha must be in [0, 1] and kd_temperature > 0")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["word_bits"] = list(self.word_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantConfig:
        d = dict(d)
        if "word_bits" in d:
            d["word_bits"] = tuple(int(w) for w in d["word_bits"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"quantize: unknown option(s) {sorted(unknown)}")
        return cls(**d)


def check_word_bits(word_bits: int) -> int:
    """Validate a word length (4..16: every intermediate is then exact in int64) and return it.

    >>> check_word_bits(8)
    8
    """
    if not isinstance(word_bits, int) or isinstance(word_bits, bool) or not 4 <= word_bits <= 16:
        raise ConfigError(f"quantize: word length must be an integer in 4..16, got {word_bits!r}")
    return word_bits
