"""The deployment bundle: everything needed to classify new recordings, without pickles.

Layout of a bundle directory::

    bundle.json      sizes, configs, class names, normaliser, window settings, meta
    student.npz      the student's state_dict (one array per tensor name)
    teacher.npz      the teacher's state_dict (optional)
    quantized/       written later by the quantizer (``w{bits}.json``); never touched by load

Models are rebuilt from their configs and loaded from ``state_dict`` arrays; no Python object
is ever unpickled.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ethoedge import __version__
from ethoedge.configbase import from_plain
from ethoedge.data.config import DataConfig
from ethoedge.data.recording import UNLABELLED
from ethoedge.data.windows import Normalizer, WindowConfig
from ethoedge.errors import ConfigError
from ethoedge.io import atomic_dir
from ethoedge.models.settings import StudentConfig, TeacherConfig

if TYPE_CHECKING:  # PyTorch is imported where models are built: read_bundle_info needs none
    import torch

    from ethoedge.models.gru_mlp import GRUStudent
    from ethoedge.models.resnet import ResNetTeacher

BUNDLE_FORMAT = "ethoedge.bundle/1"


@dataclass
class Bundle:
    """A trained student (and optionally its teacher) with what inference needs.

    Attributes:
        student: the float GRU-MLP student (its ``cfg`` is saved).
        normalizer: per-axis z-score fitted on the training windows.
        class_names: label names, index = class id.
        window: window settings the models were trained on.
        rate_hz: sampling rate of the windows (Hz).
        teacher: the ResNet teacher, or None.
        data: the ``DataConfig`` dict the models were trained from.
        meta: free-form provenance (epochs, metrics, tool version, ...).
        window_samples: window length in samples the models were trained on (None: derived
            from ``window`` and ``rate_hz``).
    """

    student: GRUStudent
    normalizer: Normalizer
    class_names: tuple[str, ...]
    window: WindowConfig
    rate_hz: float
    teacher: ResNetTeacher | None = None
    data: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    window_samples: int | None = None

    @property
    def n_samples(self) -> int:
        """Window length in samples (``window_samples``, else from ``window`` and ``rate_hz``)."""
        return _n_samples(self.window_samples, self.window, self.rate_hz)


@dataclass(frozen=True)
class BundleInfo:
    """What ``bundle.json`` says, without the models (:func:`read_bundle_info`): enough to
    window new recordings as the bundle's were, without importing PyTorch.

    Attributes: as :class:`Bundle`'s; ``student`` and ``teacher`` the models' config dicts
    (``teacher`` None when the bundle has none).
    """

    class_names: tuple[str, ...]
    normalizer: Normalizer
    window: WindowConfig
    rate_hz: float
    n_channels: int
    student: dict[str, Any]
    teacher: dict[str, Any] | None
    data: dict[str, Any]
    meta: dict[str, Any]
    window_samples: int | None

    @property
    def n_samples(self) -> int:
        """Window length in samples, as :attr:`Bundle.n_samples`."""
        return _n_samples(self.window_samples, self.window, self.rate_hz)


def _n_samples(window_samples: int | None, window: WindowConfig, rate_hz: float) -> int:
    if window_samples is not None:
        return int(window_samples)
    if window.length is not None:
        return int(window.length)
    return round(window.length_s * rate_hz)


def _state_npz(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    return buf.getvalue()


def _load_state(model: torch.nn.Module, path: Path) -> None:
    """Load ``model``'s weights from ``path``; a :class:`ConfigError` naming the file when it
    is missing, not an ``.npz`` of arrays, or not the weights of this model."""
    import torch

    from ethoedge.models.student_numpy import read_npz

    what = path.stem  # student, teacher
    try:
        state = {k: torch.from_numpy(np.array(v)) for k, v in read_npz(path, what).items()}
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:  # missing or unexpected tensors, other shapes, text
        why = " ".join(str(e).split())  # one line
        raise ConfigError(f"not the {what} bundle.json describes ({why})", path=path) from None


def save_bundle(bundle: Bundle, directory: str | Path) -> Path:
    """Write ``bundle`` to ``directory`` atomically (replacing an older bundle there, including
    its ``quantized/`` models, which belong to the old weights)."""
    directory = Path(directory)
    doc = {
        "format": BUNDLE_FORMAT,
        "ethoedge_version": __version__,
        "class_names": list(bundle.class_names),
        "n_channels": bundle.student.n_channels,
        "rate_hz": float(bundle.rate_hz),
        "n_samples": bundle.n_samples,
        "window": asdict(bundle.window),
        "normalizer": {"mean": list(bundle.normalizer.mean), "std": list(bundle.normalizer.std)},
        "student": asdict(bundle.student.cfg),
        "teacher": asdict(bundle.teacher.cfg) if bundle.teacher is not None else None,
        "data": bundle.data,
        "meta": bundle.meta,
    }
    with atomic_dir(directory) as tmp:
        (tmp / "student.npz").write_bytes(_state_npz(bundle.student))
        if bundle.teacher is not None:
            (tmp / "teacher.npz").write_bytes(_state_npz(bundle.teacher))
        (tmp / "bundle.json").write_text(json.dumps(doc, indent=2) + "\n")
    return directory


def read_bundle_info(directory: str | Path) -> BundleInfo:
    """Read and check a bundle's ``bundle.json`` (no models, no PyTorch)."""
    directory = Path(directory)
    path = directory / "bundle.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        # a run's folder given for its bundle: name the bundle inside it
        inside = directory / "model"
        hint = f"; the run's bundle is {inside}" if (inside / "bundle.json").is_file() else ""
        raise ConfigError(f"not a model bundle (no bundle.json){hint}", path=directory) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"bundle.json is not valid JSON: {e}", path=path) from None
    except OSError as e:
        raise ConfigError(f"cannot read bundle.json ({e.strerror or e})", path=path) from None
    if not isinstance(doc, dict):
        raise ConfigError("bundle.json is not a bundle description (a JSON object)", path=path)
    if doc.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"unknown bundle format {doc.get('format')!r}", path=path)
    try:
        return _bundle_info(doc)
    except ConfigError as e:  # a value out of range (window settings, sizes, ...)
        raise ConfigError(e.message, path=path) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else str(e)
        raise ConfigError(f"not a complete bundle description ({what})", path=path) from None


