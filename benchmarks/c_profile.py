"""Where the instructions of one classification go on the emulated Cortex-M4 (or M3): executed
instructions per function of the exported student, from a per-address count.

Builds the same firmware as ``benchmarks/c_cost.py`` (the model, the kernels it names, the
cost harness: one classification between markers) at ``--bits`` and runs it once on QEMU with
the instruction-counting plugin's ``hist=`` option, which counts every executed address; the
counts are mapped to functions with ``arm-none-eabi-nm`` (static functions the compiler kept
apart are listed by their own names; inlined code counts in its caller). With ``--annotate
FUNCTION`` the function's disassembly is printed with each instruction's count (the hot loops
and the bookkeeping around them). The counts cover the whole run: start-up, the stack painting
of the harness and one classification.

Usage::

    python benchmarks/c_profile.py --bits 16                # the default student (seeded)
    python benchmarks/c_profile.py --bits 8 --bundle runs/demo/model
    python benchmarks/c_profile.py --bits 16 --annotate ethoedge_matvec_s16
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

from c_cost import bundle_models, default_models
from ethoedge.export import export_c, toolchain
from ethoedge.export.config import ExportConfig
from ethoedge.export.cost import _cost_main
from ethoedge.export.verify import c_sources


def _symbols(elf: Path) -> list[tuple[int, int, str]]:
    out = toolchain.run_tool(["arm-none-eabi-nm", "-S", str(elf)], timeout=30).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() == "t":
            syms.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return sorted(syms)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bits", type=int, choices=(8, 16), default=8)
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle (RUN/model)")
    ap.add_argument("--target", choices=("cortex-m4", "cortex-m3"), default="cortex-m4")
    ap.add_argument("--annotate", default=None, help="print this function's disassembly")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    if not toolchain.have_arm():
        print(toolchain.missing_arm_message(), file=sys.stderr)
        return 2
    _, _, qs, n_samples = bundle_models(args.bundle)[:4] if args.bundle else default_models()
    with tempfile.TemporaryDirectory(prefix="ethoedge_profile_") as tmp:
        d = Path(tmp)
        export_c(qs[args.bits], d, ExportConfig(n_samples=n_samples))
        (d / "cost_main.c").write_text(_cost_main(["ethoedge_model"], is_float=False))
        keep = {"ethoedge_model.c", "ethoedge_kernels.c"}
        sources = [s for s in c_sources(d) if s.name in keep] + [d / "cost_main.c"]
        elf = d / "profile.elf"
        toolchain.compile_arm(sources, elf, target=args.target, include=[d], opt="-O2",
                              support=("startup.c", "bench.c"))  # fmt: skip
        hist = d / "hist.txt"
        plugin = toolchain.build_plugin()
        res = toolchain.run_qemu(elf, target=args.target, plugin=plugin, log=d / "counts.log",
                                 hist=hist, timeout=120)  # fmt: skip
        if res.returncode != 0 or not hist.is_file():
            print(f"profile run failed: {res.stderr[-400:]}", file=sys.stderr)
            return 1
        counts = {int(a, 16): int(c) for a, c in (ln.split() for ln in hist.open())}
        syms = _symbols(elf)
        by_fn: collections.Counter[str] = collections.Counter()
        for addr, c in counts.items():
            name = next((n for s, z, n in syms if s <= addr < s + z), "(other)")
            by_fn[name] += c
        total = sum(counts.values())
        print(f"# {args.target}, W={args.bits}, "
              f"{args.bundle or 'default student, seeded weights'}: {total:,} instructions "
              "executed in the run (start-up, harness and one classification)")  # fmt: skip
        print("| function | instructions | share |")
        print("|---|---:|---:|")
        for name, c in by_fn.most_common(args.top):
            print(f"| {name} | {c:,} | {100 * c / total:.1f}% |")
        if args.annotate:
            dis = toolchain.run_tool(
                ["arm-none-eabi-objdump", "-d", "--no-show-raw-insn",
                 f"--disassemble={args.annotate}", str(elf)], timeout=30
            ).stdout  # fmt: skip
            print()
            for line in dis.splitlines():
                head = line.split(":")[0].strip()
                try:
                    addr = int(head, 16)
                except ValueError:
                    continue
                if line.startswith(" "):
                    print(f"{counts.get(addr, 0):>10,}  {line.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
