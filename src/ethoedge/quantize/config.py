"""Configuration of the quantization stage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ethoedge.configbase import (
    AutoBool,
    Float,
    Int,
    NonNegInt,
    PosFloat,
    PosInt,
    config_dataclass,
    from_plain,
    to_plain,
)
from ethoedge.errors import ConfigError


@config_dataclass(key="quant", moved={"kd_alpha": "kd.alpha", "kd_temperature": "kd.temperature"})
class QuantConfig:
    """Dynamic fixed-point quantization of the student (``docs/fixedpoint.md``).

    The distillation settings of quantization-aware fine-tuning with the teacher's soft
    labels are the run's ``kd`` (:class:`~ethoedge.distill.KDConfig`), the same as in the
    distilled student's training.

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
            ``qat_threshold`` MCC against the float student on the training windows (never
            the test windows); ``True``: always fine-tune.
        qat_epochs: epochs of quantization-aware fine-tuning.
        qat_lr: Adam learning rate of the fine-tuning.
        qat_batch: mini-batch size of the fine-tuning.
        qat_threshold: MCC loss at 8 bits that triggers fine-tuning when ``qat="auto"``.
        qat_rule_windows: at most this many training windows (chosen at random with
            ``seed``) on which ``qat="auto"`` measures that loss.
        seed: random seed (calibration subset, fine-tuning order).
    """

    word_bits: tuple[Int, ...] = (16, 12, 8, 6)
    in_frac: Annotated[Int, Field(ge=0, le=15)] = 11
    rule: Literal["max", "percentile"] = "max"
    percentile: Annotated[Float, Field(gt=0, le=100)] = 99.99
    calib_windows: PosInt = 2048
    qat: AutoBool = False
    qat_epochs: NonNegInt = 5
    qat_lr: PosFloat = 1e-3
    qat_batch: PosInt = 64
    qat_threshold: Float = 0.02
    qat_rule_windows: PosInt = 4096
    seed: Int = 0

    def __post_init__(self) -> None:
        if not self.word_bits:
            raise ConfigError("quant.word_bits is empty")
        for w in self.word_bits:
            check_word_bits(w, key="quant.word_bits")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), for YAML/JSON."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`.

        >>> QuantConfig.from_dict({"word_bits": [16, 8]}).word_bits
        (16, 8)
        """
        return from_plain(cls, d)


def check_word_bits(word_bits: int, *, key: str = "quantize") -> int:
    """Validate a word length (4..16: every intermediate is then exact in int64) and return it.

    ``key`` names the setting in the error message.

    >>> check_word_bits(8)
    8
    """
    if not isinstance(word_bits, int) or isinstance(word_bits, bool) or not 4 <= word_bits <= 16:
        raise ConfigError(f"{key}: word length must be an integer in 4..16, got {word_bits!r}")
    return word_bits
