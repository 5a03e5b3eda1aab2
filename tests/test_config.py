"""Configs: YAML round trip, one-line errors with the key's dotted path, removed keys, and
plain-dataclass behaviour (``replace`` re-validates, ``asdict``, ``==``)."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import re

import numpy as np
import pytest
import yaml

import ethoedge.bundle as bundle_module
from ethoedge.bundle import Bundle, load_bundle, save_bundle
from ethoedge.config import RunConfig, load_yaml, preset, save_yaml
from ethoedge.data import UNLABELLED, DataConfig, Normalizer, WindowConfig
from ethoedge.data.stats import UNLABELLED as STATS_UNLABELLED
from ethoedge.distill import KDConfig
from ethoedge.errors import ConfigError
from ethoedge.export.config import ExportConfig
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
from ethoedge.quantize.config import QuantConfig
from ethoedge.train import KDConfig as TrainKDConfig
from ethoedge.train import TrainConfig


@pytest.mark.parametrize("name", ["quick", "full"])
def test_presets_round_trip_through_yaml(name, tmp_path):
    cfg = preset(name)
    path = save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(path) == cfg
    doc = yaml.safe_load(path.read_text())
    assert list(doc) == [f.name for f in dataclasses.fields(RunConfig)]
    assert isinstance(doc["seeds"], list) and isinstance(doc["teacher"]["filters"], list)
    assert isinstance(doc["quant"]["word_bits"], list) and doc["qemu"] == "auto"
    assert "resample_hz" not in doc["data"] and "kd_alpha" not in doc["quant"]
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_round_trip_keeps_every_kind_of_value(tmp_path):
    cfg = dataclasses.replace(
        preset("quick"),
        data=DataConfig(classes=("a", "b"), label_map={"c": None, "d": "a"}, rate_hz=10),
        window=WindowConfig(length=64, hop=32, target_rate_hz=20.0),
        student=StudentConfig(hidden=8, mlp_hidden=4),
        student_sizes=(16, 4),
        kd=KDConfig(alpha=0.9, temperature=2.0, soft_labels="cross_fit", cross_fit_groups=3),
        quant=QuantConfig(word_bits=(12,), qat=True, qat_threshold=float("inf")),
        qemu=False,
    )
    back = load_yaml(save_yaml(cfg, tmp_path / "c.yaml"))
    assert back == cfg
    assert back.data.rate_hz == 10.0 and isinstance(back.data.rate_hz, float)
    assert back.data.classes == ("a", "b") and back.student_sizes == (16, 4)


def test_from_dict_fills_defaults_and_takes_yaml_numbers():
    cfg = RunConfig.from_dict({"student_train": {"lr": 1}, "kd": {"temperature": 2}})
    assert cfg.student_train == TrainConfig(lr=1.0)  # a given section starts from its defaults
    assert cfg.kd.temperature == 2.0 and isinstance(cfg.kd.temperature, float)
    assert RunConfig.from_dict({}) == RunConfig()
    assert RunConfig.from_dict({"data": {"label_map": None}}).data.label_map == {}


@pytest.mark.parametrize(
    "d, match",
    [
        ({"kd": {"alhpa": 0.5}}, r"unknown keys \['kd\.alhpa'\].*closest: kd\.alpha"),
        ({"student_train": {"augment": {"rotat": True}}}, r"'student_train\.augment\.rotat'"),
        ({"protocl": "loao"}, r"unknown keys \['protocl'\]"),
        ({"data": {"paht": "x.csv"}}, r"unknown keys \['data\.paht'\]"),
    ],
)
def test_unknown_keys_name_their_dotted_path(d, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig.from_dict(d)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"student_train": {"epochs": "40"}}, "student_train.epochs must be an integer, got '40'"),
        ({"student_train": {"epochs": 0}}, "student_train.epochs must be >= 1, got 0"),
        ({"teacher_train": {"lr": "fast"}}, "teacher_train.lr must be a number, got 'fast'"),
        ({"deploy": 1}, "deploy must be true or false, got 1"),
        ({"data": {"label_map": ["a"]}}, "data.label_map must be a mapping, got ['a']"),
        ({"data": {"label_map": {"a": 3}}}, "data.label_map.a must be a string, got 3"),
        ({"quant": {"word_bits": [16, "x"]}}, "quant.word_bits[1] must be an integer, got 'x'"),
        ({"student_sizes": [16, 0]}, "student_sizes[1] must be >= 1, got 0"),
        ({"window": {"min_purity": 2}}, "window.min_purity must be in [0, 1], got 2"),
        ({"kd": {"alpha": 2}}, "kd.alpha must be in [0, 1], got 2"),
        ({"quant": 8}, "quant must be a mapping, got 8"),
        ({"qemu": "sometimes"}, "qemu must be true, false or 'auto', got 'sometimes'"),
    ],
)
def test_bad_values_name_dotted_path_and_value(d, message):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(d)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "d, message",
    [
        (
            {"protocol": "bootstrap"},
            "protocol must be one of 'loao', 'kfold' or 'holdout', got 'bootstrap'",
        ),
        (
            {"student_train": {"lr_schedule": "step"}},
            "student_train.lr_schedule must be one of 'constant' or 'cosine', got 'step'",
        ),
        (
            {"data": {"nan_policy": "zero"}},
            "data.nan_policy must be one of 'error', 'drop' or 'interpolate', got 'zero'",
        ),
        (
            {"quant": {"rule": "mean"}},
            "quant.rule must be one of 'max' or 'percentile', got 'mean'",
        ),
    ],
)
def test_bad_choice_names_the_allowed_values(d, message):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(d)
    assert str(e.value) == message


def test_every_error_is_one_line_and_all_are_reported():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"k": 1, "kd": {"temperature": -1}, "seeds": ["a"]})
    msg = str(e.value)
    assert "\n" not in msg and "pydantic" not in msg and "errors.pydantic.dev" not in msg
    for part in ("k must be >= 2", "kd.temperature must be > 0", "seeds[0] must be an integer"):
        assert part in msg


def test_config_file_errors_name_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("student_train:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: student_train\.epochs must be an integer"):
        load_yaml(p)
    p.write_text("- 1\n")
    with pytest.raises(ConfigError, match="config must be a mapping"):
        load_yaml(p)


@pytest.mark.parametrize(
    ("content", "text", "row"),
    [
        (b"data:\n  path: [unclosed\n", "YAML: while parsing a flow sequence; expected", 3),
        (b"kd:\n  alpha: 0.5\n temperature: 2\n", "not valid YAML: ", 3),
        (b"\xff\xfe\x00binary", "cannot read the config file", None),
    ],
)
def test_unreadable_config_files_are_one_line(tmp_path, content, text, row):
    p = tmp_path / "c.yaml"
    p.write_bytes(content)
    with pytest.raises(ConfigError, match=text) as e:
        load_yaml(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value) and e.value.row == row


def test_a_folder_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_yaml(tmp_path)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: RunConfig.from_dict({"quant": {"kd_alpha": 0.9}}),
            "quant.kd_alpha has moved to kd.alpha",
        ),
        (
            lambda: RunConfig.from_dict({"quant": {"kd_temperature": 2.0}}),
            "quant.kd_temperature has moved to kd.temperature",
        ),
        (
            lambda: RunConfig.from_dict({"data": {"resample_hz": 20.0}}),
            "data.resample_hz has moved to window.target_rate_hz",
        ),
        (lambda: QuantConfig.from_dict({"kd_alpha": 0.5}), "quant.kd_alpha has moved to kd.alpha"),
        (lambda: QuantConfig(kd_alpha=0.5), "quant.kd_alpha has moved to kd.alpha"),
        (
            lambda: DataConfig(resample_hz=10.0),
            "data.resample_hz has moved to window.target_rate_hz",
        ),
    ],
)
def test_removed_keys_say_where_they_moved(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_direct_construction_and_replace_validate():
    with pytest.raises(ConfigError, match=r"train\.epochs must be >= 1, got 0"):
        dataclasses.replace(TrainConfig(), epochs=0)
    with pytest.raises(ConfigError, match=r"unknown keys \['train\.epoch'\]"):
        TrainConfig(epoch=3)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"kd\.alpha must be in"):
        KDConfig(alpha=1.5)
    with pytest.raises(ConfigError, match="seeds is empty"):  # __post_init__, not wrapped
        RunConfig(seeds=())
    with pytest.raises(ConfigError, match=r"data\.classes must be distinct"):
        RunConfig.from_dict({"data": {"classes": ["a", "a"]}})
    with pytest.raises(ConfigError, match="export_bits: C export supports"):
        RunConfig.from_dict({"export_bits": [12]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3  # type: ignore[misc]


def test_configs_stay_plain_dataclasses():
    cfg = preset("quick")
    assert dataclasses.is_dataclass(cfg) and dataclasses.replace(cfg) == cfg
    assert dataclasses.asdict(cfg)["student_train"]["augment"]["rotate"] is True
    assert dataclasses.replace(cfg, k=3).k == 3 and hash(StudentConfig()) == hash(StudentConfig())
    # NumPy scalars count as the numbers they hold (a median epoch count, say).
    t = dataclasses.replace(cfg.student_train, epochs=np.int64(7), lr=np.float32(0.5))
    assert t.epochs == 7 and type(t.epochs) is int and type(t.lr) is float
    assert TrainKDConfig is KDConfig
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) == cfg


def test_data_and_quant_and_export_dict_round_trips():
    d = DataConfig(path="x.csv", classes=("a", "b"), label_map={"c": None}, nan_policy="drop")
    assert DataConfig.from_dict(d.to_dict()) == d and d.to_dict()["classes"] == ["a", "b"]
    q = QuantConfig(word_bits=(16, 8), qat="auto", rule="percentile", percentile=99.9)
    assert QuantConfig.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    e = ExportConfig(prefix="cow", word_bits=8)
    assert ExportConfig.from_json(e.to_json()) == e
    with pytest.raises(ConfigError, match=r"unknown keys \['export\.prefx'\]"):
        ExportConfig.from_json({"prefx": "cow"})


def test_one_unlabelled_sentinel():
    assert STATS_UNLABELLED is UNLABELLED and bundle_module.UNLABELLED is UNLABELLED


def test_old_bundle_with_data_resample_hz_loads(tmp_path):
    """Bundles written before resampling became a window setting still load."""
    student = GRUStudent(2, StudentConfig(hidden=4))
    norm = Normalizer((0.0, 0.0, 1.0), (1.0, 1.0, 1.0))
    b = Bundle(student, norm, ("a", "b"), WindowConfig(), 20.0, data=DataConfig().to_dict())
    d = save_bundle(b, tmp_path / "b")
    doc = json.loads((d / "bundle.json").read_text())
    doc["data"]["resample_hz"] = 20.0
    (d / "bundle.json").write_text(json.dumps(doc))
    old = load_bundle(d)
    assert old.window.target_rate_hz == 20.0 and "resample_hz" not in old.data
    assert DataConfig.from_dict(old.data) == DataConfig()


@pytest.mark.parametrize(
    "data, match",
    [
        ({"window": {"hop_s": 0}}, "window.hop_s must be > 0"),
        ({"window": {"length_s": -5.0}}, "window.length_s must be > 0"),
        ({"window": {"hop": 0}}, "window.hop must be >= 1"),
        ({"teacher": {"kernels": []}}, "teacher.kernels"),
        ({"teacher": {"filters": []}}, "teacher.filters"),
    ],
)
def test_values_no_model_or_window_can_take_are_refused_by_name(data, match):
    """A hop of 0 or a teacher without convolutions failed deep inside a run (a shape error
    from PyTorch); the config names the key."""
    with pytest.raises(ConfigError, match=re.escape(match)):
        RunConfig.from_dict(data)


def test_a_number_in_yaml_scientific_notation_is_a_number(tmp_path):
    """PyYAML reads ``1e-3`` as text (YAML 1.1 wants ``1.0e-3``); a float key takes it."""
    p = tmp_path / "c.yaml"
    p.write_text("student_train:\n  lr: 1e-3\n  weight_decay: 5E-4\n")
    cfg = load_yaml(p)
    assert cfg.student_train.lr == 0.001 and cfg.student_train.weight_decay == 0.0005
    with pytest.raises(ConfigError, match=r"student_train\.lr must be a number, got '1e-3x'"):
        RunConfig.from_dict({"student_train": {"lr": "1e-3x"}})


@pytest.mark.parametrize(
    "text, match",
    [
        ("window:\n  length_s: .inf\n", "window.length_s must be a finite number, got inf"),
        ("student_train:\n  lr: .inf\n", "student_train.lr must be a finite number, got inf"),
        ("seeds: [0, 1, 0]\n", "seeds has duplicates: [0, 1, 0]"),
        ("job_threads: 100000000\n", "job_threads must be <= 1024, got 100000000"),
    ],
)
def test_values_that_break_a_run_later_are_refused_with_the_file(tmp_path, text, match):
    """An infinite window length failed in windowing (OverflowError), duplicate seeds trained
    the same jobs twice into the same files, and a huge thread count crashed PyTorch."""
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{p}: {match}")):
        load_yaml(p)
    assert RunConfig.from_dict({"quant": {"qat_threshold": float("inf")}}).quant.qat_threshold
