"""Accuracy and size of the quantized student per word length (PTQ, and QAT where needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ethoedge.data.windows import Normalizer
from ethoedge.distill.config import KDConfig
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.io import atomic_path
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.quantize.api import quantize_folded
from ethoedge.quantize.calibrate import calibrate, fold_normalizer
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.qmodel import ACTIVATION_NAMES, WEIGHT_NAMES, QuantizedStudent
from ethoedge.quantize.reference import quantize_input, reference_logits_batched
from ethoedge.quantize.rewrite import qat_finetune


def float_predict(student: GRUStudent, normalizer: Normalizer, X_g: np.ndarray) -> np.ndarray:
    """Class ids of the float student on raw windows ``(n, 3, L)`` in g."""
    student = student.cpu().eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(X_g), 2048):
            x = torch.from_numpy(normalizer.apply(np.asarray(X_g[i : i + 2048])))
            out.append(student(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def frac_table(q: QuantizedStudent) -> dict[str, int]:
    """Fraction bits of every tensor (weights, then activations), by name."""
    return {**{k: q.frac(k) for k in WEIGHT_NAMES}, **{k: q.frac(k) for k in ACTIVATION_NAMES}}


def _quantize(student, normalizer, train_X, w, cfg, class_names) -> QuantizedStudent:
    folded = fold_normalizer(student, normalizer)
    calib = calibrate(folded, train_X, cfg.calib_windows, cfg.seed)
    return quantize_folded(folded, calib, w, cfg, class_names)


def evaluate_word_lengths(
    student: GRUStudent,
    normalizer: Normalizer,
    train_X: np.ndarray,
    test_X: np.ndarray,
    test_y: np.ndarray,
    cfg: QuantConfig | None = None,
    class_names: tuple[str, ...] = (),
    soft_labels: np.ndarray | None = None,
    train_y: np.ndarray | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
    *,
    kd: KDConfig | None = None,
) -> list[dict[str, Any]]:
    """Quantize ``student`` at every ``cfg.word_bits`` and score the integer reference.

    Post-training quantization (PTQ) calibrates on ``train_X`` (raw g windows of the training
    animals). Quantization-aware fine-tuning (QAT, :func:`~ethoedge.quantize.rewrite.qat_finetune`
    on ``train_X``/``train_y``, with the teacher's ``soft_labels`` logits when given, weighted
    by ``kd``'s alpha and temperature - the run's ``cfg.kd``; None: the
    :class:`~ethoedge.distill.KDConfig` defaults - and early stopping on ``val``) runs per
    word length when ``cfg.qat`` is True, or, with
    ``cfg.qat="auto"``, when PTQ at 8 bits loses more than ``cfg.qat_threshold`` MCC against
    the float student (or 8 bits is not swept) - then for every word length whose PTQ loses
    more than the threshold. That loss is measured on the training windows (``train_X``,
    ``train_y``; at most ``cfg.qat_rule_windows`` of them, drawn with ``cfg.seed``), never on
    the test windows: whether a fold's student is fine-tuned must not depend on the labels it
    is scored against.

    Returns one dict per word length with ``word_bits``, ``bytes``, ``frac_bits`` (every
    tensor), ``agreement`` (fraction of test windows whose class equals the float student's),
    the metrics of :func:`~ethoedge.evaluate.metrics.classification_metrics` (``mcc``,
    ``macro_f1``, ``accuracy``, ... of the figures finally used), ``ptq`` (PTQ ``mcc``,
    ``macro_f1``, ``accuracy``), ``qat`` (the same after QAT, or None), ``method``
    (``"ptq"`` or ``"qat"``: where QAT ran, the one with the higher MCC on ``val`` - never
    chosen on the test windows; without ``val``, QAT), ``train_mcc_loss`` (with
    ``qat="auto"``: the float student's MCC minus PTQ's on the training windows, the figure
    the threshold applies to; None where the rule did not need it: every word length but 8
    when 8 bits does not lose, or without ``"auto"``), ``float_mcc``, ``qmodel`` (the
    :class:`QuantizedStudent` used) and ``pred`` (its class ids of the test windows, an
    array). Drop ``qmodel`` and ``pred`` (not JSON) before writing results.
    """
    cfg = cfg or QuantConfig()
    test_y = np.asarray(test_y)
    names = tuple(class_names) or tuple(str(i) for i in range(student.n_classes))
    y_float = float_predict(student, normalizer, test_X)
    float_metrics = classification_metrics(test_y, y_float, names)
    x_int = quantize_input(test_X, cfg.in_frac)

    def score(q: QuantizedStudent) -> tuple[dict[str, Any], np.ndarray]:
        pred = reference_logits_batched(q, x_int).argmax(1)
        return classification_metrics(test_y, pred, names), pred

    ptq: dict[int, tuple[QuantizedStudent, dict[str, Any], np.ndarray]] = {}
    for w in cfg.word_bits:
        q = _quantize(student, normalizer, train_X, w, cfg, names)
        m, pred = score(q)
        ptq[w] = (q, m, pred)
        if log:
            log(f"W={w:2d} PTQ: MCC {m['mcc']:.4f} (float {float_metrics['mcc']:.4f})")

    # MCC lost to PTQ on the training windows (the "auto" rule's figure): at 8 bits first,
    # at the other word lengths only where 8 bits loses (the rule then asks for them).
    train_loss: dict[int, float] = {}
    if cfg.qat == "auto":
        if train_y is None:
            raise ValueError('qat="auto" needs train_y (its rule is scored on training windows)')
        y_train, X_rule = np.asarray(train_y), train_X
        if len(X_rule) > cfg.qat_rule_windows:
            rng = np.random.default_rng(cfg.seed)
            idx = np.sort(rng.choice(len(X_rule), cfg.qat_rule_windows, replace=False))
            y_train, X_rule = y_train[idx], np.asarray(X_rule)[idx]
        train_float = classification_metrics(
            y_train, float_predict(student, normalizer, X_rule), names
        )["mcc"]
        x_train = quantize_input(X_rule, cfg.in_frac)

        def train_mcc_loss(w: int) -> float:
            pred = reference_logits_batched(ptq[w][0], x_train).argmax(1)
            loss = float(train_float - classification_metrics(y_train, pred, names)["mcc"])
            if log:
                log(f"W={w:2d} PTQ on the training windows: MCC loss {loss:+.4f}")
            return loss

        for w in sorted(ptq, key=lambda w: w != 8):
            train_loss[w] = train_mcc_loss(w)
            if w == 8 and train_loss[w] <= cfg.qat_threshold:
                break

    def loses(w: int) -> bool:
        return w not in train_loss or train_loss[w] > cfg.qat_threshold

    if cfg.qat is True:
        qat_widths = list(cfg.word_bits)
    elif cfg.qat == "auto" and loses(8):
        qat_widths = [w for w in cfg.word_bits if loses(w)]
    else:
        qat_widths = []
    if qat_widths and train_y is None:
        raise ValueError("quantization-aware fine-tuning needs train_y")

    results = []
    for w in cfg.word_bits:
        q, m, pred = ptq[w]
        qat_m = None
        method = "ptq"
        if w in qat_widths:
            tuned = qat_finetune(
                student, normalizer, train_X, train_y, w, cfg, soft_labels, val=val, log=log, kd=kd
            )
            q_qat = _quantize(tuned, normalizer, train_X, w, cfg, names)
            qat_full, qat_pred = score(q_qat)
            qat_m = _short(qat_full)
            if log:
                log(f"W={w:2d} QAT: MCC {qat_full['mcc']:.4f}")
            if val is None or _val_mcc(q_qat, val, names) >= _val_mcc(q, val, names):
                q, m, pred, method = q_qat, qat_full, qat_pred, "qat"
        results.append(
            {
                "word_bits": w,
                **m,
                "bytes": q.n_bytes(),
                "frac_bits": frac_table(q),
                "agreement": float(np.mean(pred == y_float)) if len(pred) else float("nan"),
                "method": method,
                "train_mcc_loss": train_loss.get(w),
                "ptq": _short(ptq[w][1]),
                "qat": qat_m,
                "float_mcc": float_metrics["mcc"],
                "qmodel": q,
                "pred": pred,
            }
        )
    return results


def _val_mcc(q: QuantizedStudent, val: tuple[np.ndarray, np.ndarray], names) -> float:
    pred = reference_logits_batched(q, quantize_input(val[0], q.in_frac)).argmax(1)
    return float(classification_metrics(np.asarray(val[1]), pred, names)["mcc"])


def _short(m: dict[str, Any]) -> dict[str, float]:
    return {k: float(m[k]) for k in ("mcc", "macro_f1", "accuracy")}


def plot_mcc_vs_bits(
    results: list[dict[str, Any]], float_mcc: float, path: str | Path, title: str = ""
) -> Path:
    """MCC of the quantized student per word length (PTQ and, where run, QAT), with the
    float student's MCC as a horizontal line; written atomically to ``path`` (PNG/SVG/PDF)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = sorted(results, key=lambda r: r["word_bits"])
    bits = [r["word_bits"] for r in rs]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(bits, [r["ptq"]["mcc"] for r in rs], "o-", label="post-training")
    qat = [(r["word_bits"], r["qat"]["mcc"]) for r in rs if r.get("qat")]
    if qat:
        ax.plot(*zip(*qat, strict=True), "s--", label="quantization-aware")
    ax.axhline(float_mcc, color="k", lw=1, ls=":", label=f"float ({float_mcc:.3f})")
    ax.set_xlabel("word length W (bits)")
    ax.set_ylabel("MCC")
    ax.set_xticks(bits)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path