def _count(doc: dict[str, Any], key: str, default: object = None) -> int:
    """``doc[key]`` (``default`` when absent), which must be an integer >= 1."""
    value = doc.get(key, default) if default is not None else doc[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _finite(values: object, n: int, key: str) -> tuple[float, ...]:
    """``values``: a list of ``n`` finite numbers."""
    if not (
        isinstance(values, list)
        and len(values) == n
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        and all(math.isfinite(v) for v in values)
    ):
        raise ConfigError(f"{key} must be a list of {n} finite numbers, got {values!r}")
    return tuple(float(v) for v in values)


def _bundle_info(doc: dict[str, Any]) -> BundleInfo:
    """The description in a parsed ``bundle.json``, its sizes and numbers checked."""
    names = doc["class_names"]
    if not (
        isinstance(names, list)
        and names
        and all(isinstance(c, str) for c in names)
        and len(set(names)) == len(names)
    ):
        raise ConfigError(f"class_names must be a list of distinct names, got {names!r}")
    n_channels = _count(doc, "n_channels", 3)
    rate_hz = doc["rate_hz"]
    if not (
        isinstance(rate_hz, int | float)
        and not isinstance(rate_hz, bool)
        and math.isfinite(rate_hz)
        and rate_hz > 0
    ):
        raise ConfigError(f"rate_hz must be a finite number > 0, got {rate_hz!r}")
    norm = doc["normalizer"]
    mean = _finite(norm["mean"], n_channels, "normalizer.mean")
    std = _finite(norm["std"], n_channels, "normalizer.std")
    if min(std) <= 0:
        raise ConfigError(f"normalizer.std must be > 0, got {list(std)}")
    if not isinstance(doc.get("data", {}), dict):
        raise ConfigError(f"data must be a mapping, got {doc['data']!r}")
    window, data = dict(doc["window"]), dict(doc.get("data", {}))
    # Bundles written before resampling became a window setting carry data.resample_hz.
    if data.get("resample_hz") is not None and window.get("target_rate_hz") is None:
        window["target_rate_hz"] = data["resample_hz"]
    data.pop("resample_hz", None)
    from_plain(StudentConfig, doc["student"])
    if doc.get("teacher") is not None:
        from_plain(TeacherConfig, doc["teacher"])
    if data:
        DataConfig.from_dict(data)
    return BundleInfo(
        class_names=tuple(names),
        normalizer=Normalizer(mean, std),  # type: ignore[arg-type]
        window=WindowConfig(**window),
        rate_hz=float(rate_hz),
        n_channels=n_channels,
        student=dict(doc["student"]),
        teacher=dict(doc["teacher"]) if doc.get("teacher") is not None else None,
        data=data,
        meta=dict(doc.get("meta", {})),
        window_samples=_count(doc, "n_samples"),
    )


def load_bundle(directory: str | Path, *, teacher: bool = True) -> Bundle:
    """Read a bundle written by :func:`save_bundle` (models in eval mode, on CPU);
    ``teacher=False`` leaves its teacher out (None), e.g. to classify with the student."""
    from ethoedge.models.gru_mlp import GRUStudent
    from ethoedge.models.resnet import ResNetTeacher

    directory = Path(directory)
    info = read_bundle_info(directory)
    n_classes, n_ch = len(info.class_names), info.n_channels
    student = GRUStudent(n_classes, StudentConfig(**info.student), n_channels=n_ch)
    _load_state(student, directory / "student.npz")
    student.eval()
    teacher_model = None
    if teacher and info.teacher is not None and (directory / "teacher.npz").exists():
        t = info.teacher
        tcfg = TeacherConfig(
            **{**t, "filters": tuple(t["filters"]), "kernels": tuple(t["kernels"])}
        )
        teacher_model = ResNetTeacher(n_classes, tcfg, n_channels=n_ch)
        _load_state(teacher_model, directory / "teacher.npz")
        teacher_model.eval()
    return Bundle(
        student=student,
        normalizer=info.normalizer,
        class_names=info.class_names,
        window=info.window,
        rate_hz=info.rate_hz,
        teacher=teacher_model,
        data=info.data,
        meta=info.meta,
        window_samples=info.window_samples,
    )


def window_like_bundle(
    bundle: Bundle | BundleInfo, dataset: Any, *, every_stretch: bool = False
) -> Any:
    """Cut ``dataset`` into windows exactly as ``bundle``'s training data were: its window
    settings, resampled to its rate where the data come at another one.

    ``every_stretch``: keep impure windows (label = the majority label) and windows without
    any label, so that every stretch long enough for a window is classified; labels that are
    missing come out as class index -1. Otherwise windows are filtered as in training.
    Returns :class:`~ethoedge.data.Windows` (raw g, ``(n, channels, L)``).
    """
    from dataclasses import replace

    from ethoedge.data import make_windows
    from ethoedge.errors import DataError

    wcfg = bundle.window
    if every_stretch:
        wcfg = replace(wcfg, drop_impure=False)
        if any(_has_missing(r.labels) for r in dataset.recordings):
            recs = [
                replace(r, labels=np.where(_missing(r.labels), UNLABELLED, r.labels).astype(object))
                for r in dataset.recordings
            ]
            dataset = replace(
                dataset, recordings=recs, class_names=(*dataset.class_names, UNLABELLED)
            )
    if wcfg.target_rate_hz is None and set(dataset.rates_hz) != {bundle.rate_hz}:
        wcfg = replace(wcfg, target_rate_hz=bundle.rate_hz)
    windows = make_windows(dataset, wcfg)
    source = getattr(dataset, "source", None)
    if len(windows) == 0:
        raise DataError(
            "no windows: every recording is shorter than the model's window", path=source
        )
    if windows.n_samples != bundle.n_samples:
        raise DataError(
            f"windows have {windows.n_samples} samples, the model expects {bundle.n_samples}",
            path=source,
        )
    if every_stretch and UNLABELLED in windows.class_names:
        none = windows.class_names.index(UNLABELLED)
        y = np.where(windows.y == none, -1, windows.y)
        windows = replace(windows, y=y)
    return windows


def _missing(labels: np.ndarray) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.isna(labels))


def _has_missing(labels: np.ndarray) -> bool:
    return bool(_missing(labels).any())


def windows_for_bundle(
    bundle: Bundle | BundleInfo | str | Path,
    data_path: str | Path | None = None,
    *,
    data_format: str | None = None,
    units: str | None = None,
    every_stretch: bool = False,
) -> Any:
    """Load ``data_path`` with the bundle's data settings (``data_format`` and ``units``
    replacing its format and units where given; no path: the bundled default data set; the
    training data's annotation file only for the training data's path) and window it with
    :func:`window_like_bundle`."""
    from ethoedge.data import load_dataset
    from ethoedge.data.config import DataConfig

    b = bundle if isinstance(bundle, Bundle | BundleInfo) else load_bundle(bundle)
    d = dict(b.data)
    d["path"] = None if data_path is None else str(data_path)
    if d["path"] != b.data.get("path"):
        d["labels"] = None  # the training data's annotation file does not label other data
    if data_format is not None:
        d["format"] = data_format
    if units is not None:
        d["units"] = units
    if every_stretch:
        d["unlabelled"] = "keep"
    return window_like_bundle(b, load_dataset(DataConfig.from_dict(d)), every_stretch=every_stretch)
