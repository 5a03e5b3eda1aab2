"""The NumPy float student computes what the PyTorch student computes, and the float engine
on the CPU runs it without importing PyTorch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from dataclasses import asdict

import numpy as np
import pytest
import torch

from ethoedge.models import GRUStudent, StudentConfig, device
from ethoedge.models.student_numpy import NumpyStudent, static_filter_matrix


def _pair(cfg: StudentConfig, n_classes: int = 4, seed: int = 0, batch_size: int = 512):
    torch.manual_seed(seed)
    model = GRUStudent(n_classes, cfg).eval()
    with torch.no_grad():  # larger weights than the default init: gates away from 1/2
        for p in model.parameters():
            p.mul_(2.5)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    return model, NumpyStudent(asdict(cfg), state, batch_size=batch_size)


@pytest.mark.parametrize("stage", ["raw", "dynamic", "static_dynamic"])
@pytest.mark.parametrize("hidden,mlp", [(8, None), (13, 5), (32, None)])
def test_logits_equal_pytorch_up_to_float32_rounding(stage, hidden, mlp):
    model, student = _pair(StudentConfig(hidden=hidden, mlp_hidden=mlp, input=stage), 4,
                           batch_size=97)  # fmt: skip
    rng = np.random.default_rng(hidden)
    X = rng.normal(scale=0.8, size=(300, 3, 50)).astype(np.float32)
    X[:, 2] += 1.0
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).numpy()
    got = student(X)
    assert got.shape == ref.shape == (300, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-5)
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert (got.argmax(1)[clear] == ref.argmax(1)[clear]).all()
    # Batches are independent: any split gives the same rows.
    np.testing.assert_array_equal(student(X[-50:]), got[-50:])


@pytest.mark.parametrize("hidden", [13, 32])
def test_a_windows_logits_do_not_depend_on_its_batch(hidden):
    # Classify splits windows into batches by file chunk and worker; every split must give
    # the same logits bit for bit (edge blocks of a matrix product round differently).
    _, student = _pair(StudentConfig(hidden=hidden, input="static_dynamic"), batch_size=512)
    X = np.random.default_rng(3).normal(size=(700, 3, 50)).astype(np.float32)
    ref = student(X)
    for size in (1, 7, 65, 100, 333, 1024):
        student.batch_size = size
        np.testing.assert_array_equal(student(X), ref, err_msg=f"batch size {size}")
    np.testing.assert_array_equal(student(X[123:130]), ref[123:130])


def test_empty_and_misshaped_input():
    _, student = _pair(StudentConfig(hidden=4))
    assert student(np.zeros((0, 3, 50), np.float32)).shape == (0, 4)
    with pytest.raises(ValueError, match=r"\(n, 3, L\)"):
        student(np.zeros((5, 6, 50), np.float32))


def test_static_filter_matrix_is_the_recursion():
    a, L = 0.875, 40
    x = np.random.default_rng(1).normal(size=L)
    s = np.empty(L)
    s[0] = x[0]
    for t in range(1, L):
        s[t] = a * s[t - 1] + (1 - a) * x[t]
    np.testing.assert_allclose(static_filter_matrix(L, a) @ x, s, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="static_alpha"):
        static_filter_matrix(L, 1.0)


def _fake_torch(monkeypatch, tmp_path, version_py: str | None):
    pkg = tmp_path / "torch"
    pkg.mkdir(parents=True)
    if version_py is not None:
        (pkg / "version.py").write_text(textwrap.dedent(version_py))
    spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(device.importlib.util, "find_spec", lambda name: spec)
    device.torch_gpu_build.cache_clear()


def test_gpu_build_is_read_from_the_version_file(monkeypatch, tmp_path):
    try:
        _fake_torch(monkeypatch, tmp_path / "cpu", "cuda: Optional[str] = None\nhip = None\n")
        assert device.torch_gpu_build() is False
        _fake_torch(monkeypatch, tmp_path / "cuda", "cuda: Optional[str] = '12.4'\nhip = None\n")
        assert device.torch_gpu_build() is True
        _fake_torch(monkeypatch, tmp_path / "rocm", "cuda = None\nhip: Optional[str] = '6.1'\n")
        assert device.torch_gpu_build() is True
        _fake_torch(monkeypatch, tmp_path / "none", None)  # unreadable: ask PyTorch
        assert device.torch_gpu_build() is True
    finally:
        device.torch_gpu_build.cache_clear()


CLASSIFY_WITHOUT_TORCH = """
import os, sys
os.environ["OMP_NUM_THREADS"] = "2"
import numpy as np, pandas as pd
from ethoedge.data import DataConfig
from ethoedge.experiment import classify
from ethoedge.models.device import cpu_threads, resolve_device
t = 1_717_200_000.0 + np.arange(3000) / 10.0
acc = np.random.default_rng(0).normal(scale=0.2, size=(3000, 3)) + [0, 0, 1]
pd.DataFrame({"timestamp": t, "ax": acc[:, 0], "ay": acc[:, 1], "az": acc[:, 2]}).to_csv(
    sys.argv[2], index=False)
