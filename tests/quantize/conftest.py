"""Shared fixtures: the bundled cattle windows and a small student trained on them briefly."""

from __future__ import annotations

import pytest
import torch

from ethoedge.data import Normalizer
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig


@pytest.fixture(scope="session")
def cattle(default_windows):
    """Every window of the bundled default data (raw g), from ``tests/conftest.py``."""
    return default_windows


@pytest.fixture(scope="session")
def trained(cattle):
    """(student, normalizer): a hidden-16 student trained for 2 epochs on half the windows
    (a few seconds), so its activation ranges are realistic."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    norm = Normalizer.fit(cattle.X)
    student = GRUStudent(len(cattle.class_names), StudentConfig(hidden=16))
    X = torch.from_numpy(norm.apply(cattle.X))
    y = torch.from_numpy(cattle.y)
    train = torch.randperm(len(X), generator=torch.Generator().manual_seed(1))[: len(X) // 2]
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        perm = train[torch.randperm(len(train), generator=gen)]
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            loss = torch.nn.functional.cross_entropy(student(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    student.eval()
    with torch.no_grad():
        acc = float((student(X).argmax(1) == y).float().mean())
    assert acc > 0.5, f"fixture student did not learn (accuracy {acc:.2f})"
    return student, norm


@pytest.fixture(scope="session")
def float_logits(cattle, trained):
    student, norm = trained
    with torch.no_grad():
        return student(torch.from_numpy(norm.apply(cattle.X))).numpy()
