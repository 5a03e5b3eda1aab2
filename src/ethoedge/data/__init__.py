"""ethoedge.data: load accelerometry files, cut labelled windows, split by animal.

>>> from ethoedge.data import DataConfig, load_dataset, make_windows, WindowConfig
>>> ds = load_dataset(DataConfig())  # the bundled cattle subset
>>> w = make_windows(ds, WindowConfig())
>>> w.X.shape[1:], w.class_names
((3, 50), ('grazing', 'resting', 'standing', 'walking'))
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ethoedge.data import splits
    from ethoedge.data.config import DataConfig
    from ethoedge.data.dataset import Dataset
    from ethoedge.data.loaders import default_data_path, load_dataset
    from ethoedge.data.recording import UNLABELLED, Recording
    from ethoedge.data.splits import (
        Split,
        assert_disjoint,
        holdout_animals,
        kfold_by_animal,
        leave_one_animal_out,
        train_val_test_by_animal,
    )
    from ethoedge.data.windows import Normalizer, WindowConfig, Windows, make_windows

__all__ = [
    "UNLABELLED",
    "DataConfig",
    "Dataset",
    "Normalizer",
    "Recording",
    "Split",
    "WindowConfig",
    "Windows",
    "assert_disjoint",
    "default_data_path",
    "holdout_animals",
    "kfold_by_animal",
    "leave_one_animal_out",
    "load_dataset",
    "make_windows",
    "splits",
    "train_val_test_by_animal",
]

# Imported on first use (PEP 562): a submodule such as ``ethoedge.data.config`` or the
# streaming reader ``classify`` uses needs neither scikit-learn (``splits``) nor the whole-file
# loaders, and importing them costs a few tenths of a second per process.
_HOME = {
    "UNLABELLED": "recording",
    "DataConfig": "config",
    "Dataset": "dataset",
    "Normalizer": "windows",
    "Recording": "recording",
    "Split": "splits",
    "WindowConfig": "windows",
    "Windows": "windows",
    "assert_disjoint": "splits",
    "default_data_path": "loaders",
    "holdout_animals": "splits",
    "kfold_by_animal": "splits",
    "leave_one_animal_out": "splits",
    "load_dataset": "loaders",
    "make_windows": "windows",
    "train_val_test_by_animal": "splits",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "splits":
        return importlib.import_module(f"{__name__}.splits")
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
