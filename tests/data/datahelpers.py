"""Small generated data files for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def frame(
    animals: tuple[str, ...] = ("a", "b"),
    n: int = 60,
    rate: float = 10.0,
    labels: tuple[str, ...] = ("walk", "rest"),
    segments: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """A generic-layout frame: per animal and segment ``n`` samples at ``rate``, label blocks."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in animals:
        t0 = 1000.0
        for s in range(segments):
            t = t0 + np.arange(n) / rate
            lab = np.repeat(labels, int(np.ceil(n / len(labels))))[:n]
            rows.append(
                pd.DataFrame(
                    {
                        "animal": a,
                        "timestamp": np.round(t, 6),
                        "ax": rng.normal(0, 0.1, n).round(4),
                        "ay": rng.normal(0, 0.1, n).round(4),
                        "az": (1 + rng.normal(0, 0.1, n)).round(4),
                        "label": lab,
                        "segment": f"s{s}",
                    }
                )
            )
            t0 = t[-1] + 100.0
    return pd.concat(rows, ignore_index=True)


def write(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` as CSV / CSV.gz / Parquet by suffix."""
    if path.name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path
