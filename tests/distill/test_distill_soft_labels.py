import numpy as np
import torch

from ethoedge.distill import load_soft_labels, make_soft_labels, save_soft_labels
from ethoedge.models import ResNetTeacher, TeacherConfig


def test_soft_labels_sum_to_one_and_round_trip(tmp_path):
    torch.manual_seed(0)
    teacher = ResNetTeacher(3, TeacherConfig(filters=(4, 4, 4)))
    Xn = np.random.default_rng(0).normal(size=(10, 3, 20)).astype(np.float32)
    idx = np.arange(10, 20)
    sl = make_soft_labels(teacher, Xn, idx, ("a", "b", "c"), temperature=4.0)
    assert sl.logits.shape == (10, 3)
    np.testing.assert_allclose(sl.probs.sum(axis=1), 1.0, atol=1e-6)
    # Higher temperature: softer (higher entropy) distributions.
    hot = make_soft_labels(teacher, Xn, idx, ("a", "b", "c"), temperature=1.0)
    assert sl.probs.max(axis=1).mean() <= hot.probs.max(axis=1).mean() + 1e-7
    path = save_soft_labels(sl, tmp_path / "soft.npz")
    back = load_soft_labels(path)
    np.testing.assert_array_equal(back.logits, sl.logits)
    np.testing.assert_array_equal(back.index, idx)
    assert back.temperature == 4.0 and back.class_names == ("a", "b", "c")
    with np.load(path) as z:
        np.testing.assert_allclose(z["probs"].sum(axis=1), 1.0, atol=1e-6)
