"""The composed configuration of one run (:class:`RunConfig`), its presets and YAML round trip.

Every stage keeps its own frozen dataclass (``DataConfig``, ``WindowConfig``, ``TeacherConfig``,
``StudentConfig``, ``TrainConfig``, ``KDConfig``, ``QuantConfig``); :class:`RunConfig` only
composes them and adds the evaluation protocol. ``config.yaml`` in a run's output is
:func:`save_yaml` of the resolved config and re-runs the same job with
``ethoedge run --config config.yaml``.

Validation and the dict round trip go through pydantic v2 in dataclass mode
(:mod:`ethoedge.configbase`): one library checks every type, choice and range and names the
key's dotted path in every error, while the configs stay plain frozen dataclasses
(``dataclasses.replace``, ``asdict``, ``==``) for the rest of the code.
"""

from __future__ import annotations

from dataclasses import field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field

from ethoedge.baseline import BaselineConfig
from ethoedge.configbase import (
    AutoBool,
    Bool,
    Int,
    NonNegFloat,
    NonNegInt,
    PosInt,
    Str,
    config_dataclass,
    from_plain,
    to_plain,
)
from ethoedge.data.config import DataConfig
from ethoedge.data.windows import WindowConfig
from ethoedge.distill.config import KDConfig
from ethoedge.errors import ConfigError
from ethoedge.io import atomic_write_text
from ethoedge.models.settings import InputStage, StudentConfig, TeacherConfig
from ethoedge.quantize.config import QuantConfig
from ethoedge.train import AugmentConfig, TrainConfig

PRESETS = ("quick", "full")


@config_dataclass()
class StudentRecipe:
    """One candidate recipe of the students (``RunConfig.student_recipes``): their input
    stage and the heading augmentation they train with; everything else as configured.

    Attributes:
        input: the students' input stage (``StudentConfig.input``).
        yaw_deg: ``student_train.augment.yaw_deg``, the turn about the axis gravity lies
            along (0: off; 180: any heading).
    """

    input: InputStage = "static_dynamic"
    yaw_deg: Annotated[NonNegFloat, Field(le=180)] = 180.0

    @property
    def name(self) -> str:
        """``{input}_yaw{yaw_deg}``, e.g. ``static_dynamic_yaw180``."""
        return f"{self.input}_yaw{self.yaw_deg:g}"

    def apply(self, cfg: RunConfig) -> RunConfig:
        """``cfg`` with its students trained by this recipe."""
        st = cfg.student_train
        return replace(
            cfg,
            student=replace(cfg.student, input=self.input),
            student_train=replace(st, augment=replace(st.augment, yaw_deg=self.yaw_deg)),
        )


