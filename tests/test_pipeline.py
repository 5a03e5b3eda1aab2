"""End to end: tiny runs on generated and bundled data, bundle round trip, classify, bad configs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from ethoedge.bundle import load_bundle, save_bundle
from ethoedge.cli import main
from ethoedge.config import RunConfig, load_yaml, preset, save_yaml
from ethoedge.data import DataConfig, WindowConfig
from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.pipeline import classify, run, run_windows
from ethoedge.train import KDConfig
from kdhelpers import separable_windows, tiny_config

torch.set_num_threads(1)
FAST3 = replace(tiny_config().student_train, epochs=3)


@pytest.fixture(scope="module")
def separable_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sep")
    w = separable_windows()
    cfg = tiny_config(student_sizes=(3,), teacher_train=FAST3, student_train=FAST3)
    return out, run_windows(w, cfg, out, dataset_name="separable", progress=False), w


def test_tiny_run_beats_chance_and_writes_everything(separable_run):
    out, res, _ = separable_run
    models = res["models"]
    assert set(models) == {"teacher", "student", "student_kd", "student_h3", "student_kd_h3"}
    for name in ("teacher", "student", "student_kd"):
        e = models[name]
        for key in ("mcc", "mcc_std", "macro_f1", "accuracy", "params", "macs", "bytes"):
            assert key in e, (name, key)
        assert e["mcc"] > 0.5, (name, e["mcc"])  # chance is 0
    assert res["protocol"] == "holdout" and res["seeds"] == [0] and len(res["folds"]) == 1
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["models"]["student_kd"]["mcc"] == pytest.approx(models["student_kd"]["mcc"])
    for f in ("report.md", "config.yaml", "per_class_student_kd.csv", "confusion_teacher.png",
              "confusion_teacher.csv", "mcc_per_fold.png", "predictions_cv.csv",
              "model/bundle.json", "model/student.npz", "model/teacher.npz"):  # fmt: skip
        assert (out / f).is_file(), f
    assert "| student_kd |" in (out / "report.md").read_text()
    assert load_yaml(out / "config.yaml").student_sizes == (3,)
    assert not [p for p in out.rglob(".*") if p.name.endswith(".tmp")]  # atomic writes only
    # Held-out predictions: every test window predicted once per model and seed.
    cv = pd.read_csv(out / "predictions_cv.csv")
    assert len(cv[cv.model == "student_kd"]) == on_disk["models"]["student_kd"]["per_fold"][0]["n"]


def test_bundle_save_load_identical_outputs(separable_run, tmp_path):
    out, _, w = separable_run
    b = load_bundle(out / "model")
    assert b.class_names == w.class_names and b.n_samples == w.n_samples
    x = torch.from_numpy(b.normalizer.apply(w.X[:16]))
    with torch.no_grad():
        s1, t1 = b.student(x), b.teacher(x)
    (tmp_path / "b" / "quantized").mkdir(parents=True)
    save_bundle(b, tmp_path / "b")
    b2 = load_bundle(tmp_path / "b")
    with torch.no_grad():
        assert torch.equal(b2.student(x), s1) and torch.equal(b2.teacher(x), t1)
    assert b2.normalizer == b.normalizer and b2.window == b.window and b2.meta == b.meta


def test_resumed_run_reuses_checkpoints(separable_run, tmp_path):
    out, res, w = separable_run
    cfg = tiny_config(student_sizes=(3,), teacher_train=FAST3, student_train=FAST3)
    again = run_windows(w, cfg, out, dataset_name="separable",
                        progress=False)  # fmt: skip
    assert again["models"]["student_kd"]["mcc"] == res["models"]["student_kd"]["mcc"]
    assert all(r["epochs_run"] == 3 for r in again["models"]["student"]["per_fold"])


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """``ethoedge run --config`` on the bundled cattle subset with tiny models."""
    d = tmp_path_factory.mktemp("bundled")
    cfg = tiny_config(train_stride=8)
    save_yaml(cfg, d / "tiny.yaml")
    assert main(["run", "--config", str(d / "tiny.yaml"), "--out", str(d / "run"), "--quiet"]) == 0
    return d / "run"


def test_classify_reproduces_the_runs_predictions(bundled_run, tmp_path, capsys):
    res = classify(bundled_run / "model", DataConfig(), tmp_path / "pred.csv")
    ref = pd.read_csv(bundled_run / "model_predictions.csv", dtype={"animal": str, "segment": str})
    got = res.predictions.astype({"animal": str, "segment": str})
    merged = ref.merge(got, on=["animal", "segment", "start"], suffixes=("_run", "_cls"))
    assert len(merged) == len(ref)  # every window of the run is classified again
    assert (merged.label_run == merged.label_cls).all()
    np.testing.assert_allclose(merged.score_grazing_run, merged.score_grazing_cls, atol=2e-6)
    assert set(res.budget.columns) == {"grazing", "resting", "standing", "walking"}
    assert res.metrics is not None and -1 <= res.metrics["mcc"] <= 1
    # The CLI prints the time budget and the metrics.
    assert main(["classify", str(bundled_run / "model"), str(_default_path()), "--out",
                 str(tmp_path / "cli.csv")]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "time budget" in text and "MCC" in text and (tmp_path / "cli.csv").is_file()


def _default_path():
    from ethoedge.data import default_data_path

    return default_data_path()


# ----------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: KDConfig(alpha=1.5), "alpha must be in"),
        (lambda: KDConfig(alpha=-0.1), "alpha must be in"),
        (lambda: KDConfig(temperature=0.0), "temperature must be > 0"),
        (lambda: RunConfig(seeds=()), "seeds is empty"),
        (lambda: RunConfig(protocol="bootstrap"), "protocol must be"),
        (lambda: preset("huge"), "unknown preset"),
        (lambda: RunConfig.from_dict({"kd": {"alpha": 2}}), "alpha"),
        (lambda: RunConfig.from_dict({"kd": {"alhpa": 0.5}}), "unknown keys"),
    ],
)
def test_bad_config_values_fail_clearly(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_configs_against_the_data_fail_clearly(tmp_path):
    w = separable_windows(animals="abc")
    with pytest.raises(ConfigError, match="needs at least 5 animals; the data have 3"):
        run_windows(w, tiny_config(protocol="kfold", k=5), tmp_path / "a", progress=False)
    # Unknown class, window longer than every recording: rejected before any training.
    bad_class = tiny_config(data=DataConfig(classes=("grazing", "flying")))
    with pytest.raises(EthoedgeError, match="flying"):
        run(bad_class, tmp_path / "b", progress=False)
    too_long = tiny_config(window=WindowConfig(length_s=3600.0))
    with pytest.raises(EthoedgeError, match="window"):
        run(too_long, tmp_path / "c", progress=False)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("kd:\n  temperature: -1\n")
    assert main(["run", "--config", str(bad_yaml), "--out", str(tmp_path / "d")]) == 2
    assert not (tmp_path / "d" / "results.json").exists()


def test_yaml_round_trip(tmp_path):
    cfg = replace(preset("full"), data=DataConfig(format="cattle_ufro", label_map={"a": None}))
    assert load_yaml(save_yaml(cfg, tmp_path / "c.yaml")) == cfg
