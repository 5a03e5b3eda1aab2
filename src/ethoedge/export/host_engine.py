"""The exported C compiled for this machine: the ``c`` engine of the inference API.

:func:`host_library` emits the quantized student's C (:func:`~ethoedge.export.emit_c`) and
adds the host-only batch kernels ``ethoedge_batch.{h,c}`` (shipped beside the kernel library):
windows go through the GRU in blocks of :data:`BATCH_BLOCK`, batch-major (gate accumulators
``[row][window]``, each weight broadcast across the block) so that the compiler vectorises
across windows, with the library's own gate update and head, giving the integers of
``<prefix>_classify``. It builds a shared library with the system ``gcc`` (``-O3``, no
machine-specific flags: integer results do not depend on them, and the library runs wherever
the cache is shared; on x86 the batch kernels' AVX2 versions are compiled function by
function and chosen at run time where the CPU has AVX2) and loads it with :mod:`ctypes`.
Libraries are cached per user, under
:func:`cache_dir`, keyed by a hash of every source, the flags and the compiler version, so a
model is compiled once per machine.

:meth:`HostLibrary.logits` splits a batch of windows across threads (a ctypes call releases the
GIL; the C has no mutable state outside the caller's buffers) and returns the integer logits,
bit-identical to :func:`ethoedge.quantize.reference.reference_logits`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.export import toolchain
from ethoedge.export.config import ExportConfig
from ethoedge.export.emit import KERNELS_DIR, emit_c
from ethoedge.io import atomic_path
from ethoedge.quantize.qmodel import QuantizedStudent

LIB_FLAGS = ("-std=c99", "-O3", "-fPIC", "-shared")
CACHE_ENV = "ETHOEDGE_CACHE_DIR"
MIN_WINDOWS_PER_THREAD = 64  # smaller slices are not worth a thread
BATCH_FILES = ("ethoedge_batch.h", "ethoedge_batch.c")  # host-only batch kernels
BATCH_BLOCK = 32  # ETHOEDGE_BATCH_BLOCK of ethoedge_batch.h: windows computed together

__all__ = ["CACHE_ENV", "LIB_FLAGS", "HostLibrary", "cache_dir", "host_library"]


def cache_dir() -> Path:
    """Where compiled libraries are kept: ``$ETHOEDGE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ethoedge``, else ``~/.cache/ethoedge``; libraries go in ``host_c/``."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "ethoedge") if xdg else str(Path.home() / ".cache" / "ethoedge")
    return Path(root) / "host_c"


def _batch_source(prefix: str) -> str:
    """The library's entry points: the model file (its ``static const`` model) in the same
    translation unit, and the batch kernels (``ethoedge_batch.h``) bound to it."""
    return f"""/* entry points of the ethoedge c engine: the model and its batch form */
#include "{prefix}.c"

#include "ethoedge_batch.h"

void *{prefix}_batch_new(void);
void {prefix}_batch_free(void *b);
int {prefix}_classify_many(const void *b, const int16_t *x, int32_t *scores, int64_t n);

void *{prefix}_batch_new(void)
{{
    return ethoedge_batch_new(&{prefix}_model);
}}

void {prefix}_batch_free(void *b)
{{
    ethoedge_batch_free((ethoedge_batch_t *)b);
}}

int {prefix}_classify_many(const void *b, const int16_t *x, int32_t *scores, int64_t n)
{{
    return ethoedge_classify_batch((const ethoedge_batch_t *)b, n, {prefix.upper()}_N_SAMPLES, x,
                                   scores);
}}
"""


def _require_gcc() -> None:
    if toolchain.which("gcc") is None:
        raise EthoedgeError(
            "the c engine compiles the exported C with gcc, which is not on PATH: install gcc "
            "(Debian/Ubuntu: apt install gcc) or use --engine int"
        )


@lru_cache(maxsize=1)
def _compiler_id() -> str:
    """The gcc version and target triple (part of the cache key)."""
    version = toolchain.run_tool(["gcc", "-dumpfullversion", "-dumpversion"], timeout=30)
    target = toolchain.run_tool(["gcc", "-dumpmachine"], timeout=30)
    return f"{version.stdout.strip()} {target.stdout.strip()} {platform.machine()}"


