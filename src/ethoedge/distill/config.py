"""Distillation settings: one :class:`KDConfig` for the student's training and its
quantization-aware fine-tuning."""

from __future__ import annotations

from ethoedge.configbase import Bool, PosFloat, UnitFloat, config_dataclass


@config_dataclass(key="kd")
class KDConfig:
    """Knowledge distillation settings (:func:`ethoedge.distill.kd_loss`).

    The same alpha and temperature weight the teacher's soft labels in the training of the
    distilled student and in its quantization-aware fine-tuning
    (:func:`ethoedge.quantize.rewrite.qat_finetune`).

    Attributes:
        alpha: weight of the soft (teacher) term, in [0, 1]; 0 is the plain student.
        temperature: softmax temperature T > 0.
        consistent: the teacher scores the same augmented batch as the student (the teacher
            stays in memory) instead of the stored soft labels of the un-augmented windows.
    """

    alpha: UnitFloat = 0.5
    temperature: PosFloat = 4.0
    consistent: Bool = False
