"""Word-length sweep (PTQ/QAT), its plot, QAT pieces and the ``ethoedge quantize`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ethoedge.bundle import Bundle, save_bundle
from ethoedge.cli import main
from ethoedge.data import DataConfig, WindowConfig
from ethoedge.data.loaders import default_data_path
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import quantize_input, reference_logits
from ethoedge.quantize.rewrite import FakeQuantStudent, fake_quant
from ethoedge.quantize.sweep import evaluate_word_lengths, plot_mcc_vs_bits


@pytest.fixture(scope="module")
def small(cattle):
    """A small random subset: 96 training and 120 test windows."""
    idx = np.random.default_rng(0).permutation(len(cattle))
    return cattle.subset(idx[:96]), cattle.subset(idx[96:216])


def test_sweep_ptq_and_qat(trained, small, tmp_path):
    student, norm = trained
    train, test = small
    cfg = QuantConfig(word_bits=(6,), qat="auto", qat_threshold=-1.0, qat_epochs=1,
                      calib_windows=96)  # fmt: skip
    rows = evaluate_word_lengths(
        student, norm, train.X, test.X, test.y, cfg, test.class_names,
        train_y=train.y, val=(train.X[:32], train.y[:32]),
    )  # fmt: skip
    assert [r["word_bits"] for r in rows] == [6]
    for r in rows:
        assert {"mcc", "macro_f1", "accuracy", "per_class", "confusion"} <= set(r)
        assert r["qat"] is not None and r["method"] in ("ptq", "qat")  # threshold -1: QAT ran
        assert set(r["frac_bits"]) >= {"inp.weight", "gru.weight_hh", "a", "h", "logits"}
        assert -1.0 <= r["ptq"]["mcc"] <= 1.0 and 0.0 <= r["agreement"] <= 1.0
        q = r["qmodel"]
        pred = reference_logits(q, quantize_input(test.X)).argmax(1)
        assert r["accuracy"] == pytest.approx(float(np.mean(pred == test.y)))
    assert rows[0]["bytes"] == sum(t.values.size for t in rows[0]["qmodel"].weights.values())
    png = plot_mcc_vs_bits(rows, rows[0]["float_mcc"], tmp_path / "mcc.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sweep_without_qat_when_ptq_is_good(trained, small):
    student, norm = trained
    train, test = small
    cfg = QuantConfig(word_bits=(16,), qat="auto", calib_windows=100)
    (row,) = evaluate_word_lengths(
        student, norm, train.X, test.X, test.y, cfg, test.class_names, train_y=train.y
    )
    assert row["qat"] is None and row["method"] == "ptq"
    assert row["train_mcc_loss"] <= cfg.qat_threshold  # the rule's figure, on the training set
    assert abs(row["mcc"] - row["float_mcc"]) <= 0.02 and row["agreement"] >= 0.97


def test_fake_quant_rounds_saturates_and_passes_gradients():
    x = torch.tensor([0.3, -0.3, 0.126, 5.0, -5.0], requires_grad=True)
    y = fake_quant(x, 3, 6)  # step 1/8, range [-4, 3.875]
    assert y.tolist() == [0.25, -0.25, 0.125, 3.875, -4.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # zero gradient where saturated


def test_fake_quant_student_tracks_the_integer_model(trained, cattle):
    """The QAT forward pass is close to the integer model it simulates (W = 16)."""
    from ethoedge.quantize.api import quantize_student
    from ethoedge.quantize.calibrate import fold_normalizer

    student, norm = trained
    X = cattle.X[:64]
    q = quantize_student(student, norm, cattle.X[:512], 16, QuantConfig())
    fq = FakeQuantStudent(fold_normalizer(student, norm), q.act_frac, 16, QuantConfig())
    with torch.no_grad():
        sim = fq(torch.from_numpy(X)).numpy()
    ints = reference_logits(q, quantize_input(X)) * 2.0 ** -q.frac("logits")
    assert np.max(np.abs(sim - ints)) < 0.02


@pytest.fixture(scope="module")
def bundle_dir(trained, tmp_path_factory):
    student, norm = trained
    d = tmp_path_factory.mktemp("b") / "bundle"
    b = Bundle(student=student, normalizer=norm,
               class_names=("grazing", "resting", "standing", "walking"),
               window=WindowConfig(), rate_hz=10.0,
               data=DataConfig(format="cattle_ufro").to_dict())  # fmt: skip
    save_bundle(b, d)
    return d


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    df = pd.read_csv(default_data_path())
    keep = df[df["animal"] == df["animal"].iloc[0]].iloc[:4000]
    path = tmp_path_factory.mktemp("d") / "small.csv"
    keep.to_csv(path, index=False)
    return path


def test_cli_quantize_writes_models_and_prints_the_table(bundle_dir, small_csv, capsys):
    rc = main(["quantize", str(bundle_dir), "--bits", "16,8", "--data", str(small_csv),
               "--calib-windows", "200"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "fraction bits per tensor" in out and "gru.weight_hh" in out
    for w in (16, 8):
        q = QuantizedStudent.load(bundle_dir / "quantized" / f"w{w}.json")
        assert q.word_bits == w and q.meta["method"] == "ptq" and q.meta["windows"] > 0
    cfg = json.loads((bundle_dir / "quantized" / "quant_config.json").read_text())
    assert QuantConfig.from_dict(cfg).word_bits == (16, 8)


def test_cli_quantize_user_errors(bundle_dir, small_csv, tmp_path, capsys):
    assert main(["quantize", str(bundle_dir), "--bits", "8,32", "--data", str(small_csv)]) == 2
    assert "--bits: word length must be an integer in 4..16, got 32" in capsys.readouterr().err
    assert not (bundle_dir / "quantized" / "w32.json").exists()
    assert main(["quantize", str(bundle_dir), "--bits", "8,x"]) == 2
    assert main(["quantize", str(tmp_path / "nope")]) == 2
    assert "bundle" in capsys.readouterr().err


def test_cli_quantize_broken_student_or_unwritable_models_is_one_line(
    bundle_dir, small_csv, tmp_path, capsys
):
    import shutil

    b = tmp_path / "bundle"
    shutil.copytree(bundle_dir, b)
    shutil.rmtree(b / "quantized", ignore_errors=True)
    student = (b / "student.npz").read_bytes()
    args = ["quantize", str(b), "--bits", "16,8", "--data", str(small_csv), "-q",
            "--calib-windows", "64"]  # fmt: skip

    def one_line() -> str:
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1, err
        return " ".join(err.split())

    (b / "student.npz").write_bytes(b"not an archive")
    assert main(args) == 2
    assert f"{b / 'student.npz'}: not a readable student" in one_line()
    (b / "student.npz").unlink()
    assert main(args) == 2
    assert f"{b / 'student.npz'}: the bundle's student is missing" in one_line()
    (b / "student.npz").write_bytes(student)
    (b / "quantized" / "w8.json").mkdir(parents=True)  # a folder where a model goes
    assert main(args) == 2
    why = f"cannot write here: {b / 'quantized' / 'w8.json'} is a folder, not a file"
    assert f"{b / 'quantized'}: {why}" in one_line()
    assert [p.name for p in (b / "quantized").iterdir()] == ["w8.json"]  # not even w16.json
    shutil.rmtree(b / "quantized")
    (b / "quantized").write_text("x")
    assert main(args) == 2
    assert f"{b / 'quantized'}: cannot write here: it is a file; give a folder" in one_line()


def test_parse_bits_takes_each_word_length_once():
    from ethoedge.cli.quant_cmds import parse_bits

    assert parse_bits("8, 16,8") == (8, 16)
