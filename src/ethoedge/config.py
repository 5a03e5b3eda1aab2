"""The composed configuration of one run (:class:`RunConfig`), its presets and YAML round trip.

Every stage keeps its own frozen dataclass (``DataConfig``, ``WindowConfig``, ``TeacherConfig``,
``StudentConfig``, ``TrainConfig``, ``KDConfig``); :class:`RunConfig` only composes them and
adds the evaluation protocol. ``config.yaml`` in a run's output is :func:`save_yaml` of the
resolved config and re-runs the same job with ``ethoedge run --config config.yaml``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from ethoedge.data.config import DataConfig
from ethoedge.data.windows import WindowConfig
from ethoedge.errors import ConfigError
from ethoedge.io import atomic_write_text
from ethoedge.models.gru_mlp import StudentConfig
from ethoedge.models.resnet import TeacherConfig
from ethoedge.quantize.config import QuantConfig
from ethoedge.train import AugmentConfig, KDConfig, TrainConfig

PRESETS = ("quick", "full")


@dataclass(frozen=True)
class RunConfig:
    """One run: data, windows, models, training, distillation and the evaluation protocol.

    Attributes:
        data: which data and labels (``ethoedge.data.DataConfig``).
        window: how recordings are cut into windows.
        teacher: ResNet size.
        student: GRU-MLP size of the headline ``student``/``student_kd`` models.
        student_sizes: further hidden sizes H evaluated as ``student_h{H}``/``student_kd_h{H}``
            (same MLP rule as ``student``: ``mlp_hidden`` None means equal to H).
        teacher_train: training settings of the teacher.
        student_train: training settings of both students (plain and distilled).
        kd: distillation settings of ``student_kd``.
        protocol: ``"loao"`` (leave one animal out), ``"kfold"`` (``k`` folds by animal) or
            ``"holdout"`` (one split: ``test_animals`` test and ``val_animals`` validation
            animals, the rest training).
        k: folds for ``"kfold"``.
        val_animals: training animals held out per fold for early stopping and for choosing
            the epoch whose weights are kept; 0: no validation animal, every training animal
            is trained on for the fixed ``epochs`` budget and the last epoch's weights are kept
            (with one held-out animal the choice of epoch can be noisy).
        test_animals: test animals of the ``"holdout"`` split.
        split_seed: seed of the animal assignment of ``"kfold"``/``"holdout"`` and of the
            validation animals.
        seeds: student seeds; every student is trained once per fold and seed. The teacher is
            trained once per fold, with the first seed.
        train_stride: keep every ``train_stride``-th training and validation window (2 with a
            hop of half a window gives non-overlapping windows and halves the cost); test
            windows are all kept.
        teacher_stride: stride of the teacher's training windows (0: ``train_stride``); a
            larger stride trains the costly teacher on fewer windows while its soft labels
            still cover every student training window.
        deploy: after evaluation, train the deployment bundle (``DIR/model/``) on all animals,
            for the median best epoch count found in evaluation.
        quantize: quantize every cross-validated ``student``/``student_kd`` at each of
            ``quant.word_bits`` (calibrated on its fold's training windows, scored on its test
            windows): ``student_w{W}``/``student_kd_w{W}`` in ``results.json``.
        quant: dynamic fixed-point settings (word lengths swept, fraction-bit rule, QAT).
        export_bits: word lengths (8 and/or 16) at which the deployment bundle is quantized,
            exported to C (``DIR/c/w{W}/``) and verified; empty: no export.
        qemu: verify on emulated Cortex-M4/M3 and measure flash/RAM/instructions: ``"auto"``
            (where ``qemu-system-arm`` and ``arm-none-eabi-gcc`` are installed), True
            (required) or False (host check only).
        qemu_windows: windows run on each emulated MCU (the host checks every window).
    """

    data: DataConfig = field(default_factory=DataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    student_sizes: tuple[int, ...] = ()
    teacher_train: TrainConfig = field(default_factory=TrainConfig)
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=40, lr=3e-3))
    kd: KDConfig = field(default_factory=KDConfig)
    protocol: Literal["loao", "kfold", "holdout"] = "holdout"
    k: int = 5
    val_animals: int = 1
    test_animals: int = 1
    split_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    train_stride: int = 1
    teacher_stride: int = 0
    deploy: bool = True
    quantize: bool = True
    quant: QuantConfig = field(default_factory=QuantConfig)
    export_bits: tuple[int, ...] = (8, 16)
    qemu: bool | Literal["auto"] = "auto"
    qemu_windows: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.quant, QuantConfig):
            raise ConfigError(
                f"quant must be a mapping of quantization settings, got {self.quant!r}"
            )
        bad = [b for b in self.export_bits if b not in (8, 16) or isinstance(b, bool)]
        if bad:
            raise ConfigError(f"export_bits: C export supports word lengths 8 and 16, got {bad}")
        if len(set(self.export_bits)) != len(self.export_bits):
            raise ConfigError(f"export_bits has duplicates: {list(self.export_bits)}")
        if self.qemu not in (True, False, "auto"):
            raise ConfigError(f"qemu must be true, false or 'auto', got {self.qemu!r}")
        if not isinstance(self.qemu_windows, int) or self.qemu_windows < 1:
            raise ConfigError(f"qemu_windows must be an integer >= 1, got {self.qemu_windows!r}")
        if self.protocol not in ("loao", "kfold", "holdout"):
            raise ConfigError(f"protocol must be loao, kfold or holdout, got {self.protocol!r}")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        if self.k < 2:
            raise ConfigError(f"k must be >= 2, got {self.k}")
        if self.val_animals < 0 or self.test_animals < 1:
            raise ConfigError(
                f"val_animals must be >= 0 and test_animals >= 1, got {self.val_animals} and "
                f"{self.test_animals}"
            )
        if self.train_stride < 1:
            raise ConfigError(f"train_stride must be >= 1, got {self.train_stride}")
        if self.teacher_stride < 0:
            raise ConfigError(f"teacher_stride must be >= 0, got {self.teacher_stride}")
        for h in (self.student.hidden, *self.student_sizes):
            if int(h) < 1:
                raise ConfigError(f"student hidden size must be >= 1, got {h}")

    @property
    def min_animals(self) -> int:
        """Fewest animals the protocol can work with."""
        if self.protocol == "loao":
            return 2  # one test animal, at least one training animal
        if self.protocol == "kfold":
            return self.k
        return self.val_animals + self.test_animals + 1

    def student_configs(self) -> dict[str, StudentConfig]:
        """Suffix -> student size: ``""`` for the headline size, ``"_h{H}"`` for the others."""
        out = {"": self.student}
        for h in self.student_sizes:
            if int(h) != self.student.hidden:
                out[f"_h{int(h)}"] = replace(self.student, hidden=int(h))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), for YAML/JSON."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        return _from_plain(cls, d, "")


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, DataConfig | QuantConfig):
        return obj.to_dict()
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _from_plain(cls: type, d: Any, where: str) -> Any:
    if cls is DataConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"{where or 'config'} must be a mapping, got {d!r}")
        return DataConfig.from_dict(d)
    if cls is QuantConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"{where} must be a mapping, got {d!r}")
        try:
            return QuantConfig.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in {where or 'config'}; known: {sorted(known)}")
    kwargs = {}
    for name, value in d.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}".lstrip("."))
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and is_dataclass(tp):
        return _from_plain(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value, where) if len(args) == 1 else value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where} must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, bool, str) and not isinstance(value, tp):
        raise ConfigError(f"{where} must be {tp.__name__}, got {value!r}")
    return value


def preset(name: str) -> RunConfig:
    """A named preset.

    ``quick``: one animal-wise train/val/test split, one seed, a half-width teacher
    (32/64/64 filters, 131 k parameters: the published 64/128/128 costs 4x more), every 4th
    training window, short training: the README's main command, minutes on 2 CPU cores on the
    bundled data (``benchmarks/timing_quick.py``). ``full``: leave one animal out, the
    published teacher, 3 seeds, students H = 32 and 16, non-overlapping training windows;
    hours on 2 CPU cores (see ``benchmarks/kd_loao.py`` for the cost and a budgeted variant).
    """
    if name == "quick":
        return RunConfig(
            teacher=TeacherConfig(filters=(32, 64, 64)),
            teacher_train=TrainConfig(epochs=10, batch_size=64, lr=1e-3, patience=4),
            student_train=TrainConfig(epochs=20, batch_size=64, lr=3e-3, patience=5),
            protocol="holdout",
            seeds=(0,),
            train_stride=4,
            quant=QuantConfig(word_bits=(16, 8)),
        )
    if name == "full":
        return RunConfig(
            student_sizes=(16,),
            teacher_train=TrainConfig(epochs=15, batch_size=128, lr=1e-3, patience=5),
            student_train=TrainConfig(epochs=40, batch_size=128, lr=3e-3, patience=8),
            protocol="loao",
            seeds=(0, 1, 2),
            train_stride=2,
            quant=QuantConfig(word_bits=(16, 12, 8, 6), qat="auto"),
        )
    raise ConfigError(f"unknown preset '{name}' (one of {', '.join(PRESETS)})")


def save_yaml(cfg: RunConfig, path: str | Path) -> Path:
    """Write ``cfg`` as YAML atomically."""
    text = "# ethoedge run configuration (re-run: ethoedge run --config this-file)\n"
    text += yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    return atomic_write_text(path, text)


def load_yaml(path: str | Path) -> RunConfig:
    """Read a YAML config; missing keys take the defaults of :class:`RunConfig`."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", path=path) from None
    try:
        return RunConfig.from_dict(d or {})
    except ConfigError as e:
        raise ConfigError(e.message, path=path) from None


__all__ = [
    "AugmentConfig",
    "DataConfig",
    "KDConfig",
    "QuantConfig",
    "RunConfig",
    "StudentConfig",
    "TeacherConfig",
    "TrainConfig",
    "WindowConfig",
    "load_yaml",
    "preset",
    "save_yaml",
]
