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
