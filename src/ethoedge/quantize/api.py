"""Post-training dynamic fixed-point quantization of a trained student."""

from __future__ import annotations

import numpy as np

from ethoedge.data.windows import Normalizer
from ethoedge.errors import DataError
from ethoedge.models.gru_mlp import GRUStudent
from ethoedge.quantize.calibrate import CALIBRATED, Calibration, calibrate, fold_normalizer
from ethoedge.quantize.config import QuantConfig, check_word_bits
from ethoedge.quantize.fixedpoint import choose_frac_bits, quantize_values
from ethoedge.quantize.qmodel import QTensor, QuantizedStudent
from ethoedge.quantize.reference import check_exact

# PyTorch parameter of each quantized tensor.
PARAM_OF = {
    "inp.weight": "inp.weight",
    "inp.bias": "inp.bias",
    "gru.weight_ih": "gru.weight_ih_l0",
    "gru.weight_hh": "gru.weight_hh_l0",
    "gru.bias_ih": "gru.bias_ih_l0",
    "gru.bias_hh": "gru.bias_hh_l0",
    "mlp.weight": "mlp.weight",
    "mlp.bias": "mlp.bias",
    "out.weight": "out.weight",
    "out.bias": "out.bias",
}


def quantize_folded(
    folded: GRUStudent,
    calib: Calibration,
    word_bits: int,
    cfg: QuantConfig,
    class_names: tuple[str, ...] = (),
    meta: dict | None = None,
) -> QuantizedStudent:
    """Quantize a student whose normalisation is already folded in, given its calibration."""
    check_word_bits(word_bits)
    params = dict(folded.named_parameters())
    weights: dict[str, QTensor] = {}
    for name, pname in PARAM_OF.items():
        v = params[pname].detach().double().cpu().numpy()
        f = choose_frac_bits(v, word_bits, cfg.rule, cfg.percentile)
        weights[name] = QTensor(quantize_values(v, f, word_bits), f, word_bits)
    act = {k: calib.frac_bits(k, word_bits, cfg.rule, cfg.percentile) for k in CALIBRATED}
    # An output never needs finer steps than the accumulator it is rounded from (the values
    # are multiples of the accumulator's step), so requant never shifts left.
    f = {k: t.frac_bits for k, t in weights.items()}
    act["a"] = min(act["a"], f["inp.weight"] + cfg.in_frac)
    act["m"] = min(act["m"], f["mlp.weight"] + act["h"])
    act["logits"] = min(act["logits"], f["out.weight"] + act["m"])
    q = QuantizedStudent(
        word_bits=word_bits,
        in_frac=cfg.in_frac,
        weights=weights,
        act_frac=act,
        hidden=folded.cfg.hidden,
        mlp_hidden=folded.cfg.mlp,
        n_classes=folded.n_classes,
        n_channels=folded.n_channels,
        class_names=tuple(class_names),
        input_stage=folded.cfg.input,
        static_shift=folded.cfg.static_shift,
        meta={
            "rule": cfg.rule,
            "percentile": cfg.percentile if cfg.rule == "percentile" else None,
            "calib_windows": calib.n_windows,
            "calib_absmax": {k: round(v, 6) for k, v in calib.absmax.items()},
            **(meta or {}),
        },
    )
    check_exact(q)
    return q


def quantize_student(
    student: GRUStudent,
    normalizer: Normalizer,
    calib_X_raw_g: np.ndarray,
    word_bits: int,
    cfg: QuantConfig | None = None,
    class_names: tuple[str, ...] = (),
    meta: dict | None = None,
) -> QuantizedStudent:
    """Quantize a trained float student at ``word_bits``.

    Folds ``normalizer`` into the input layer, calibrates the activations on raw training
    windows ``calib_X_raw_g (n, 3, L)`` in g (at most ``cfg.calib_windows`` of them), and
    chooses every tensor's fraction bits by ``cfg.rule``: weights and biases from their
    values, ``a``, ``h``, ``m`` and ``logits`` from the calibration ranges.
    """

    cfg = cfg or QuantConfig()
    if len(calib_X_raw_g) == 0:
        raise DataError("quantize: no calibration windows")
    folded = fold_normalizer(student, normalizer)
    calib = calibrate(folded, calib_X_raw_g, cfg.calib_windows, cfg.seed)
    return quantize_folded(folded, calib, word_bits, cfg, class_names, meta)
