"""The knowledge-distillation loss (Hinton, Vinyals and Dean 2015), optionally on
standardised logits (Sun et al. 2024)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    y: torch.Tensor,
    alpha: float,
    T: float,
    standardize: bool = False,
) -> torch.Tensor:
    """Distillation loss, averaged over the batch.

    ``L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(y, z_s)``

    with ``KL(p || q) = sum_c p_c (log p_c - log q_c)``. The ``T^2`` factor keeps the gradient
    of the soft term on the same scale as the hard term when ``T`` changes (Hinton, Vinyals and
    Dean, "Distilling the knowledge in a neural network", NIPS Deep Learning Workshop 2015,
    arXiv:1503.02531). ``alpha = 0`` is exactly the cross-entropy of the plain student (the
    teacher's logits are then not used and may be ``None``); the soft term is zero, its
    minimum, when the student's logits equal the teacher's.

    With ``standardize`` both logit vectors are first z-scored over the classes
    (``(z - mean(z)) / std(z)``) in the soft term only: the student then matches the relations
    between the teacher's logits, not their range, which a small student may not reach (Sun,
    Ren, Li, Wang and Cao, "Logit standardization in knowledge distillation", CVPR 2024). The
    soft term is then zero whenever the student's logits are a positive affine map of the
    teacher's.

    Args:
        student_logits: (b, C) student logits ``z_s``.
        teacher_logits: (b, C) teacher logits ``z_t`` (no gradient flows into them).
        y: (b,) int64 hard labels, or (b, C) class probabilities (mixed windows' labels).
        alpha: weight of the soft term, in [0, 1].
        T: temperature, > 0.
        standardize: z-score both logit vectors before the soft term.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if T <= 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    ce = F.cross_entropy(student_logits, y)
    if alpha == 0.0:
        return ce
    if teacher_logits is None:
        raise ValueError("kd_loss with alpha > 0 needs teacher logits")
    zs, zt = student_logits, teacher_logits.detach()
    if standardize:
        zs, zt = _zscore(zs), _zscore(zt)
    log_q = F.log_softmax(zs / T, dim=1)
    log_p = F.log_softmax(zt / T, dim=1)
    kl = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return alpha * T * T * kl + (1.0 - alpha) * ce


def _zscore(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each row of ``z`` minus its mean over the classes, over its standard deviation."""
    centred = z - z.mean(dim=1, keepdim=True)
    return centred / (centred.pow(2).mean(dim=1, keepdim=True).sqrt() + eps)
