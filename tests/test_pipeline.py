"""End to end: tiny runs on generated and bundled data, bundle round trip, classify, bad configs."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ethoedge.bundle import load_bundle, save_bundle
from ethoedge.cli import main
from ethoedge.config import RunConfig, load_yaml, preset, save_yaml
from ethoedge.data import DataConfig, WindowConfig
from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.experiment import VerificationError, classify, run, run_windows
from ethoedge.experiment.deploy import check_verified
from ethoedge.export import toolchain
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import predict
from ethoedge.train import KDConfig
from kdhelpers import separable_windows, tiny_config

torch.set_num_threads(1)
FAST3 = replace(tiny_config().student_train, epochs=3)
# Quantization and export as in a real run, with few windows on the emulated MCUs.
QX = dict(quant=QuantConfig(word_bits=(16, 8)), qemu_windows=20)
COST_KEYS = ("flash_bytes", "ram_bytes", "instructions", "instructions_per_mac", "est_time_ms")


@pytest.fixture(scope="module")
def separable_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sep")
    w = separable_windows()
    cfg = tiny_config(student_sizes=(3,), teacher_train=FAST3, student_train=FAST3, **QX)
    return out, run_windows(w, cfg, out, dataset_name="separable", progress=False), w


def test_tiny_run_beats_chance_and_writes_everything(separable_run):
    out, res, _ = separable_run
    models = res["models"]
    quantized = {f"{m}_w{b}" for m in ("student", "student_kd") for b in (16, 8)}
    assert set(models) == {"teacher", "baseline", "student", "student_kd", "student_h3",
                           "student_kd_h3", *quantized}  # fmt: skip
    for name in ("teacher", "baseline", "student", "student_kd"):
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
    cfg = tiny_config(student_sizes=(3,), teacher_train=FAST3, student_train=FAST3, **QX)
    again = run_windows(w, cfg, out, dataset_name="separable",
                        progress=False)  # fmt: skip
    assert again["models"]["student_kd"]["mcc"] == res["models"]["student_kd"]["mcc"]
    assert all(r["epochs_run"] == 3 for r in again["models"]["student"]["per_fold"])


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """``ethoedge run --config`` on the bundled cattle subset with tiny models."""
    d = tmp_path_factory.mktemp("bundled")
    cfg = tiny_config(train_stride=8, **QX)
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


def test_reports_set_every_model_beside_the_baseline(bundled_run):
    """The report of a run on the bundled data (as the quick preset's) has the feature
    baseline's row and every model's MCC difference to it."""
    assert preset("quick").baseline is not None and preset("full").baseline is not None
    res = json.loads((bundled_run / "results.json").read_text())
    base = res["models"]["baseline"]
    assert base["macs"] is None and base["params"] > 0 and len(base["per_fold"]) == 1
    report = (bundled_run / "report.md").read_text()
    assert "| baseline | " in report
    line = next(ln for ln in report.splitlines() if ln.startswith("**Against the baseline**"))
    d = res["models"]["teacher"]["mcc"] - base["mcc"]
    assert f"teacher {d:+.3f}" in line and "student_kd " in line


def test_quantized_entries_report_and_verified_c(separable_run):
    out, res, w = separable_run
    models = res["models"]
    for name in ("student_w16", "student_w8", "student_kd_w16", "student_kd_w8"):
        e = models[name]
        for key in ("mcc", "mcc_std", "macro_f1", "accuracy", "params", "macs", "bytes"):
            assert key in e, (name, key)
        bits = int(name.rsplit("_w", 1)[1])
        assert e["word_bits"] == bits and e["params"] == models["student"]["params"]
        assert e["bytes"] == e["params"] * (1 if bits == 8 else 2)  # QuantizedStudent.n_bytes
        assert e["per_fold"][0]["n"] == models["student"]["per_fold"][0]["n"]
        assert set(e["per_fold"][0]["frac_bits"]) >= {"inp.weight", "h", "logits"}
    dep = res["deployment"]
    assert dep["verified"] is True and set(dep["widths"]) == {"w8", "w16"}
    for wkey, c in dep["widths"].items():
        host = c["verify"]["host"]
        assert host["identical"] == host["windows"] == len(w), wkey  # every window, bit-exact
        assert (out / "c" / wkey / "ethoedge_model.c").is_file()
        assert (out / "model" / "quantized" / f"{wkey}.json").is_file()
    if toolchain.have_arm():
        for b in (8, 16):
            e = models[f"student_kd_w{b}"]
            for key in COST_KEYS:
                assert key in e, (b, key)
            assert e["flash_bytes"] > 0 and e["instructions"] > 0 and e["verified"] is True
            m4 = dep["widths"][f"w{b}"]["verify"]["cortex-m4"]
            assert m4["identical"] == m4["windows"] == 20
    report = (out / "report.md").read_text()
    for heading in ("## Dynamic fixed-point quantization", "## Fraction bits of the deployment",
                    "## On-device cost and verification"):  # fmt: skip
        assert heading in report
    assert f"W=8 host: {len(w)}/{len(w)} windows identical" in report
    assert "| student_kd_w8 | 8 |" in report and "mcc_vs_bits_student_kd.png" in report
    assert (out / "mcc_vs_bits_student_kd.png").stat().st_size > 1000
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["models"]["student_kd_w8"]["word_bits"] == 8
    assert "qmodel" not in json.dumps(on_disk)


def test_classify_int_engine_matches_reference_and_run(bundled_run, tmp_path, capsys):
    from ethoedge.inference import windows_for_bundle

    bundle = bundled_run / "model"
    q = QuantizedStudent.load(bundle / "quantized" / "w8.json")
    ref = pd.read_csv(bundled_run / "model_predictions_w8.csv",
                      dtype={"animal": str, "segment": str})  # fmt: skip
    win = windows_for_bundle(bundle, None)  # the run's windows, in the run's order
    labels = np.asarray(win.class_names)[predict(q, win.X)]
    assert (labels == ref.label.to_numpy()).all()
    res = classify(bundle, DataConfig(), tmp_path / "int.csv", engine="int", bits=8)
    got = res.predictions.astype({"animal": str, "segment": str})
    merged = ref.merge(got, on=["animal", "segment", "start"], suffixes=("_run", "_cls"))
    assert len(merged) == len(ref) and (merged.label_run == merged.label_cls).all()
    assert main(["classify", str(bundle), str(_default_path()), "--out", str(tmp_path / "c.csv"),
                 "--engine", "int", "--bits", "16"]) == 0  # fmt: skip
    assert "time budget" in capsys.readouterr().out
    # Not quantized at that width: a clear message that says what to run.
    with pytest.raises(ConfigError, match="ethoedge quantize"):
        classify(bundle, DataConfig(), tmp_path / "x.csv", engine="int", bits=12)
    with pytest.raises(ConfigError, match="engine must be"):
        classify(bundle, DataConfig(), tmp_path / "x.csv", engine="fpga")
    assert main(["classify", str(bundle), str(_default_path()), "--out", str(tmp_path / "d.csv"),
                 "--engine", "int", "--bits", "12"]) == 2  # fmt: skip
    assert "ethoedge quantize" in capsys.readouterr().err


def test_verification_mismatch_fails_clearly():
    ok = {"deployment": {"verified": True, "widths": {}}}
    check_verified(ok, "run")
    check_verified({}, "run")
    bad = {
        "deployment": {
            "verified": False,
            "widths": {
                "w8": {"verify": {"host": {"windows": 10, "identical": 9, "first_diff": 3}}}
            },
        }
    }
    with pytest.raises(VerificationError, match=r"w8 host: 9/10 windows identical.*window 3"):
        check_verified(bad, "run")


def _spy_fit(monkeypatch) -> dict[str, tuple[int, object]]:
    """Record, per training job (work-folder checkpoint stem), the number of training windows
    and the validation windows that :func:`ethoedge.train.fit` was given."""
    import ethoedge.experiment.jobs as jobs

    seen: dict[str, tuple[int, object]] = {}
    orig = jobs.fit

    def spy(model, X, y, norm, cfg, *, checkpoint, X_val=None, **kw):
        seen[checkpoint.stem] = (len(X), X_val)
        return orig(model, X, y, norm, cfg, checkpoint=checkpoint, X_val=X_val, **kw)

    monkeypatch.setattr(jobs, "fit", spy)
    return seen


def test_teacher_stride_thins_only_the_teachers_windows(tmp_path, monkeypatch):
    from ethoedge.distill import load_soft_labels

    seen = _spy_fit(monkeypatch)
    cfg = tiny_config(teacher_stride=3, deploy=False, quantize=False,
                      student_train=replace(FAST3, epochs=1),
                      teacher_train=replace(FAST3, epochs=1))  # fmt: skip
    run_windows(separable_windows(), cfg, tmp_path, dataset_name="sep", progress=False)
    (fold,) = {stem.split("_")[0] for stem in seen}
    n_student = seen[f"{fold}_student_s0"][0]
    assert seen[f"{fold}_teacher"][0] == -(-n_student // 3)  # every 3rd training window
    assert seen[f"{fold}_student_kd_s0"][0] == n_student
    soft = load_soft_labels(tmp_path / "work" / f"{fold}_soft_labels.npz")
    assert len(soft.index) == n_student  # soft labels cover every student window
    assert "(teacher 3)" in (tmp_path / "report.md").read_text()


def test_no_validation_animal_trains_on_every_training_animal(tmp_path, monkeypatch):
    """val_animals=0: no animal is held out for choosing the epoch; every model trains on all
    non-test windows for its fixed budget and keeps the last epoch."""
    seen = _spy_fit(monkeypatch)
    w = separable_windows(n_per_animal=30, animals="abc")
    cfg = tiny_config(protocol="loao", val_animals=0, deploy=False, quantize=False,
                      student_train=replace(FAST3, epochs=2),
                      teacher_train=replace(FAST3, epochs=2))  # fmt: skip
    res = run_windows(w, cfg, tmp_path, dataset_name="sep", progress=False)
    assert len(seen) == 3 * 3  # 3 folds x (teacher, student, student_kd)
    for stem, (n, va) in seen.items():
        assert n == 60 and va is None, stem  # the two other animals, all of their windows
    for name, entry in res["models"].items():
        if name != "baseline":  # no epochs
            assert {(f["best_epoch"], f["epochs_run"]) for f in entry["per_fold"]} == {(2, 2)}
    assert "last epoch of a fixed budget" in (tmp_path / "report.md").read_text()


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
        (lambda: RunConfig(export_bits=(12,)), "export_bits: C export supports"),
        (lambda: RunConfig(export_bits=(8, 8)), "duplicates"),
        (lambda: RunConfig(qemu="maybe"), "qemu must be"),
        (lambda: RunConfig(qemu_windows=0), "qemu_windows must be"),
        (lambda: RunConfig(teacher_stride=-1), "teacher_stride must be"),
        (lambda: RunConfig(val_animals=-1), "val_animals must be >= 0"),
        (lambda: RunConfig.from_dict({"qemu": "sometimes"}), "qemu must be"),
        (lambda: RunConfig.from_dict({"quant": {"word_bits": [3]}}), "word length"),
        (lambda: RunConfig.from_dict({"quant": {"word_bits": ["x"]}}), "quant"),
        (lambda: RunConfig.from_dict({"quant": {"qatt": True}}), "unknown option"),
        (lambda: RunConfig.from_dict({"quant": {"qat": "sometimes"}}), "qat must be"),
        (lambda: RunConfig.from_dict({"quant": 8}), "quant must be a mapping"),
    ],
)
def test_bad_config_values_fail_clearly(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_configs_against_the_data_fail_clearly(tmp_path):
    w = separable_windows(animals="abc")
    with pytest.raises(ConfigError, match="needs at least 5 animals; the data have 3"):
        run_windows(w, tiny_config(protocol="kfold", k=5), tmp_path / "a", progress=False)
    # Soft labels cross-fitted within a fold's training animals need 2 of them: with 2
    # animals the run stops before training anything, naming the settings to change.
    two = separable_windows(animals="ab")
    for kd in (KDConfig(baseline_weight=0.5), KDConfig(soft_labels="cross_fit")):
        with pytest.raises(ConfigError, match=r"needs at least 3 animals \(soft labels cross"):
            cfg = tiny_config(kd=kd, protocol="loao", val_animals=0)
            run_windows(two, cfg, tmp_path / "x", progress=False)
        assert not (tmp_path / "x" / "work").exists()
    # every fold keeps its val_animals (1 here) beside the training animals it needs
    assert tiny_config(kd=KDConfig(soft_labels="cross_fit"), protocol="kfold", k=2).min_animals == 6
    assert tiny_config(protocol="kfold", k=2).min_animals == 4
    assert tiny_config(protocol="kfold", k=2, val_animals=0).min_animals == 2
    assert tiny_config(protocol="loao", val_animals=3).min_animals == 5
    with pytest.raises(ConfigError, match="needs at least 5 animals; the data have 3"):
        # three validation animals out of two training animals: refused, not quietly dropped
        run_windows(w, tiny_config(protocol="loao", val_animals=3), tmp_path / "v", progress=False)
    assert not (tmp_path / "v").exists()
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


def test_an_unwritable_out_fails_before_any_training(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"notes\.txt: cannot write here: it is a file"):
        run_windows(separable_windows(), tiny_config(), tmp_path / "notes.txt", progress=False)
    out = tmp_path / "notes.txt" / "run"
    assert main(["run", "--out", str(out), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and f"{out}: cannot write here: {out.parent} is a file" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_out_the_file_system_refuses_leaves_no_new_folders(tmp_path):
    out = tmp_path / "new" / "deeper" / ("x" * 300)
    with pytest.raises(ConfigError, match="cannot write here: File name too long"):
        run_windows(separable_windows(), tiny_config(), out, progress=False)
    assert not (tmp_path / "new").exists()


def test_yaml_round_trip(tmp_path):
    cfg = replace(preset("full"), data=DataConfig(format="cattle_ufro", label_map={"a": None}))
    assert load_yaml(save_yaml(cfg, tmp_path / "c.yaml")) == cfg
    q = QuantConfig(word_bits=(16, 8), qat=True, rule="percentile", percentile=99.9)
    cfg = replace(preset("quick"), quant=q, export_bits=(16,), qemu=False, qemu_windows=7)
    back = load_yaml(save_yaml(cfg, tmp_path / "q.yaml"))
    assert back == cfg and back.quant.word_bits == (16, 8) and back.qemu is False
    assert "qemu_windows: 7" in (tmp_path / "q.yaml").read_text()
    assert load_yaml(save_yaml(preset("quick"), tmp_path / "p.yaml")).qemu == "auto"


def test_baseline_predictions_are_reused_only_for_the_same_training_windows(tmp_path):
    """The baseline resumes from its predictions file only if the forest would be fitted on
    the same windows: another training stride (same test windows) refits it."""
    from ethoedge.experiment.folds import fold_windows
    from ethoedge.experiment.jobs import Job, JobContext, run_baseline_job
    from ethoedge.experiment.keys import BASELINE

    w = separable_windows()

    def baseline_probs(stride: int, work: Path) -> np.ndarray:
        cfg = tiny_config(train_stride=stride)
        fold = fold_windows(cfg, w)[0]
        ctx = JobContext(cfg, w, {fold.name: fold}, work)
        return run_baseline_job(ctx, Job(fold.name, BASELINE, 0)).probs

    p1 = baseline_probs(1, tmp_path)
    assert np.array_equal(baseline_probs(1, tmp_path), p1)  # resumed: the same file
    p4 = baseline_probs(4, tmp_path)
    (tmp_path / "fresh").mkdir()
    assert np.array_equal(p4, baseline_probs(4, tmp_path / "fresh"))  # as from an empty folder
    assert not np.array_equal(p4, p1)


def test_calibrated_run_bundle_and_classify_agree(tmp_path, capsys):
    """A run on orientation-calibrated windows: its report says so, its bundle keeps the
    setting, and classify turns the windows as the run did (the same predictions)."""
    cfg = tiny_config(train_stride=8, quantize=False, export_bits=(8,), qemu=False)
    save_yaml(cfg, tmp_path / "cal.yaml")
    run_dir = tmp_path / "run"
    assert main(["run", "--config", str(tmp_path / "cal.yaml"), "--out", str(run_dir),
                 "--calibrate", "gravity", "--quiet"]) == 0  # fmt: skip
    assert load_yaml(run_dir / "config.yaml").window.calibrate == "gravity"
    assert "orientation calibrated per animal" in (run_dir / "report.md").read_text()
    bundle = json.loads((run_dir / "model" / "bundle.json").read_text())
    assert bundle["window"]["calibrate"] == "gravity"
    # the run's C check turns the windows as recorded itself, as the firmware does
    verify = json.loads((run_dir / "results.json").read_text())["deployment"]["widths"]["w8"]
    turned = verify["verify"]["host window, samples turned in C"]
    assert turned["identical"] == turned["windows"] == verify["verify"]["host"]["windows"] > 0
    res = classify(run_dir / "model", DataConfig(), tmp_path / "pred.csv")
    ref = pd.read_csv(run_dir / "model_predictions.csv", dtype={"animal": str, "segment": str})
    got = res.predictions.astype({"animal": str, "segment": str})
    merged = ref.merge(got, on=["animal", "segment", "start"], suffixes=("_run", "_cls"))
    assert len(merged) == len(ref)
    np.testing.assert_allclose(merged.score_grazing_run, merged.score_grazing_cls, atol=2e-6)
    assert (merged.label_run == merged.label_cls).all()
    # Exported, the C says how its input must be turned, and computes on windows turned as
    # training turned them what the integer reference computes.
    model, c_dir = run_dir / "model", tmp_path / "c"
    assert main(["quantize", str(model), "--bits", "8"]) == 0
    assert main(["export-c", str(model), "--bits", "8", "--out", str(c_dir)]) == 0
    assert "note: input: each animal's samples turned" in capsys.readouterr().out
    meta = json.loads((c_dir / "export.json").read_text())
    assert "window.calibrate: gravity" in meta["input_orientation"]
    header = (c_dir / "ethoedge_model.h").read_text()
    assert "#define ETHOEDGE_MODEL_GRAVITY_AXIS 2" in header
    assert "#define ETHOEDGE_MODEL_GRAVITY_SIGN -1" in header
    # verify-c gives the C the samples as recorded and each animal's mean: the C turns them
    assert main(["verify-c", str(c_dir)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "samples turned in C" in ln)
    n, total = re.search(r"(\d+)/(\d+) windows identical", line).groups()  # type: ignore[union-attr]
    assert n == total and int(n) == verify["verify"]["host"]["windows"]
    # classify's integer engines turn the samples as the firmware does: the reference on the
    # integer turn, and the C engine the same
    from ethoedge.bundle import read_bundle_info, windows_for_bundle
    from ethoedge.quantize.orient import turn_like_firmware
    from ethoedge.quantize.qmodel import QuantizedStudent
    from ethoedge.quantize.reference import reference_logits_batched

    info = read_bundle_info(model)
    raw = windows_for_bundle(replace(info, window=replace(info.window, calibrate="none")))
    q = QuantizedStudent.load(model / "quantized" / "w8.json")
    _, _, turned = turn_like_firmware(raw.X, raw.animal, "-z", q.in_frac)
    want = reference_logits_batched(q, turned).argmax(axis=1)
    key = pd.DataFrame({"animal": raw.animal, "segment": raw.segment, "start": raw.start,
                        "want": want})  # fmt: skip
    for engine in ("int", "c"):
        res = classify(model, DataConfig(), tmp_path / f"{engine}.csv", engine=engine, bits=8)
        got = res.predictions.astype({"animal": str, "segment": str}).merge(
            key, on=["animal", "segment", "start"]
        )
        assert len(got) == len(raw)
        names = np.asarray(res.class_names, dtype=object)
        assert (got["label"].to_numpy() == names[got["want"].to_numpy()]).all()
    # and the run's own 8-bit predictions are those of the same integer turn
    w8 = pd.read_csv(run_dir / "model_predictions_w8.csv", dtype={"animal": str, "segment": str})
    w8 = w8.merge(key, on=["animal", "segment", "start"])
    assert len(w8) == len(raw)
    assert (w8["label"].to_numpy() == names[w8["want"].to_numpy()]).all()


def test_what_the_machine_lacks_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """A GPU asked for where there is none, Ray where it is not installed, a config of the
    wrong type: one error before the run folder (config.yaml, work/) exists."""
    import importlib.util

    import ethoedge.models.device as device

    w = separable_windows()
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    cuda = tiny_config(student_train=replace(tiny_config().student_train, device="cuda"))
    with pytest.raises(ConfigError, match="device 'cuda' requested but CUDA is not available"):
        run_windows(w, cuda, tmp_path / "gpu", progress=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'ethoedge\[ray\]'"):
        run_windows(w, tiny_config(executor="ray"), tmp_path / "ray", progress=False)
    with pytest.raises(ConfigError, match="run\\(\\) takes a RunConfig"):
        run({"protocol": "loao"}, tmp_path / "dict")  # type: ignore[arg-type]
    assert not [p.name for p in tmp_path.iterdir()]


def test_a_ray_address_without_the_ray_executor_is_refused_before_anything_is_written(
    tmp_path, capsys
):
    """It would be ignored without a word: an error from the API and the CLI alike."""
    cfg = tiny_config(executor="processes", ray_address="host:6379")
    with pytest.raises(ConfigError, match="--ray-address needs --executor ray"):
        run_windows(separable_windows(), cfg, tmp_path / "api", progress=False)
    out = tmp_path / "cli"
    assert main(["run", "--out", str(out), "--quiet", "--ray-address", "host:6379"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "--ray-address needs --executor ray" in err
    assert not [p.name for p in tmp_path.iterdir()]


def test_an_executor_given_on_the_command_line_drops_the_configs_ray_address(tmp_path, monkeypatch):
    """A config for a Ray cluster run with --executor serial: its address was for its Ray
    executor, not an error of the command line's (which gave no --ray-address)."""
    import ethoedge.experiment

    seen = []

    def fake_run(cfg, out, progress=True):
        seen.append(cfg)
        raise ConfigError("stop here")

    monkeypatch.setattr(ethoedge.experiment, "run", fake_run)  # what the command calls
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("executor: ray\nray_address: ray://head:10001\n")
    assert main(["run", "--config", str(cfg), "--executor", "serial", "--out",
                 str(tmp_path / "o"), "--quiet"]) == 2  # fmt: skip
    assert seen[-1].executor == "serial" and seen[-1].ray_address is None
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert seen[-1].executor == "ray" and seen[-1].ray_address == "ray://head:10001"


def test_a_model_an_earlier_run_had_leaves_no_files_beside_this_runs(tmp_path):
    """Run again into the same folder without the baseline: its per-class CSV and confusion
    files go, so the folder holds one run's answers (the report names no baseline)."""
    w = separable_windows()
    out = tmp_path / "r"
    run_windows(w, tiny_config(deploy=False, quantize=False), out, progress=False)
    assert (out / "confusion_baseline.png").is_file()
    (out / "my_notes.txt").write_text("kept\n")
    run_windows(w, tiny_config(deploy=False, quantize=False, baseline=None), out, progress=False)
    left = sorted(p.name for p in out.iterdir() if "baseline" in p.name)
    assert left == [] and (out / "my_notes.txt").is_file()
    assert (out / "confusion_teacher.png").is_file() and (out / "per_class_student.csv").is_file()


def test_a_run_without_deployment_leaves_no_earlier_bundle_or_c_beside_its_answers(tmp_path):
    """Run again into the same folder without deployment and quantization: the earlier run's
    bundle, C exports, prediction files and word-length plots go (a user's own file stays), so
    nothing beside the new report belongs to another run; a run exporting only W=8 drops the
    earlier c/w16."""
    w = separable_windows()
    out = tmp_path / "r"
    run_windows(w, tiny_config(qemu=False), out, progress=False)
    assert (out / "model" / "bundle.json").is_file() and (out / "c" / "w16").is_dir()
    assert list(out.glob("mcc_vs_bits_*.png")) and (out / "model_predictions_w8.csv").is_file()
    (out / "my_notes.txt").write_text("kept\n")
    run_windows(w, tiny_config(qemu=False, export_bits=(8,)), out, progress=False)
    assert (out / "c" / "w8").is_dir() and not (out / "c" / "w16").exists()
    assert not (out / "model_predictions_w16.csv").exists()
    run_windows(w, tiny_config(deploy=False, quantize=False), out, progress=False)
    left = sorted(p.name for p in out.iterdir())
    assert "model" not in left and "c" not in left and "my_notes.txt" in left
    assert not [n for n in left if n.startswith(("model_predictions", "mcc_vs_bits"))]
    assert "predictions_cv_quantized.csv" not in left and "predictions_cv.csv" in left


def test_an_interrupted_run_leaves_the_earlier_runs_config_beside_its_results(
    tmp_path, monkeypatch
):
    """A run that fails part-way into a folder holding an earlier run's answers: config.yaml,
    results.json and report.md stay those of the earlier run (the new config waits in work/),
    so the folder never shows one run's config beside another run's results."""
    import importlib

    run_mod = importlib.import_module("ethoedge.experiment.run")
    w = separable_windows()
    out = tmp_path / "r"
    run_windows(w, tiny_config(deploy=False, quantize=False), out, progress=False)
    before = {n: (out / n).read_bytes() for n in ("config.yaml", "results.json", "report.md")}

    def fail(*a, **k):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(run_mod, "write_predictions", fail)
    new = tiny_config(deploy=False, quantize=False, seeds=(5,))
    with pytest.raises(RuntimeError, match="interrupted"):
        run_windows(w, new, out, progress=False)
    assert {n: (out / n).read_bytes() for n in before} == before
    assert load_yaml(out / "work" / "config.yaml").seeds == (5,)
    monkeypatch.undo()
    run_windows(w, new, out, progress=False)
    assert load_yaml(out / "config.yaml").seeds == (5,)
