"""Fixtures of the export tests."""

from __future__ import annotations

import pytest
import torch

from ethoedge.bundle import Bundle, save_bundle
from ethoedge.data.config import DataConfig
from ethoedge.data.windows import Normalizer, WindowConfig
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.qmodel import QuantizedStudent

from .helpers import make_qmodel


@pytest.fixture(params=[8, 16], ids=["W8", "W16"])
def qmodel(request: pytest.FixtureRequest) -> QuantizedStudent:
    return make_qmodel(request.param)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, default_windows):
    """A bundle over the bundled default cattle data: seeded untrained student (H=16),
    quantized at W=8 and W=16 into ``quantized/w{bits}.json``; returns (dir, windows)."""
    torch.set_num_threads(1)
    wcfg = WindowConfig()
    windows = default_windows  # tests/conftest.py: the bundled data with WindowConfig()
    torch.manual_seed(0)
    student = GRUStudent(len(windows.class_names), StudentConfig(hidden=16))
    student.eval()
    norm = Normalizer.fit(windows.X)
    d = tmp_path_factory.mktemp("bundle")
    bundle = Bundle(
        student=student,
        normalizer=norm,
        class_names=windows.class_names,
        window=wcfg,
        rate_hz=windows.rate_hz,
        data=DataConfig().to_dict(),
    )
    save_bundle(bundle, d)
    for bits in (8, 16):
        q = quantize_student(student, norm, windows.X[:256], bits, class_names=windows.class_names)
        q.save(d / "quantized" / f"w{bits}.json")
    return d, windows
