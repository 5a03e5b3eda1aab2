"""On-device cost of the exported student: flash, RAM and instructions on an emulated Cortex-M4.

Costs at W=8, W=16 and float32 on QEMU's ``mps2-an386``, per classification and per MAC.

Measures the model's own object built with ``arm-none-eabi-gcc -O2`` (flash: text + rodata;
RAM: data + bss + the peak stack of one classification, by stack painting) and the guest
instructions of one classification (QEMU instruction-counting plugin); time and energy are
estimates for a 64 MHz nRF52840-class MCU (assumptions in :mod:`ethoedge.export.cost`).
Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm``.

Usage::

    python benchmarks/c_cost.py                 # the default student, as in the README table
    python benchmarks/c_cost.py --bundle runs/demo/model

Without ``--bundle``, the default student (H=32, M=32) is built with seeded random weights and
quantized with the default quantizer on windows of the bundled cattle subset (5 s at 10 Hz:
L=50): the cost does not depend on the trained values (the code path is data-independent).
With ``--bundle``, its student and its ``quantized/w8.json``/``w16.json`` (``ethoedge
quantize BUNDLE --bits 16,8``) are measured.

Output: a Markdown table (flash, RAM = static + stack, instructions, instructions per MAC,
estimated ms and uJ per window and ms per 256-sample window) and the check of the W=8 budget
(< 16 kB flash, < 4 kB RAM, < 3 instructions per MAC). The README's cost table is this
output for the default student; nothing is committed in ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from ethoedge.bundle import load_bundle
from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset, make_windows
from ethoedge.export import export_float_c
from ethoedge.export.cost import McuAssumptions, measure_cost, measure_dir
from ethoedge.models import GRUStudent, StudentConfig
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.qmodel import QuantizedStudent


def default_models():
    """Seeded untrained default student, its normaliser, W=8/16 models, window length."""
    windows = make_windows(load_dataset(DataConfig()), WindowConfig())
    torch.manual_seed(0)
    student = GRUStudent(len(windows.class_names), StudentConfig(hidden=32)).eval()
    norm = Normalizer.fit(windows.X)
    qs = {b: quantize_student(student, norm, windows.X[:512], b) for b in (8, 16)}
    return student, norm, qs, windows.n_samples


def bundle_models(path: Path):
    """A bundle's student, normaliser, its quantized W=8/16 models and window length."""
    b = load_bundle(path)
    qs = {bits: QuantizedStudent.load(path / "quantized" / f"w{bits}.json") for bits in (8, 16)}
    return b.student, b.normalizer, qs, b.n_samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle (RUN/model)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.bundle is not None:
        student, norm, qs, L = bundle_models(args.bundle)
        source = str(args.bundle)
    else:
        student, norm, qs, L = default_models()
        source = "default student, seeded weights, bundled cattle data"
    mcu = McuAssumptions()
    rows = [(f"int W={bits}", measure_cost(qs[bits], L, mcu=mcu)) for bits in (8, 16)]
    macs = student.macs(L)
    with tempfile.TemporaryDirectory() as tmp:
        export_float_c(student, tmp, L, normalizer=norm)
        cost = measure_dir(tmp, prefix="ethoedge_float", macs=macs, is_float=True, mcu=mcu)
        rows.append(("float32", cost))
    h = student.cfg.hidden
    print(f"# ethoedge C cost on QEMU mps2-an386 (Cortex-M4F), arm-none-eabi-gcc -O2 ({source})")
    print(f"# H={h}, M={student.cfg.mlp}, C={student.n_classes}, L={L} samples, MACs={macs:,}")
    print(f"# time/energy: {rows[0][1]['assumptions']}")
    print()
    print(
        "| model | flash (B) | RAM (B) = static + stack | instructions | instr/MAC "
        "| est. ms @64 MHz | est. uJ | est. ms per 256-sample window |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, c in rows:
        per256 = c["est_time_ms"] * 256 / L
        print(
            f"| {name} | {c['flash_bytes']:,} | {c['ram_bytes']:,} = {c['static_ram_bytes']} + "
            f"{c['stack_bytes']} | {c['instructions']:,} | {c['instructions_per_mac']:.2f} | "
            f"{c['est_time_ms']:.2f} | {c['est_energy_uj']:.1f} | {per256:.1f} |"
        )
    w8 = rows[0][1]
    print()
    print(
        f"budget at W=8: flash {w8['flash_bytes']:,} B < 16 kB: "
        f"{'yes' if w8['flash_bytes'] < 16 * 1024 else 'NO'}; RAM {w8['ram_bytes']:,} B < 4 kB: "
        f"{'yes' if w8['ram_bytes'] < 4096 else 'NO'}; {w8['instructions_per_mac']:.2f} "
        f"instructions/MAC < 3: {'yes' if w8['instructions_per_mac'] < 3 else 'NO'}"
    )
    print(
        "published: a 175-parameter float filter+MLP on the Cortex-M3 collar (Arablouei et al., "
        "Comput. Electron. Agric. 207:107707): 10.9 kB code, 0.7 kB constants, 9.6 kB stack, "
        "85 ms per window at 48 MHz; GRU-32 on 256-sample windows (Wang et al., Comput. "
        "Electron. Agric. 206:107647): 1.6 M multiplies per window."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
