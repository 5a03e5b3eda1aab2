"""Classification metrics (all from scikit-learn) and confusion matrices (CSV and PNG).

MCC is the headline metric (multi-class Matthews correlation, Gorodkin 2004, as in
``sklearn.metrics.matthews_corrcoef``). Macro F1 averages over the classes present in the
true or predicted labels (scikit-learn's default); a class never seen nor predicted does not
count as zero.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ethoedge.io import atomic_path, atomic_write_text


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """MCC, macro F1, accuracy, per-class precision/recall/F1/support and the confusion matrix.

    >>> m = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), ("a", "b"))
    >>> round(m["accuracy"], 3), m["confusion"]
    (0.667, [[1, 0], [1, 1]])
    """
    # scikit-learn (and SciPy under it) is imported here, not with the module: classify only
    # needs :func:`metrics_from_confusion`, and the import costs a second and 190 MB.
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        matthews_corrcoef,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n": len(y_true),
        "per_class": [
            {
                "class": name,
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(class_names)
        ],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def per_class_csv(metrics: dict[str, Any]) -> str:
    """The per-class table of :func:`classification_metrics` as CSV text."""
    lines = ["class,precision,recall,f1,support"]
    for row in metrics["per_class"]:
        lines.append(
            f"{row['class']},{row['precision']:.4f},{row['recall']:.4f},{row['f1']:.4f},"
            f"{row['support']}"
        )
    return "\n".join(lines) + "\n"


def confusion_csv(confusion: list[list[int]], class_names: tuple[str, ...]) -> str:
    """Confusion matrix as CSV: rows are true classes, columns predicted classes."""
    lines = ["true\\predicted," + ",".join(class_names)]
    for name, row in zip(class_names, confusion, strict=True):
        lines.append(name + "," + ",".join(str(int(v)) for v in row))
    return "\n".join(lines) + "\n"


def save_confusion(
    confusion: list[list[int]], class_names: tuple[str, ...], stem: str | Path, title: str
) -> tuple[Path, Path]:
    """Write ``stem.csv`` and ``stem.png`` (row-normalised colours, counts printed) atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    csv = atomic_write_text(stem.with_suffix(".csv"), confusion_csv(confusion, class_names))
    cm = np.asarray(confusion, dtype=np.float64)
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.0 * k + 2))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}\n{frac[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.6 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    png = stem.with_suffix(".png")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    with atomic_path(png) as tmp:
        tmp.write_bytes(buf.getvalue())
    return csv, png


def metrics_from_confusion(confusion: np.ndarray) -> dict[str, float]:
    """MCC, macro F1, accuracy and n from a confusion matrix (rows true, columns predicted),
    as :func:`classification_metrics` computes them from the labels (macro F1 over the
    classes present in the true or predicted labels), for counts gathered piece by piece.

    >>> m = metrics_from_confusion(np.array([[1, 0], [1, 1]]))
    >>> round(m["accuracy"], 3), round(m["mcc"], 3), round(m["macro_f1"], 3)
    (0.667, 0.5, 0.667)
    """
    cm = np.asarray(confusion, dtype=np.float64)
    n = cm.sum()
    if n == 0:
        return {"mcc": 0.0, "macro_f1": 0.0, "accuracy": 0.0, "n": 0}
    tp = np.diag(cm)
    true, pred = cm.sum(axis=1), cm.sum(axis=0)
    cov = tp.sum() * n - true @ pred
    den = np.sqrt((n * n - pred @ pred) * (n * n - true @ true))
    present = (true > 0) | (pred > 0)
    f1 = np.where(true + pred > 0, 2 * tp / np.maximum(true + pred, 1), 0.0)
    return {
        "mcc": float(cov / den) if den > 0 else 0.0,
        "macro_f1": float(f1[present].mean()),
        "accuracy": float(tp.sum() / n),
        "n": int(n),
    }
