"""Distillation settings: one :class:`KDConfig` for the student's training and its
quantization-aware fine-tuning."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ethoedge.configbase import Int, PosFloat, PosInt, UnitFloat, config_dataclass
from ethoedge.errors import ConfigError

SoftLabels = Literal["in_fold", "cross_fit", "consistent"]


@config_dataclass(key="kd", moved={"consistent": "kd.soft_labels (consistent)"})
class KDConfig:
    """Knowledge distillation settings (:func:`ethoedge.distill.kd_loss`).

    The same alpha and temperature weight the teacher's soft labels in the training of the
    distilled student and in its quantization-aware fine-tuning
    (:func:`ethoedge.quantize.rewrite.qat_finetune`).

    Attributes:
        alpha: weight of the soft (teacher) term, in [0, 1]; 0 is the plain student.
        temperature: softmax temperature T > 0.
        soft_labels: where the distilled student's soft labels come from:
            ``in_fold``: the fold's teacher, trained on all the fold's training windows, scores
            those same windows (stored, un-augmented); ``cross_fit``: the fold's training
            animals are split into ``cross_fit_groups`` groups and each window's soft label
            comes from a teacher trained on the other groups only, so no soft label comes from
            a teacher that saw the window's animal (``cross_fit_groups`` extra teacher
            trainings per fold); ``consistent``: the fold's teacher scores the same augmented
            batch as the student during training (the teacher stays in memory).
        cross_fit_groups: K, the animal groups of ``cross_fit`` (at least 2; a fold with fewer
            training animals uses one group per animal).
        baseline_weight: an ensemble teacher: the soft labels' probabilities are
            ``(1 - w) * softmax(teacher logits) + w * p_baseline``, where ``p_baseline`` is
            the feature baseline's (:mod:`ethoedge.baseline`) probability of each training
            window from a forest fitted on the *other* animal groups of the fold (the
            ``cross_fit_groups`` groups, so no baseline probability comes from a forest that
            saw the window's animal; ``cross_fit_groups`` cheap forest fits per fold). The
            stored logits are the log of the mixture, so the KD temperature applies to the
            ensemble. ``0`` (default): the ResNet teacher alone. Not with ``consistent``.
        baseline_trees: trees (or boosting iterations) of those per-group forests; ``None``
            (default): the baseline's own ``n_estimators``. The baseline row keeps its own.
        standardize_logits: z-score the student's and the teacher's logits over the classes
            before the soft term (:func:`ethoedge.distill.kd_loss`): the student matches the
            teacher's relations between classes, not the range of its logits. Off by default.
    """

    alpha: UnitFloat = 0.5
    temperature: PosFloat = 4.0
    soft_labels: SoftLabels = "in_fold"
    cross_fit_groups: Annotated[Int, Field(ge=2)] = 4
    baseline_weight: UnitFloat = 0.0
    baseline_trees: PosInt | None = None
    standardize_logits: bool = False

    def __post_init__(self) -> None:
        if self.baseline_weight > 0 and self.soft_labels == "consistent":
            raise ConfigError(
                "kd.baseline_weight > 0 needs stored soft labels (kd.soft_labels: in_fold or "
                "cross_fit), not consistent"
            )

    @property
    def consistent(self) -> bool:
        """The teacher scores every augmented batch (``soft_labels: consistent``)."""
        return self.soft_labels == "consistent"
