import math

import pytest
import torch

from ethoedge.models import GRUStudent, ResNetTeacher, StudentConfig, TeacherConfig, model_cost
from ethoedge.models.resnet import expected_param_count

torch.set_num_threads(1)


def test_teacher_matches_published_architecture():
    m = ResNetTeacher(4)
    n = sum(p.numel() for p in m.parameters())
    # Wang et al. 2017: 3 blocks x 3 convs (k 8/5/3; 64/128/128 filters) + BN, 1x1-conv+BN
    # shortcuts, GAP, linear. Counted by hand: 35,264 + 206,336 + 280,064 + 516 = 522,180.
    assert n == expected_param_count(4) == 522_180
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [8, 5, 3, 1] * 3
    assert [c.out_channels for c in convs] == [64] * 4 + [128] * 8
    # MACs per 50-sample window: 517,824 per sample + the linear layer (the ~25 M of the notes);
    # per 256-sample window about the 132.6 M the authors report.
    assert m.macs(50) == 517_824 * 50 + 128 * 4
    assert abs(m.macs(256) - 132.6e6) / 132.6e6 < 0.01


@pytest.mark.parametrize("L", [1, 8, 50])
def test_teacher_shapes_and_same_padding(L):
    m = ResNetTeacher(5, TeacherConfig(filters=(4, 6, 6)), n_channels=3).eval()
    assert m(torch.randn(2, 3, L)).shape == (2, 5)
    h = m.blocks(torch.randn(2, 3, L))
    assert h.shape == (2, 6, L)  # "same" padding keeps the length, even for k = 8


@pytest.mark.parametrize("H", [8, 16, 32, 64])
def test_student_sizes(H):
    m = GRUStudent(4, StudentConfig(hidden=H))
    assert m(torch.randn(3, 3, 50)).shape == (3, 4)
    gru = 3 * (H * H + H * H + 2 * H)
    assert model_cost(m, 50)["params"] == (3 * H + H) + gru + (H * H + H) + (H * 4 + 4)
    assert model_cost(m, 50)["bytes"] == 4 * model_cost(m, 50)["params"]
    assert model_cost(m, 50)["macs"] == m.macs(50)


def test_student_is_under_5_percent_of_teacher():
    t = model_cost(ResNetTeacher(4), 50)
    s = model_cost(GRUStudent(4, StudentConfig(hidden=32)), 50)
    assert s["params"] / t["params"] < 0.05


def test_window_statistics_on_hand_made_windows():
    from ethoedge.models.window_stats import WindowStatistics, n_stats

    L = 50
    t = torch.arange(L, dtype=torch.float64)
    still = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)[:, None].expand(3, L)
    wave = still + torch.stack([torch.sin(2 * torch.pi * 5 * t / L), 0 * t, 0 * t])  # bin 5
    s = WindowStatistics()(torch.stack([still, wave]))
    assert s.shape == (2, n_stats(3)) == (2, 51)
    per_axis = s[:, :30].reshape(2, 10, 3)  # mean, sd, min, max, 5 quantiles, |diff|; x y z
    assert torch.allclose(per_axis[0, 0], still[:, 0])
    assert torch.allclose(per_axis[1, 0], still[:, 0], atol=1e-12)
    sd_min_max = torch.tensor([[1e-4, 0.0, 0.0], [1e-4, 0.3, 0.3], [1e-4, 1.0, 1.0]])
    assert torch.allclose(per_axis[0, 1:4].T, sd_min_max.double())
    assert torch.allclose(per_axis[0, 4:9], still[:, 0].expand(5, 3))  # quantiles of a constant
    assert abs(float(per_axis[1, 1, 0]) - 0.5**0.5) < 1e-6  # sd of a unit sine
    mag = s[:, 30:33]
    assert torch.allclose(mag[0], torch.tensor([1e-4, 0.0, 0.0], dtype=torch.float64), atol=1e-6)
    odba = float(torch.sin(2 * torch.pi * 5 * t / L).abs().mean())
    assert float(mag[1, 2]) == pytest.approx(odba)
    bands = s[:, 33:48].reshape(2, 5, 3)  # bins 1, 2-3, 4-7, 8-15, 16-25; x, y, z each
    assert torch.allclose(bands[0], torch.full((5, 3), math.log(1e-4), dtype=torch.float64))
    assert int(bands[1, :, 0].argmax()) == 2  # bin 5 lies in the 4-7 band
    assert float(torch.exp(bands[1, 2, 0])) == pytest.approx(1e-4 + 0.25, rel=1e-6)  # |D_5|²/L²
    assert torch.all(s[:, 48:] == 0)  # correlations: no two axes move together


def test_teacher_with_the_wide_branch():
    cfg = TeacherConfig(filters=(4, 6, 6), input="dynamic", stats=8)
    m = ResNetTeacher(5, cfg, n_channels=3)
    assert sum(p.numel() for p in m.parameters()) == expected_param_count(5, cfg)
    assert m(torch.randn(4, 3, 50)).shape == (4, 5)
    m.eval()
    for L in (1, 8):  # the statistics are finite on the shortest windows
        assert torch.isfinite(m(torch.randn(2, 3, L))).all()
    x = torch.randn(3, 3, 50)
    x2 = x.clone()
    x2[:, 1] += 2.0  # a posture change: the dynamic input hardly sees it, the wide branch does
    assert not torch.allclose(m.wide(x), m.wide(x2))
