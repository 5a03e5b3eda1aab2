"""Helpers of the export tests: small quantized students from seeded float students, inputs,
and skip markers for missing toolchains."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ethoedge.export.toolchain import have_arm
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
from ethoedge.quantize.fixedpoint import choose_frac_bits, quantize_values
from ethoedge.quantize.qmodel import QTensor, QuantizedStudent


def make_qmodel(
    word_bits: int,
    *,
    hidden: int = 8,
    mlp_hidden: int | None = None,
    n_classes: int = 3,
    n_samples: int = 12,
    seed: int = 0,
    input_stage: str = "raw",
    static_shift: int = 3,
) -> QuantizedStudent:
    """A quantized student from a seeded, randomly initialised GRUStudent.

    Weights get their fraction bits by the contract's ``max`` rule; activations get plausible
    fixed formats (no calibration pass: this is a test model, not a trained one).
    """
    torch.manual_seed(seed)
    scfg = StudentConfig(hidden=hidden, mlp_hidden=mlp_hidden, input=input_stage,  # type: ignore[arg-type]
                         static_shift=static_shift)  # fmt: skip
    student = GRUStudent(n_classes, scfg)
    weights = {}
    for name, p in student.state_dict().items():
        name = name.replace("weight_ih_l0", "weight_ih").replace("weight_hh_l0", "weight_hh")
        name = name.replace("bias_ih_l0", "bias_ih").replace("bias_hh_l0", "bias_hh")
        v = p.detach().double().numpy() * 2.0  # a little larger than the init
        f = choose_frac_bits(v, word_bits)
        weights[name] = QTensor(quantize_values(v, f, word_bits), f, word_bits)
    w = word_bits
    act = {"a": w - 1 - 2, "h": w - 1, "m": w - 1 - 2, "logits": w - 1 - 3}
    return QuantizedStudent(
        word_bits=w,
        in_frac=11,
        weights=weights,
        act_frac=act,
        hidden=hidden,
        mlp_hidden=student.cfg.mlp,
        n_classes=n_classes,
        class_names=tuple(f"c{i}" for i in range(n_classes)),
        meta={"n_samples": n_samples, "source": "tests/export/conftest.py"},
        input_stage=input_stage,
        static_shift=static_shift,
    )


def random_inputs(n: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """(n, 3, L) int16 inputs: accelerations of a few g at 11 fraction bits plus extremes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.5, size=(n, 3, n_samples)) * 2048
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    if n >= 4:
        x[0] = 32767
        x[1] = -32768
        x[2, :, ::2] = 32767
        x[2, :, 1::2] = -32768
        x[3] = 0
    return x


requires_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None, reason="host gcc not found: install gcc to build the C"
)
requires_arm = pytest.mark.skipif(
    not have_arm(),
    reason="arm-none-eabi-gcc / qemu-system-arm missing: install gcc-arm-none-eabi "
    "libnewlib-arm-none-eabi qemu-system-arm (`make toolchain`)",
)
