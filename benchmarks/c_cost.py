"""On-device cost of the exported student: flash, RAM and instructions on an emulated Cortex-M4
and Cortex-M3.

Costs at W=8, W=16 (both cores side by side) and float32 (M4) on QEMU's ``mps2-an386``
(Cortex-M4F: the kernels' DSP path) and ``mps2-an385`` (Cortex-M3: the plain-C path), per
classification and per MAC, and the flash of two models (W=8 and W=16, different prefixes)
linked into one firmware, where the kernel library is counted once.

Measures the model's own object and the kernel library's, built with ``arm-none-eabi-gcc -O2``
(flash: text + rodata the linker keeps; RAM: data + bss + the peak stack of one
classification, by stack painting) and the guest instructions of one classification (QEMU
instruction-counting plugin); time and energy are estimates for a 64 MHz nRF52840-class MCU
(assumptions in :mod:`ethoedge.export.cost`). Needs ``arm-none-eabi-gcc`` and
``qemu-system-arm``.

Usage::

    python benchmarks/c_cost.py                 # the default student, as in the README table
    python benchmarks/c_cost.py --bundle runs/demo/model

Without ``--bundle``, the default student (H=32, M=32) is built with seeded random weights and
quantized with the default quantizer on windows of the bundled cattle subset (5 s at 10 Hz:
L=50): the cost does not depend on the trained values (the code path is data-independent).
With ``--bundle``, its student and its ``quantized/w8.json``/``w16.json`` (``ethoedge
quantize BUNDLE --bits 16,8``) are measured.

Output: a Markdown table (flash, RAM = static + stack, instructions per MAC on each core,
estimated ms and uJ per window on the M4), the two-model firmware row, and the check of the
targets (W=8 on the M4: <= 12 kB flash, <= 1 kB RAM, <= 1.3 instructions per MAC; W=16: <= 1.8
instructions per MAC). Nothing is committed in ``benchmarks/results``.
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
from ethoedge.export.config import ExportConfig
from ethoedge.export.cost import McuAssumptions, measure_cost, measure_dir, measure_firmware
from ethoedge.export.emit import emit_c, write_files
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
    """A bundle's student, normaliser, its quantized W=8/16 models, window length and gravity
    axis (None: windows as recorded)."""
    b = load_bundle(path)
    qs = {bits: QuantizedStudent.load(path / "quantized" / f"w{bits}.json") for bits in (8, 16)}
    axis = None if b.window.calibrate == "none" else b.window.gravity_axis
    return b.student, b.normalizer, qs, b.n_samples, axis


def firmware_row(qs: dict[int, QuantizedStudent], L: int, target: str) -> dict:
    """The W=8 and W=16 models (prefixes ``m8``, ``m16``) linked into one firmware."""
    with tempfile.TemporaryDirectory() as tmp:
        for bits, q in qs.items():
            cfg = ExportConfig(prefix=f"m{bits}", n_samples=L, example_main=False)
            write_files(emit_c(q, cfg), tmp)
        return measure_firmware(tmp, [f"m{bits}" for bits in qs], target=target)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle (RUN/model)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    axis = None
    if args.bundle is not None:
        student, norm, qs, L, axis = bundle_models(args.bundle)
        source = str(args.bundle)
        if axis is not None:
            source += f"; calibrated: each window's samples turned in C onto {axis}"
    else:
        student, norm, qs, L = default_models()
        source = "default student, seeded weights, bundled cattle data"
    mcu = McuAssumptions()
    cores = ("cortex-m4", "cortex-m3")
    rows = [
        (f"int W={bits}",
         {t: measure_cost(qs[bits], L, mcu=mcu, target=t, gravity_axis=axis) for t in cores})
        for bits in (8, 16)
    ]  # fmt: skip
    macs = student.macs(L)
    no_float = ""
    if student.cfg.input == "raw":  # the float C variant has the raw input stage only
        with tempfile.TemporaryDirectory() as tmp:
            export_float_c(student, tmp, L, normalizer=norm)
            cost = measure_dir(tmp, prefix="ethoedge_float", macs=macs, is_float=True, mcu=mcu)
            rows.append(("float32", {"cortex-m4": cost}))
    else:
        no_float = (f"(no float32 row: the float C variant has the raw input stage only, "
                    f"this student has {student.cfg.input!r})")  # fmt: skip
    h = student.cfg.hidden
    print(f"# ethoedge C cost on QEMU mps2-an386 (Cortex-M4F, DSP) and mps2-an385 (Cortex-M3), "
          f"arm-none-eabi-gcc -O2 ({source})")  # fmt: skip
    print(f"# H={h}, M={student.cfg.mlp}, C={student.n_classes}, L={L} samples, MACs={macs:,}")
    print(f"# time/energy (M4): {rows[0][1]['cortex-m4']['assumptions']}")
    print()
    print(
        "| model | M4 flash (B) = model + kernels | M4 RAM (B) = static + stack "
        "| M4 instructions | M4 instr/MAC | M3 flash (B) | M3 RAM (B) | M3 instructions "
        "| M3 instr/MAC | est. ms @64 MHz (M4) | est. uJ (M4) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, by_core in rows:
        c = by_core["cortex-m4"]
        flash = f"{c['flash_bytes']:,}"
        if c.get("flash_kernels_bytes"):
            flash += f" = {c['flash_model_bytes']:,} + {c['flash_kernels_bytes']:,}"
        m3 = by_core.get("cortex-m3")
        m3_cells = (
            f"{m3['flash_bytes']:,} | {m3['ram_bytes']:,} | {m3['instructions']:,} | "
            f"{m3['instructions_per_mac']:.2f}"
            if m3
            else "- | - | - | -"
        )
        print(
            f"| {name} | {flash} | {c['ram_bytes']:,} = {c['static_ram_bytes']} + "
            f"{c['stack_bytes']} | {c['instructions']:,} | {c['instructions_per_mac']:.2f} | "
            f"{m3_cells} | {c['est_time_ms']:.2f} | {c['est_energy_uj']:.1f} |"
        )
    if no_float:
        print(no_float)
    print()
    print("Two models in one firmware (W=8 as m8, W=16 as m16; one copy of the kernel library):")
    print()
    print("| core | m8 flash (B) | m16 flash (B) | kernels flash (B, once) | total flash (B) |")
    print("|---|---|---|---|---|")
    for t in cores:
        fw = firmware_row(qs, L, t)
        m = fw["models"]
        print(
            f"| {t} | {m['m8']['flash_bytes']:,} | {m['m16']['flash_bytes']:,} | "
            f"{fw['flash_kernels_bytes']:,} | {fw['flash_bytes']:,} |"
        )
    w8, w16 = rows[0][1]["cortex-m4"], rows[1][1]["cortex-m4"]
    print()
    print(
        f"targets on the M4: W=8 flash {w8['flash_bytes']:,} B <= 12 kB: "
        f"{'yes' if w8['flash_bytes'] <= 12 * 1024 else 'NO'}; RAM {w8['ram_bytes']:,} B <= 1 kB: "
        f"{'yes' if w8['ram_bytes'] <= 1024 else 'NO'}; {w8['instructions_per_mac']:.2f} "
        f"instructions/MAC <= 1.3: {'yes' if w8['instructions_per_mac'] <= 1.3 else 'NO'}; "
        f"W=16 {w16['instructions_per_mac']:.2f} instructions/MAC <= 1.8: "
        f"{'yes' if w16['instructions_per_mac'] <= 1.8 else 'NO'}"
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
