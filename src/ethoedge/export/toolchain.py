"""Compilers, binutils and QEMU, each run as a subprocess with a timeout.

Targets: ``host`` (gcc), ``cortex-m4`` (arm-none-eabi-gcc, hard float, DSP; QEMU
``mps2-an386``) and ``cortex-m3`` (soft float, no DSP; QEMU ``mps2-an385``). The recipe is
``shared/notes/cortex-m4-qemu.md``; startup code, linker script, markers and the instruction
counting plugin are in ``ethoedge/export/templates/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ethoedge.errors import EthoedgeError

TEMPLATES = Path(__file__).parent / "templates"

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
TARGETS = ("host", "cortex-m4", "cortex-m3")


@dataclass(frozen=True)
class ArmTarget:
    """An emulated MCU: compiler flags and QEMU machine."""

    cpu_flags: tuple[str, ...]
    machine: str


ARM_TARGETS = {
    "cortex-m4": ArmTarget(
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), "mps2-an386"
    ),
    "cortex-m3": ArmTarget(("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), "mps2-an385"),
}


def which(tool: str) -> str | None:
    """Path of ``tool`` on PATH, or None."""
    return shutil.which(tool)


def have_arm() -> bool:
    """Whether the Arm cross compiler, size and QEMU are all installed."""
    return all(which(t) for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"))


def missing_arm_message() -> str:
    return (
        "arm-none-eabi-gcc / qemu-system-arm not found: install the Debian packages "
        "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm (`make toolchain` as root)"
    )


def run_tool(
    cmd: list[str], *, timeout: float = 120.0, cwd: str | Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise :class:`EthoedgeError` on failure or timeout."""
    if which(cmd[0]) is None:
        hint = missing_arm_message() if cmd[0].startswith(("arm-", "qemu")) else ""
        raise EthoedgeError(f"{cmd[0]} not found on PATH" + (f"; {hint}" if hint else ""))
    try:
        res = subprocess.run(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise EthoedgeError(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s") from e
    if check and res.returncode != 0:
        why = first_error(res.stderr or res.stdout)
        raise EthoedgeError(f"{Path(cmd[0]).name} failed (exit {res.returncode}): {why}")
    return res


def first_error(output: str) -> str:
    r"""The line of a tool's ``output`` that says what went wrong, for a one-line message: the
    first that mentions an error, else the last.

    >>> first_error("a.c: In function 'f':\na.c:3:9: error: expected expression\n    3 | x = ;")
    'a.c:3:9: error: expected expression'
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")


def compile_host(
    sources: list[Path],
    out: Path,
    *,
    include: list[Path] = (),  # type: ignore[assignment]
    opt: str = "-O2",
    extra: tuple[str, ...] = (),
    timeout: float = 120.0,
) -> Path:
    """Build a host executable with gcc and the strict flags."""
    cmd = ["gcc", *STRICT_FLAGS, opt, *extra, *(f"-I{p}" for p in include)]
    cmd += [str(s) for s in sources] + ["-o", str(out)]
    run_tool(cmd, timeout=timeout)
    return out


def compile_object(
    source: Path, out: Path, *, target: str, opt: str = "-O2", timeout: float = 60.0
) -> Path:
    """Compile one C file to an object for ``target`` (strict flags; for ``size``)."""
    if target == "host":
        cmd = ["gcc", *STRICT_FLAGS, opt, "-c", str(source), "-o", str(out)]
    else:
        t = ARM_TARGETS[target]
        cmd = ["arm-none-eabi-gcc", *t.cpu_flags, *STRICT_FLAGS, opt]
        cmd += ["-ffunction-sections", "-fdata-sections", "-c", str(source), "-o", str(out)]
    run_tool(cmd, timeout=timeout)
    return out


def compile_arm(
    sources: list[Path],
    out: Path,
    *,
    target: str,
    include: list[Path] = (),  # type: ignore[assignment]
    opt: str = "-O2",
    extra: tuple[str, ...] = (),
    support: tuple[str, ...] = ("startup.c",),
    libs: tuple[str, ...] = (),
    timeout: float = 120.0,
    removed_sections: list[tuple[str, str]] | None = None,
) -> Path:
    """Cross-compile and link an ELF for QEMU (startup code, linker script, nano + rdimon).

    ``sources`` are built with the strict flags into ``<out stem>.<source stem>.o`` beside
    ``out``; the ``support`` files from ``templates/`` (startup code, benchmark markers: inline
    assembly, not ISO C) without ``-pedantic``. ``removed_sections``, if given, receives the
    ``(section, object file)`` pairs the linker's garbage collection dropped.
    """
    t = ARM_TARGETS[target]
    base = ["arm-none-eabi-gcc", *t.cpu_flags, opt, "-g", "-ffunction-sections", "-fdata-sections"]
    inc = [f"-I{p}" for p in [*include, TEMPLATES]]
    objs = []
    for src in sources:
        obj = out.with_name(f"{out.stem}.{Path(src).stem}.o")
        run_tool(
            [*base, *STRICT_FLAGS, *extra, *inc, "-c", str(src), "-o", str(obj)], timeout=timeout
        )
        objs.append(str(obj))
    for name in support:
        key = (target, name, opt)
        with _LOCK:  # built once, also when several threads verify at once
            obj = _SUPPORT_OBJECTS.get(key)
            if obj is None or not obj.is_file():
                obj = _cache_dir() / f"{target}.{opt.lstrip('-')}.{Path(name).stem}.o"
                cmd = [*base, "-std=gnu99", "-Wall", "-Wextra", "-Werror", f"-I{TEMPLATES}"]
                run_tool([*cmd, "-c", str(TEMPLATES / name), "-o", str(obj)], timeout=timeout)
                _SUPPORT_OBJECTS[key] = obj
        objs.append(str(obj))
    link = [*base, "--specs=nano.specs", "--specs=rdimon.specs", "-nostartfiles"]
    link += ["-T", str(TEMPLATES / "mps2.ld"), "-Wl,--gc-sections", *objs, *libs, "-o", str(out)]
    if removed_sections is not None:
        link.append("-Wl,--print-gc-sections")
    res = run_tool(link, timeout=timeout)
    if removed_sections is not None:
        pat = re.compile(r"removing unused section '([^']+)' in file '([^']+)'")
        removed_sections.extend(pat.findall(res.stderr + res.stdout))
    return out


def run_qemu(
    elf: Path,
    *,
    target: str,
    plugin: Path | None = None,
    log: Path | None = None,
    hist: Path | None = None,
    timeout: float = 60.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an ELF on the target's QEMU board with semihosting; returns the finished process.

    With ``plugin`` (:func:`build_plugin`), ``hist`` also has it write executed instructions
    per address there. Semihosting file names (``fopen`` in the guest) are relative to
    ``cwd``."""
    t = ARM_TARGETS[target]
    cmd = ["qemu-system-arm", "-M", t.machine, "-nographic"]
    cmd += ["-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if plugin is not None:
        opts = f"{plugin},begin=bench_begin,end=bench_end" + (f",hist={hist}" if hist else "")
        cmd += ["-plugin", opts, "-d", "plugin"]
        if log is not None:
            cmd += ["-D", str(log)]
    return run_tool(cmd, timeout=timeout, check=False, cwd=cwd)


def section_sizes(obj: Path) -> dict[str, int]:
    """Section sizes in bytes of an ARM object or ELF (``arm-none-eabi-size -A``)."""
    res = run_tool(["arm-none-eabi-size", "-A", str(obj)], timeout=30)
    sizes: dict[str, int] = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def build_plugin() -> Path:
    """The instruction-counting TCG plugin, built once per process with the host gcc."""
    with _LOCK:
        out = _cache_dir() / "libinsn_count.so"
        if not out.is_file():
            src = TEMPLATES / "insn_count_plugin.c"
            cmd = ["gcc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", str(src)]
            run_tool([*cmd, "-o", str(out)], timeout=60)
        return out


# Startup/benchmark objects and the plugin do not depend on the model: build them once per
# process into a private temporary directory (removed at exit), under one lock (threads).
_SUPPORT_OBJECTS: dict[tuple[str, str, str], Path] = {}
_CACHE: list[tempfile.TemporaryDirectory[str]] = []
_LOCK = threading.RLock()


def _cache_dir() -> Path:
    with _LOCK:
        if not _CACHE:
            _CACHE.append(tempfile.TemporaryDirectory(prefix="ethoedge_toolchain_"))
        return Path(_CACHE[0].name)