assert cpu_threads() == 2
res = classify(sys.argv[1], DataConfig(path=sys.argv[2]), sys.argv[3], device="auto",
               plots=False)
assert res.n_windows > 100, res.n_windows
assert resolve_device("auto") == "cpu"
assert "torch" not in sys.modules, "the float engine on the CPU imported PyTorch"
"""


NO_GPU_NO_TORCH = """
import sys
import ethoedge.models.device as d
d.torch_gpu_build = lambda: True  # a CUDA build of PyTorch, as PyPI's Linux wheel
d.gpu_device_files = lambda: False  # on a machine without a GPU driver
assert d.resolve_device("auto") == "cpu"
assert "torch" not in sys.modules, "PyTorch imported to find no GPU"
"""


def test_auto_device_without_gpu_driver_does_not_import_pytorch():
    subprocess.run([sys.executable, "-c", NO_GPU_NO_TORCH], check=True, timeout=60)


def test_single_batches_use_the_engines_blas_threads(monkeypatch):
    from threadpoolctl import threadpool_info

    from ethoedge.data import Normalizer
    from ethoedge.inference import Classifier

    _, student = _pair(StudentConfig(hidden=8))
    seen = []
    call = NumpyStudent.__call__

    def spy(self, Xn):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return call(self, Xn)

    monkeypatch.setattr(NumpyStudent, "__call__", spy)
    clf = Classifier(student, Normalizer((0.0, 0.0, 1.0), (1.0, 1.0, 1.0)), list("abcd"),
                     threads=1)  # fmt: skip
    clf.decision_function(np.zeros((10, 3, 20), np.float32))  # one batch
    clf.decision_function(np.zeros((2000, 3, 20), np.float32))  # several, one thread
    assert seen and set(seen) == {1}


@pytest.mark.skipif(device.torch_gpu_build() and device.gpu_device_files(),
                    reason="PyTorch may see a GPU here: it is asked")  # fmt: skip
def test_classify_on_the_cpu_does_not_import_pytorch(tmp_path):
    from ethoedge.bundle import Bundle, save_bundle
    from ethoedge.data import Normalizer, WindowConfig

    torch.manual_seed(0)
    b = tmp_path / "bundle"
    save_bundle(Bundle(GRUStudent(3, StudentConfig(hidden=8, input="dynamic")),
                       Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3)), ("a", "b", "c"),
                       WindowConfig(), 10.0), b)  # fmt: skip
    subprocess.run([sys.executable, "-c", CLASSIFY_WITHOUT_TORCH, str(b),
                    str(tmp_path / "rec.csv"), str(tmp_path / "out")],
                   check=True, timeout=120)  # fmt: skip
    assert (tmp_path / "out" / "windows.csv").is_file()
