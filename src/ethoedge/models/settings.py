"""The models' settings, without PyTorch: what ``bundle.json`` and configs hold for the
student (:class:`StudentConfig`) and the teacher (:class:`TeacherConfig`), and the input
stages they share (:mod:`ethoedge.models.frontend` builds them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ethoedge.configbase import Int, PosInt, config_dataclass

InputStage = Literal["raw", "dynamic", "static_dynamic"]


@config_dataclass(key="student")
class StudentConfig:
    """GRU-MLP size and input stage. ``mlp_hidden=None`` means the same as ``hidden``.

    ``input``: ``raw`` samples, ``static_dynamic`` (each axis as its causal low-pass static
    part and the dynamic rest, :mod:`ethoedge.models.frontend`) or ``dynamic`` (the dynamic
    part only), with the low-pass's smoothing factor
    ``1 - 2**-static_shift``: 3 is 0.875, a time constant of about 7.5 samples, 0.75 s at
    10 Hz).
    """

    hidden: PosInt = 32
    mlp_hidden: PosInt | None = None
    input: InputStage = "raw"
    static_shift: Annotated[Int, Field(ge=1, le=8)] = 3

    @property
    def mlp(self) -> int:
        return self.mlp_hidden if self.mlp_hidden is not None else self.hidden


@config_dataclass(key="teacher")
class TeacherConfig:
    """ResNet size: one filter count and the kernel sizes shared by every block.

    Attributes:
        filters: output channels of the three residual blocks (Wang et al.: 64, 128, 128).
        kernels: kernel sizes of the three convolutions inside each block (8, 5, 3).
        input: ``raw``, ``dynamic`` or ``static_dynamic`` (:mod:`ethoedge.models.frontend`).
        static_shift: the ``static_dynamic`` low-pass's smoothing factor is
            ``1 - 2**-static_shift``.
        stats: a wide branch beside the convolutions: hand-made statistics of the normalised
            window before the input stage (:mod:`ethoedge.models.window_stats`: posture,
            spread, quantiles, spectral bands), batch-normalised, through a linear layer of
            ``stats`` units and ReLU, joined to the pooled convolution features before the
            last layer; 0: none.
    """

    filters: Annotated[tuple[PosInt, ...], Field(min_length=1)] = (64, 128, 128)
    kernels: Annotated[tuple[PosInt, ...], Field(min_length=1)] = (8, 5, 3)
    input: InputStage = "raw"
    static_shift: Annotated[Int, Field(ge=1, le=8)] = 3
    stats: Annotated[Int, Field(ge=0)] = 0
