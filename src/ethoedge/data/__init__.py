"""ethoedge.data: load accelerometry files, cut labelled windows, split by animal.

>>> from ethoedge.data import DataConfig, load_dataset, make_windows, WindowConfig
>>> ds = load_dataset(DataConfig())  # the bundled cattle subset
>>> w = make_windows(ds, WindowConfig())
>>> w.X.shape[1:], w.class_names
((3, 50), ('grazing', 'resting', 'standing', 'walking'))
"""

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
