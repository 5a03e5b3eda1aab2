"""Shared fixtures. Data fixtures load the bundled default cattle subset once per session."""

from __future__ import annotations

import pytest

from ethoedge.data import DataConfig, Dataset, WindowConfig, Windows, load_dataset, make_windows


@pytest.fixture(scope="session")
def default_dataset() -> Dataset:
    """The bundled default data set (8 cows, 4 classes, 10 Hz, in g)."""
    return load_dataset(DataConfig())


@pytest.fixture(scope="session")
def default_windows(default_dataset: Dataset) -> Windows:
    """Default windows of the bundled data: 5 s (50 samples), hop 2.5 s, raw g, (n, 3, 50)."""
    return make_windows(default_dataset, WindowConfig())