class HostLibrary:
    """One quantized student compiled for this machine (see the module docstring).

    Attributes:
        path: the shared library.
        prefix: the C prefix of its symbols (unique per model and window length).
        n_samples, n_classes: window length L and class count C.
    """

    def __init__(self, path: Path, prefix: str, n_samples: int, n_classes: int) -> None:
        self.path = path
        self.prefix = prefix
        self.n_samples = n_samples
        self.n_classes = n_classes
        self._lib = ctypes.CDLL(str(path))
        new = getattr(self._lib, f"{prefix}_batch_new")
        new.argtypes, new.restype = [], ctypes.c_void_p
        self._free = getattr(self._lib, f"{prefix}_batch_free")
        self._free.argtypes, self._free.restype = [ctypes.c_void_p], None
        fn = getattr(self._lib, f"{prefix}_classify_many")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = ctypes.c_int
        self._fn = fn
        self._batch = new()  # the model's weights in row-major order, read-only, shared
        if not self._batch:
            raise EthoedgeError(f"the c engine ran out of memory loading {path.name}")
        self._set_simd = self._lib.ethoedge_batch_set_simd
        self._set_simd.argtypes, self._set_simd.restype = (
            [ctypes.c_void_p, ctypes.c_int],
            ctypes.c_int,
        )
        self.set_simd(True)

    def set_simd(self, on: bool) -> bool:
        """Use the AVX2 kernels (where the CPU and the model allow them; the default) or the
        plain loops: the same integers either way. Returns whether AVX2 kernels now run;
        ``simd_matvec`` and ``simd_update`` say which. The library object is shared in the
        process (:func:`host_library`): not while another thread classifies with it."""
        kinds = int(self._set_simd(self._batch, int(bool(on))))
        self.simd_matvec, self.simd_update = bool(kinds & 1), bool(kinds & 2)
        self.simd = bool(kinds)
        return self.simd

    def __del__(self) -> None:
        batch = getattr(self, "_batch", None)
        if batch:
            self._free(batch)
            self._batch = None

    def logits(self, X_int16: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Integer logits ``(n, C)`` int64 of int16 windows ``(n, 3, L)``.

        Args:
            X_int16: model input from :func:`~ethoedge.quantize.reference.quantize_input`.
            threads: threads to split the windows across (default
                :func:`~ethoedge.models.device.cpu_threads`).
        """
        X = np.asarray(X_int16)
        L = self.n_samples
        if X.ndim != 3 or X.shape[1] != 3 or X.shape[2] != L:
            raise ConfigError(f"the c engine takes windows (n, 3, {L}), got shape {X.shape}")
        if X.dtype != np.int16:
            raise ConfigError(f"the c engine takes int16 windows, got {X.dtype}")
        xs = np.ascontiguousarray(X.transpose(0, 2, 1))  # (n, L, 3): samples-major
        n = len(xs)
        out = np.zeros((n, self.n_classes), dtype=np.int32)
        if threads is None:
            from ethoedge.models.device import cpu_threads

            threads = cpu_threads()
        k = max(1, min(int(threads), n // MIN_WINDOWS_PER_THREAD))
        bounds = [n * i // k for i in range(k + 1)]
        x0, o0 = xs.ctypes.data, out.ctypes.data
        step_x, step_o = xs.strides[0], out.strides[0]

        def run(i: int) -> int:
            lo, hi = bounds[i], bounds[i + 1]
            if hi <= lo:
                return 0
            return int(self._fn(self._batch, x0 + lo * step_x, o0 + lo * step_o, hi - lo))

        if k == 1:
            codes = [run(0)]
        else:
            with ThreadPoolExecutor(max_workers=k) as pool:
                codes = list(pool.map(run, range(k)))
        if any(codes):
            raise EthoedgeError(f"the c engine ran out of memory on {n} windows")
        return out.astype(np.int64)


_LOADED: dict[tuple[str, int, str], HostLibrary] = {}
_LOCK = threading.Lock()


def host_library(
    qmodel: QuantizedStudent, n_samples: int, *, directory: str | Path | None = None
) -> HostLibrary:
    """The shared library of ``qmodel`` for windows of ``n_samples``: loaded, or compiled once.

    Args:
        qmodel: a quantized student the C export supports (W = 8 or 16).
        n_samples: window length L.
        directory: the library cache (default :func:`cache_dir`).

    Raises:
        EthoedgeError: gcc not found, the model cannot be exported, or the build failed.
    """
    if not isinstance(qmodel, QuantizedStudent):
        raise ConfigError(f"the c engine needs a quantized student, got {type(qmodel).__name__}")
    prefix = f"ethoedge_h{qmodel.checksum()[:16]}"
    where = Path(directory) if directory is not None else cache_dir()
    key = (prefix, int(n_samples), str(where))
    with _LOCK:
        lib = _LOADED.get(key)
        if lib is None:
            lib = _build(qmodel, int(n_samples), prefix, where)
            _LOADED[key] = lib
    return lib


def _build(q: QuantizedStudent, n_samples: int, prefix: str, where: Path) -> HostLibrary:
    _require_gcc()  # first: a missing gcc is the one error the user sees
    compiler = _compiler_id()
    cfg = ExportConfig(prefix=prefix, n_samples=n_samples, example_main=False)
    files = {k: v for k, v in emit_c(q, cfg).items() if k != "main.c"}
    files.update({name: (KERNELS_DIR / name).read_text() for name in BATCH_FILES})
    files[f"{prefix}_batch.c"] = _batch_source(prefix)
    blob = json.dumps(
        {"files": sorted(files.items()), "flags": LIB_FLAGS, "compiler": compiler},
        sort_keys=True,
    ).encode()
    digest = hashlib.sha256(blob).hexdigest()[:24]
    lib_path = where / f"{prefix}_L{n_samples}_{digest}.so"
    if not lib_path.is_file():
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ethoedge_host_c_") as tmp:
            src = Path(tmp)
            for name, text in files.items():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                (src / name).write_text(text)
            model_c = f"{prefix}.c"  # compiled inside {prefix}_batch.c, which includes it
            sources = [
                str(src / name) for name in sorted(files) if name.endswith(".c") and name != model_c
            ]
            with atomic_path(lib_path) as out:
                cmd = ["gcc", *LIB_FLAGS, f"-I{src}", *sources, "-o", str(out)]
                toolchain.run_tool(cmd, timeout=300)
    return HostLibrary(lib_path, prefix, n_samples, q.n_classes)
