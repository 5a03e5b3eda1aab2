import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ethoedge.distill import kd_loss


def test_alpha_zero_is_exactly_cross_entropy():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    y = torch.randint(0, 4, (8,), generator=g)
    assert torch.equal(kd_loss(zs, zt, y, 0.0, 4.0), F.cross_entropy(zs, y))
    assert torch.equal(kd_loss(zs, None, y, 0.0, 4.0), F.cross_entropy(zs, y))


def test_soft_term_is_minimal_when_logits_equal():
    g = torch.Generator().manual_seed(1)
    zt = torch.randn(6, 5, generator=g)
    y = torch.randint(0, 5, (6,), generator=g)
    at_teacher = float(kd_loss(zt.clone(), zt, y, 1.0, 3.0))
    assert at_teacher == pytest.approx(0.0, abs=1e-6)
    for _ in range(20):
        zs = zt + 0.5 * torch.randn(6, 5, generator=g)
        assert float(kd_loss(zs, zt, y, 1.0, 3.0)) > at_teacher
    # Gradient of the soft term vanishes at z_s = z_t.
    zs = zt.clone().requires_grad_(True)
    kd_loss(zs, zt, y, 1.0, 3.0).backward()
    assert float(zs.grad.abs().max()) < 1e-6


def test_hand_computed_value():
    zs = torch.tensor([[1.0, 0.0]])
    zt = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([0])
    alpha, T = 0.25, 2.0
    # By hand: p = softmax([0, 1]), q = softmax([0.5, 0]); CE = -log softmax([1, 0])[0].
    p = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    q = np.exp([0.5, 0.0]) / np.exp([0.5, 0.0]).sum()
    kl = float((p * np.log(p / q)).sum())
    ce = -math.log(math.e / (math.e + 1))
    expected = alpha * T * T * kl + (1 - alpha) * ce
    assert float(kd_loss(zs, zt, y, alpha, T)) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.25 * 4 * 0.2574032 + 0.75 * 0.3132617, rel=1e-6)


@pytest.mark.parametrize("alpha,T", [(-0.1, 1.0), (1.5, 1.0), (0.5, 0.0), (0.5, -2.0)])
def test_bad_arguments(alpha, T):
    z = torch.zeros(1, 2)
    with pytest.raises(ValueError):
        kd_loss(z, z, torch.tensor([0]), alpha, T)


def test_standardized_soft_term_ignores_the_teachers_logit_range():
    """With standardised logits the soft term is zero for any positive affine map of the
    teacher's logits (per row), and the loss is the plain loss on z-scored logits."""
    g = torch.Generator().manual_seed(2)
    zt = torch.randn(6, 4, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    scale = torch.rand(6, 1, generator=g) * 5 + 0.1
    shift = torch.randn(6, 1, generator=g)
    zs = scale * zt + shift
    assert float(kd_loss(zs, zt, y, 1.0, 2.0, standardize=True)) == pytest.approx(0.0, abs=1e-5)
    assert float(kd_loss(zs, zt, y, 1.0, 2.0)) > 1e-3  # unstandardised: the range differs
    # The soft term on standardised logits is the usual one on z-scored inputs; the hard
    # term keeps the raw student logits.
    z = lambda v: (v - v.mean(1, keepdim=True)) / v.std(1, unbiased=False, keepdim=True)  # noqa: E731
    zs2 = torch.randn(6, 4, generator=g)
    soft = kd_loss(z(zs2), z(zt), y, 1.0, 3.0)
    torch.testing.assert_close(kd_loss(zs2, zt, y, 1.0, 3.0, standardize=True), soft)
    mixed = 0.5 * soft + 0.5 * F.cross_entropy(zs2, y)
    torch.testing.assert_close(kd_loss(zs2, zt, y, 0.5, 3.0, standardize=True), mixed)
    # A constant row (no spread) stays finite.
    flat = torch.zeros(1, 4)
    assert torch.isfinite(kd_loss(flat, flat, y[:1], 0.5, 1.0, standardize=True))
