r"""Make the bundled default data set: a compact subset of the shared UFRO cattle-collar data.

Builds ``src/ethoedge/datasets/default/cattle_collar_ufro_subset.csv.gz`` (described in that
folder's README) from the shared file; it needs ``../shared/data``, which only development
checkouts have. The committed file was made with the default settings; with ``--out``
given explicitly, that is::

    python benchmarks/make_default_data.py \
        --out src/ethoedge/datasets/default/cattle_collar_ufro_subset.csv.gz

(defaults: ``--src ../shared/data/cattle_collar_ufro/cattle_collar_ufro.csv.gz`` from the
repository root, ``--cap 3500``, ``--max-bout 3000``, ``--seed 0``).

Selection, per cow and per major class (grazing, resting, standing, walking): whole bouts in a
seeded random order until the cow's rows of that class reach ``--cap``; a bout longer than
``--max-bout`` samples keeps only its first ``--max-bout`` samples (a contiguous stretch, so
windows stay inside one bout). Plus one bout of each rare behaviour (for label-map tests).
Floats are rounded to 4 decimals; the result is a gzip CSV with the preset's columns (no
timestamp in the gzip header). Output: the file's size and rows, then rows per cow
and class and bouts per class.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "data" / "cattle_collar_ufro" / "cattle_collar_ufro.csv.gz"
MAJOR = ("grazing", "resting", "standing", "walking")
COLUMNS = ["animal", "timestamp", "ax", "ay", "az", "label", "segment"]


def select(df: pd.DataFrame, cap: int, max_bout: int, seed: int) -> pd.DataFrame:
    """The subset (rows in the source order)."""
    rng = np.random.default_rng(seed)
    bouts = df.groupby("segment", sort=True).agg(
        animal=("animal", "first"), label=("label", "first"), n=("label", "size")
    )
    keep: list[pd.DataFrame] = []
    for (_animal, label), group in bouts.groupby(["animal", "label"], sort=True):
        segs = group.index.to_numpy()[rng.permutation(len(group))]
        if label not in MAJOR:
            segs = segs[:1]  # one rare bout per cow and behaviour
        total = 0
        for seg in segs:
            rows = df[df["segment"] == seg].iloc[:max_bout]
            keep.append(rows)
            total += len(rows)
            if total >= cap:
                break
    out = pd.concat(keep).sort_index()
    return out[COLUMNS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC, help="the shared cattle file")
    ap.add_argument("--out", type=Path, required=True, help="gzip CSV to write")
    ap.add_argument("--cap", type=int, default=3500, help="rows per cow and major class")
    ap.add_argument("--max-bout", type=int, default=3000, help="samples kept per bout")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    df = pd.read_csv(args.src, dtype={"animal": str}, usecols=COLUMNS)
    sub = select(df, args.cap, args.max_bout, args.seed)
    text = sub.to_csv(index=False, float_format="%.4f", lineterminator="\n")
    # Timestamps have 0.1 s resolution: 4 decimals keep them exact.
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(text.encode("utf-8"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.getvalue())
    print(f"wrote {args.out} ({len(buf.getvalue()):,} bytes, {len(sub):,} rows)")
    print(sub.groupby(["animal", "label"]).size().unstack(fill_value=0).to_string())
    print(sub.groupby("label")["segment"].nunique().to_string())


if __name__ == "__main__":
    main()