@config_dataclass()
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
        kd: distillation settings of ``student_kd``, in its training and in its
            quantization-aware fine-tuning with the teacher's soft labels.
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
        baseline: the feature baseline (hand-made accelerometry features + a random forest,
            :mod:`ethoedge.baseline`), evaluated on the same folds as ``baseline`` in
            ``results.json`` and the report; None: no baseline.
        executor: where the training jobs of the cross-validation run: ``"serial"`` (one after
            another in this process), ``"processes"`` (``workers`` local worker processes) or
            ``"ray"`` (a Ray cluster: ``ray_address``, or a local one of ``workers`` CPUs;
            needs ``pip install 'ethoedge[ray]'``). The figures do not depend on it.
        workers: jobs at once for ``processes`` and ``ray``.
        ray_address: address of a running Ray cluster (``ray://host:10001`` or ``host:6379``);
            None: start a local one for the run and shut it down after.
        job_threads: torch threads of every training job, whatever the executor (results of
            the teacher's convolutions depend on the thread count, so this keeps serial,
            process and Ray runs identical; with 1, small models use cores best as parallel
            jobs; at most 1024).
        student_recipes: candidate recipes of the students (input stage and heading
            augmentation, :class:`StudentRecipe`), chosen in each fold by inner animal-wise
            validation (:mod:`ethoedge.experiment.recipes`): the fold's training animals in
            ``recipe_groups`` groups; per candidate, one plain headline student per group,
            trained on the other groups (first seed) and scored on it; the candidate with the
            best MCC pooled over the groups trains every student of the fold. The deployment
            bundle's student is chosen likewise among all animals. Empty: ``student`` and
            ``student_train`` as given, in every fold.
        recipe_groups: animal groups of that inner validation (at most the number of
            training animals).
    """

    data: DataConfig = field(default_factory=DataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    student_sizes: tuple[PosInt, ...] = ()
    teacher_train: TrainConfig = field(default_factory=TrainConfig)
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=40, lr=3e-3))
    kd: KDConfig = field(default_factory=KDConfig)
    protocol: Literal["loao", "kfold", "holdout"] = "holdout"
    k: Annotated[Int, Field(ge=2)] = 5
    val_animals: NonNegInt = 1
    test_animals: PosInt = 1
    split_seed: Int = 0
    seeds: tuple[Int, ...] = (0,)
    train_stride: PosInt = 1
    teacher_stride: NonNegInt = 0
    deploy: Bool = True
    quantize: Bool = True
    quant: QuantConfig = field(default_factory=QuantConfig)
    export_bits: tuple[Int, ...] = (8, 16)
    qemu: AutoBool = "auto"
    qemu_windows: PosInt = 500
    baseline: BaselineConfig | None = field(default_factory=BaselineConfig)
    executor: Literal["serial", "processes", "ray"] = "serial"
    workers: PosInt = 1
    ray_address: Str | None = None
    job_threads: Annotated[PosInt, Field(le=1024)] = 1
    student_recipes: tuple[StudentRecipe, ...] = ()
    recipe_groups: Annotated[Int, Field(ge=2)] = 4

    def __post_init__(self) -> None:
        bad = [b for b in self.export_bits if b not in (8, 16)]
        if bad:
            raise ConfigError(f"export_bits: C export supports word lengths 8 and 16, got {bad}")
        if len(set(self.export_bits)) != len(self.export_bits):
            raise ConfigError(f"export_bits has duplicates: {list(self.export_bits)}")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds has duplicates: {list(self.seeds)}")
        names = [r.name for r in self.student_recipes]
        if len(set(names)) != len(names):
            raise ConfigError(f"student_recipes has duplicates: {names}")
        if (self.student_train.augment.mixup > 0 and self.kd.alpha > 0
                and self.kd.soft_labels != "consistent"):  # fmt: skip
            raise ConfigError(
                "student_train.augment.mixup needs kd.soft_labels: consistent: the stored"
                " soft labels are the teacher's answers on the windows unmixed"
            )

    @property
    def cross_fits(self) -> bool:
        """Whether each fold's soft labels come from models fitted on the fold's *other*
        training animals (``kd.soft_labels: cross_fit``, or the ensemble teacher's forests,
        ``kd.baseline_weight > 0``): a fold then needs at least 2 training animals."""
        return self.kd.soft_labels == "cross_fit" or self.kd.baseline_weight > 0

    @property
    def min_animals(self) -> int:
        """Fewest animals the protocol can work with: every fold keeps at least one training
        animal, two where soft labels are cross-fitted (:attr:`cross_fits`), besides its
        ``val_animals`` validation animals."""
        train = (2 if self.cross_fits else 1) + self.val_animals
        if self.protocol == "loao":
            return 1 + train  # one test animal and the training animals
        if self.protocol == "kfold":
            n = self.k
            while n - -(-n // self.k) < train:  # the largest test group: ceil(n / k) animals
                n += 1
            return n
        return self.test_animals + train

    def student_configs(self) -> dict[str, StudentConfig]:
        """Suffix -> student size: ``""`` for the headline size, ``"_h{H}"`` for the others."""
        out = {"": self.student}
        for h in self.student_sizes:
            if int(h) != self.student.hidden:
                out[f"_h{int(h)}"] = replace(self.student, hidden=int(h))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), for YAML/JSON."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys and bad
        values are a :class:`ConfigError` naming the key's dotted path."""
        return from_plain(cls, d)


def preset(name: str) -> RunConfig:
    """A named preset. Both follow one training recipe, the same in every fold rather than
    chosen per fold: no validation animal (``val_animals: 0``), every model trained on all of a
    fold's training animals for a fixed epoch budget with a cosine learning-rate schedule and
    its last epoch kept; the deployment bundle is trained the same way on every animal. The
    ``full`` teacher sees the ``dynamic`` input stage (a causal first-order high-pass per axis,
    smoothing shift 3, :mod:`ethoedge.models.frontend`), chosen by leave-one-animal-out on the
    bundled data against ``raw`` and ``static_dynamic`` (``docs/results.md``). The students
    of both presets see ``static_dynamic`` (the dynamic part and the low-passed static part,
    which carries posture) and are trained with every heading of the sensor about the axis
    gravity lies along (``AugmentConfig.yaw_deg`` 180: the collar's box faces either way on
    the bundled cows).

    ``quick``: leave one animal out, one seed, each animal's orientation calibrated
    (``window.calibrate: gravity``: collars that sit otherwise on the neck), a half-width
    teacher (32/64/64 filters, 132 k parameters: the published 64/128/128 costs 4x more) on
    the static and dynamic parts with every heading, trained on every 4th window, students on
    every window, distilled from the teacher's soft labels of the very view each student batch
    sees (``kd.soft_labels: consistent``: on calibrated windows the stored soft labels of the
    unturned windows no longer fit the turned views), random 3-D turns of teacher and students
    up to 15 degrees (not the default 30: on calibrated windows a wider turn blurs the posture
    that tells resting from standing), short budgets, two worker processes: the
    README's main command (``make demo``), a few minutes on 2 CPU cores on the bundled data
    (the emulated Cortex-M checks on 300 windows, the host's on every window).
    The student stride, the students' input with that augmentation, the calibration, the
    teacher's input, the soft labels and the turns' size were chosen by leave-one-animal-out
    on the bundled cows, the deployment bundle's training animals, the last also on the cows'
    whole recordings (``docs/results.md``, sections 0c, 0k and 0o).
    Calibration is for collars and ear tags; on tags whose orientation is part of the
    behaviour (the seals) it loses accuracy: ``--calibrate none``.
    ``full``: leave one animal out, the published teacher, 3 seeds, students
    H = 32, 16 and 8, non-overlapping training windows, an ensemble teacher for distillation
    (``kd.baseline_weight`` 0.5: the ResNet's probabilities averaged with the feature
    baseline's, each window's from forests that never saw its animal), the DQ sweep at
    16/12/8/6 bits.
    """
    if name == "quick":
        turns = AugmentConfig(yaw_deg=180.0, max_angle_deg=15.0)  # teacher and students
        return RunConfig(
            window=WindowConfig(calibrate="gravity"),
            teacher=TeacherConfig(filters=(32, 64, 64), input="static_dynamic"),
            student=StudentConfig(input="static_dynamic"),
            teacher_train=TrainConfig(
                epochs=10,
                batch_size=64,
                lr=1e-3,
                patience=0,
                lr_schedule="cosine",
                augment=turns,
            ),
            student_train=TrainConfig(
                epochs=20,
                batch_size=64,
                lr=3e-3,
                patience=0,
                lr_schedule="cosine",
                augment=turns,
            ),
            protocol="loao",
            val_animals=0,
            seeds=(0,),
            train_stride=1,
            teacher_stride=4,
            kd=KDConfig(soft_labels="consistent"),
            quant=QuantConfig(word_bits=(16, 8)),
            qemu_windows=300,
            executor="processes",
            workers=2,
        )
    if name == "full":
        return RunConfig(
            teacher=TeacherConfig(input="dynamic"),
            student=StudentConfig(input="static_dynamic"),
            student_sizes=(16, 8),
            teacher_train=TrainConfig(
                epochs=15, batch_size=128, lr=1e-3, patience=0, lr_schedule="cosine"
            ),
            student_train=TrainConfig(
                epochs=40,
                batch_size=128,
                lr=3e-3,
                patience=0,
                lr_schedule="cosine",
                augment=AugmentConfig(yaw_deg=180.0),
            ),
            protocol="loao",
            val_animals=0,
            seeds=(0, 1, 2),
            train_stride=2,
            kd=KDConfig(baseline_weight=0.5),
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
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a config file", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the config file ({e})", path=path) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        what = "; ".join(str(x) for x in (e.context, e.problem) if x)
        if mark is None:
            raise ConfigError(f"not valid YAML: {what}", path=path) from None
        raise ConfigError(
            f"not valid YAML: {what} (column {mark.column + 1})", path=path, row=mark.line + 1
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {' '.join(str(e).split())}", path=path) from None
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
    "StudentRecipe",
    "TeacherConfig",
    "TrainConfig",
    "WindowConfig",
    "load_yaml",
    "preset",
    "save_yaml",
]
