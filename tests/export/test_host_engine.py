"""The ``c`` engine: the exported C as a host shared library, bit-identical to the integer
reference on every bundled window, on any number of threads, cached, and through the CLI."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethoedge.cli import main
from ethoedge.data import DataConfig, default_data_path
from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.experiment import classify
from ethoedge.export import ExportConfig, host_engine
from ethoedge.export.emit import kernel_ops
from ethoedge.export.host_engine import CACHE_ENV, host_library
from ethoedge.inference import Classifier
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import quantize_input, reference_logits

from .helpers import make_qmodel, random_inputs, requires_gcc

pytestmark = requires_gcc


@pytest.fixture(scope="module")
def lib_cache(tmp_path_factory):
    """A private library cache for this module (also for the CLI, through the environment)."""
    d = tmp_path_factory.mktemp("host_c_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(d))
        yield d


@pytest.fixture(scope="module")
def bundled(tiny_bundle, lib_cache):
    """(bundle dir, int16 input of every bundled window, the windows)."""
    d, windows = tiny_bundle
    return d, quantize_input(windows.X), windows


@pytest.mark.parametrize("bits", [8, 16])
def test_c_engine_equals_reference_on_every_bundled_window(bundled, bits):
    d, x, _ = bundled
    q = QuantizedStudent.load(d / "quantized" / f"w{bits}.json")
    lib = host_library(q, x.shape[2])
    got = lib.logits(x, threads=1)
    assert got.dtype == np.int64 and got.shape == (len(x), q.n_classes)
    assert np.array_equal(got, reference_logits(q, x))


@pytest.mark.parametrize("bits", [8, 16])
def test_threads_give_the_same_logits(bundled, bits):
    d, x, _ = bundled
    q = QuantizedStudent.load(d / "quantized" / f"w{bits}.json")
    lib = host_library(q, x.shape[2])
    one = lib.logits(x, threads=1)
    for threads in (2, 3, 7):  # uneven slices of 3,073 windows
        assert np.array_equal(lib.logits(x, threads=threads), one)
    assert np.array_equal(lib.logits(x[:5], threads=4), one[:5])  # fewer windows than threads
    assert lib.logits(x[:0], threads=2).shape == (0, q.n_classes)


@pytest.mark.parametrize("stage", ["raw", "static_dynamic", "dynamic"])
@pytest.mark.parametrize("bits", [8, 16])
def test_c_engine_extreme_inputs_and_odd_sizes(lib_cache, bits, stage):
    q = make_qmodel(bits, hidden=13, mlp_hidden=5, n_classes=4, n_samples=9, seed=bits,
                    input_stage=stage)  # fmt: skip
    x = random_inputs(200, 9, seed=1)
    assert np.array_equal(host_library(q, 9).logits(x, threads=3), reference_logits(q, x))


@pytest.mark.parametrize("stage", ["raw", "static_dynamic"])
def test_c_engine_on_the_pair_layout(lib_cache, stage):
    """A W=8 model whose layers take the pair layout (its input layer keeps the tiles): the
    engine reads each matrix through the op that multiplies it."""
    q = make_qmodel(8, hidden=16, mlp_hidden=8, n_classes=4, n_samples=9, seed=3,
                    input_stage=stage)  # fmt: skip
    assert kernel_ops(q, ExportConfig())[0] == "ethoedge_layer_s8_pairs"
    x = random_inputs(200, 9, seed=2)
    assert np.array_equal(host_library(q, 9).logits(x, threads=2), reference_logits(q, x))


def test_classifier_c_engine_scores_equal_int_engine(bundled):
    d, _, windows = bundled
    c = Classifier.from_bundle(d, "c", bits=8)
    i = Classifier.from_bundle(d, "int", bits=8)
    assert c.engine == "c" and i.engine == "int"
    X = windows.X[:500]
    assert np.array_equal(c.decision_function(X), i.decision_function(X))
    assert np.array_equal(c.predict_proba(X), i.predict_proba(X))
    pred, proba = c.predict_with_proba(X)
    assert np.array_equal(pred, i.predict(X)) and np.array_equal(proba, i.predict_proba(X))
    two = Classifier(c.model, engine="c", threads=2)
    assert np.array_equal(two.decision_function(X), c.decision_function(X))
    with pytest.raises(ConfigError, match="needs a quantized student"):
        Classifier(object(), engine="c")  # type: ignore[arg-type]


def test_library_is_cached_on_disk(lib_cache, monkeypatch):
    q = make_qmodel(8, hidden=6, n_samples=7, seed=11)
    first = host_library(q, 7)
    assert first.path.parent == lib_cache / "host_c" and first.path.is_file()
    mtime = first.path.stat().st_mtime_ns
    monkeypatch.setattr(host_engine, "_LOADED", {})  # as in a new process

    def no_compiler(cmd, **kw):
        raise AssertionError(f"compiled again: {cmd}")

    monkeypatch.setattr(host_engine.toolchain, "run_tool", no_compiler)
    again = host_library(q, 7)
    assert again.path == first.path and again.path.stat().st_mtime_ns == mtime
    x = random_inputs(8, 7)
    assert np.array_equal(again.logits(x), reference_logits(q, x))
    other = host_library(make_qmodel(8, hidden=6, n_samples=7, seed=11), 7)  # same integers
    assert other.path == first.path
    with pytest.raises(AssertionError, match="compiled again"):  # another window length
        host_library(q, 8)


def test_bad_inputs_and_unsupported_width(lib_cache):
    q = make_qmodel(16, hidden=4, n_samples=6, seed=2)
    lib = host_library(q, 6)
    with pytest.raises(ConfigError, match=r"\(n, 3, 6\)"):
        lib.logits(np.zeros((2, 3, 5), dtype=np.int16))
    with pytest.raises(ConfigError, match="int16"):
        lib.logits(np.zeros((2, 3, 6), dtype=np.int32))
    with pytest.raises(ConfigError, match="supported: 8, 16"):
        host_library(make_qmodel(12, hidden=4, n_samples=6), 6)


def test_classify_cli_engine_c_equals_int(bundled, tmp_path, capsys):
    d, x, _ = bundled
    data = str(default_data_path())
    for engine in ("c", "int"):
        args = ["classify", str(d), data, "--out", str(tmp_path / f"{engine}.csv")]
        assert main([*args, "--engine", engine, "--bits", "16", "--quiet"]) == 0
    assert "time budget" in capsys.readouterr().out
    c, i = pd.read_csv(tmp_path / "c.csv"), pd.read_csv(tmp_path / "int.csv")
    assert len(c) == len(x)
    pd.testing.assert_frame_equal(c, i)


def test_missing_gcc_is_one_clear_line(tiny_bundle, lib_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc on it
    q = make_qmodel(8, hidden=5, n_samples=5, seed=23)  # never built in this process
    with pytest.raises(EthoedgeError, match="gcc, which is not on PATH"):
        host_library(q, 5)
    res = classify(tiny_bundle[0], DataConfig(), tmp_path / "x.csv", engine="int", bits=8)
    assert len(res.predictions) > 0  # the int engine needs no compiler
    monkeypatch.setattr(host_engine, "_LOADED", {})  # nothing loaded yet, as in a new process
    capsys.readouterr()
    args = ["classify", str(tiny_bundle[0]), str(default_data_path()), "--out"]
    assert main([*args, str(tmp_path / "c.csv"), "--engine", "c", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "gcc, which is not on PATH" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("bits", [8, 16])
def test_batch_sizes_not_a_multiple_of_the_block(lib_cache, bits):
    q = make_qmodel(bits, hidden=11, mlp_hidden=6, n_classes=3, n_samples=8, seed=5 + bits,
                    input_stage="static_dynamic")  # fmt: skip
    lib = host_library(q, 8)
    block = host_engine.BATCH_BLOCK
    header = (host_engine.KERNELS_DIR / "ethoedge_batch.h").read_text()
    assert f"#define ETHOEDGE_BATCH_BLOCK {block} " in header
    x = random_inputs(3 * block + 5, 8, seed=2)
    want = reference_logits(q, x)
    for n in (1, block - 1, block, block + 1, 2 * block + 3, len(x)):
        assert np.array_equal(lib.logits(x[:n], threads=1), want[:n]), n
    # a block's last windows do not depend on the windows beside them
    edge = slice(block - 1, block + 2)
    assert np.array_equal(lib.logits(x[edge], threads=1), want[edge])


def _simd_models():
    """W=8 and W=16 test models whose gate accumulators (of W_ih a and of W_hh h) need a left
    shift, none, or a right shift (the AVX2 update's cases), over odd and block-sized
    shapes."""
    from dataclasses import replace

    out = []
    for bits, hidden, stage, a_frac, h_frac in [
        (8, 13, "static_dynamic", 1, 7), (8, 32, "dynamic", 4, 7), (8, 16, "raw", 6, 7),
        (8, 5, "dynamic", 4, 7), (8, 9, "dynamic", 5, 3), (8, 12, "raw", 3, 4),
        (8, 7, "static_dynamic", 5, 5), (8, 10, "raw", 4, 4),
        (16, 13, "static_dynamic", 13, 15), (16, 32, "raw", 12, 15), (16, 6, "dynamic", 14, 15),
    ]:  # fmt: skip
        q = make_qmodel(bits, hidden=hidden, mlp_hidden=7, n_classes=4, n_samples=11,
                        seed=hidden + bits, input_stage=stage)  # fmt: skip
        out.append(replace(q, act_frac={**q.act_frac, "a": a_frac, "h": h_frac}))
    return out


def test_avx2_kernels_equal_the_plain_loops_and_the_reference(lib_cache):
    from ethoedge.export.emit import fraction_bits

    x = random_inputs(3 * host_engine.BATCH_BLOCK + 7, 11, seed=4)
    cpuinfo = Path("/proc/cpuinfo")
    avx2 = platform.machine() == "x86_64" and cpuinfo.is_file() and " avx2" in cpuinfo.read_text()
    shifts = {"gx": set(), "gh": set()}
    for q in _simd_models():
        fr = fraction_bits(q)
        if q.word_bits == 8:
            shifts["gx"].add(int(np.sign(fr["ACC_X"] - fr["PRE"])))
            shifts["gh"].add(int(np.sign(fr["ACC_H"] - fr["PRE"])))
        lib = host_library(q, 11)
        want = reference_logits(q, x)
        try:
            assert lib.set_simd(False) is False
            assert np.array_equal(lib.logits(x, threads=1), want)
        finally:
            lib.set_simd(True)
        if avx2:  # this model's logits below come from both AVX2 kernels
            assert lib.simd_matvec and lib.simd_update, (q.word_bits, q.hidden)
        assert np.array_equal(lib.logits(x, threads=2), want)
    # every case of the gate-accumulator shifts was compared
    assert shifts == {"gx": {-1, 0, 1}, "gh": {-1, 0, 1}}
