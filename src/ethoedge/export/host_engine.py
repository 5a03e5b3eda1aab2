"""The exported C compiled for this machine: the ``c`` engine of the inference API.

:func:`host_library` emits the quantized student's C (:func:`~ethoedge.export.emit_c`) with a
small batch entry point that calls ``<prefix>_classify`` on ``n`` windows one after another,
builds a shared library with the system ``gcc`` (``-O3``, no machine-specific flags: integer
results do not depend on them, and the library runs wherever the cache is shared) and loads it
with :mod:`ctypes`. Libraries are cached per user, under :func:`cache_dir`, keyed by a hash of
every source, the flags and the compiler version, so a model is compiled once per machine.

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
from ethoedge.export.emit import emit_c
from ethoedge.io import atomic_path
from ethoedge.quantize.qmodel import QuantizedStudent

LIB_FLAGS = ("-std=c99", "-O3", "-fPIC", "-shared")
CACHE_ENV = "ETHOEDGE_CACHE_DIR"
MIN_WINDOWS_PER_THREAD = 64  # smaller slices are not worth a thread

__all__ = ["CACHE_ENV", "LIB_FLAGS", "HostLibrary", "cache_dir", "host_library"]


def cache_dir() -> Path:
    """Where compiled libraries are kept: ``$ETHOEDGE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ethoedge``, else ``~/.cache/ethoedge``; libraries go in ``host_c/``."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "ethoedge") if xdg else str(Path.home() / ".cache" / "ethoedge")
    return Path(root) / "host_c"


def _batch_source(prefix: str, n_samples: int, n_classes: int) -> str:
    """The batch entry point: windows samples-major, ``(n, L, 3)`` int16 in, ``(n, C)`` out."""
    return f"""/* batch entry point of the ethoedge c engine: {prefix}_classify on each window */
#include <stdint.h>

int {prefix}_classify(const int16_t x[{n_samples}][3], int32_t scores[{n_classes}]);
void {prefix}_classify_batch(const int16_t *x, int32_t *scores, int64_t n);

void {prefix}_classify_batch(const int16_t *x, int32_t *scores, int64_t n)
{{
    int64_t i;
    for (i = 0; i < n; ++i) {{
        (void){prefix}_classify((const int16_t(*)[3])(x + i * {n_samples * 3}),
                              scores + i * {n_classes});
    }}
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
        fn = getattr(self._lib, f"{prefix}_classify_batch")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
        self._fn = fn

    def logits(self, X_int16: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Integer logits ``(n, C)`` int64 of int16 windows ``(n, 3, L)``.

        Args:
            X_int16: model input from :func:`~ethoedge.quantize.reference.quantize_input`.
            threads: threads to split the windows across (default ``torch.get_num_threads()``).
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
            import torch

            threads = torch.get_num_threads()
        k = max(1, min(int(threads), n // MIN_WINDOWS_PER_THREAD))
        bounds = [n * i // k for i in range(k + 1)]
        x0, o0 = xs.ctypes.data, out.ctypes.data
        step_x, step_o = xs.strides[0], out.strides[0]

        def run(i: int) -> None:
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:
                self._fn(x0 + lo * step_x, o0 + lo * step_o, hi - lo)

        if k == 1:
            run(0)
        else:
            with ThreadPoolExecutor(max_workers=k) as pool:
                list(pool.map(run, range(k)))
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
    files[f"{prefix}_batch.c"] = _batch_source(prefix, n_samples, q.n_classes)
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
            sources = [str(src / name) for name in sorted(files) if name.endswith(".c")]
            with atomic_path(lib_path) as out:
                cmd = ["gcc", *LIB_FLAGS, f"-I{src}", *sources, "-o", str(out)]
                toolchain.run_tool(cmd, timeout=300)
    return HostLibrary(lib_path, prefix, n_samples, q.n_classes)
