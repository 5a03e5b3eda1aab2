"""Where models run, and with how many CPU threads; nothing here imports PyTorch unless it
must (a CPU-only PyTorch build is recognised from its version file)."""

from __future__ import annotations

import ast
import functools
import glob
import importlib.util
import os
import sys
from pathlib import Path

from ethoedge.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; validates the name."""
    if device not in DEVICES:
        raise ConfigError(f"unknown device '{device}' (auto, cpu or cuda)")
    if device == "cpu":
        return "cpu"
    available = cuda_available()
    if device == "cuda" and not available:
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    return "cuda" if available else "cpu"


def cuda_available() -> bool:
    """Whether PyTorch can use a GPU here. Without importing PyTorch (about 1.3 s) where the
    answer is no anyway: a PyTorch built without GPU support (read from its
    ``torch/version.py``), or a Linux machine without a GPU driver's device files (NVIDIA's
    ``/dev/nvidia*``, AMD's ``/dev/kfd``)."""
    if "torch" not in sys.modules and (not torch_gpu_build() or not gpu_device_files()):
        return False
    import torch

    return bool(torch.cuda.is_available())


def gpu_device_files() -> bool:
    """Whether a GPU driver's device files are present (Linux; True elsewhere: unknown)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/kfd")


@functools.cache
def torch_gpu_build() -> bool:
    """Whether the installed PyTorch was built for CUDA or ROCm (its version file names a
    CUDA or HIP version); True where that cannot be read (then PyTorch is asked)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version_py = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        tree = ast.parse(version_py.read_text())
    except (OSError, SyntaxError, ValueError):
        return True
    values: dict[str, object] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and value is not None:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                values[target.id] = True  # computed: assume it names a version
    if "cuda" not in values and "hip" not in values:
        return True
    return bool(values.get("cuda") or values.get("hip"))


def set_cpu_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for model computations in this process: PyTorch's
    intra-op threads (now if PyTorch is loaded, else when it is: through
    ``OMP_NUM_THREADS``), the BLAS library's (now if NumPy is loaded, else through
    ``OPENBLAS_NUM_THREADS``) and the NumPy engines' threads (:func:`cpu_threads`)."""
    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def cpu_threads() -> int:
    """CPU threads for model computations: PyTorch's intra-op count where PyTorch is loaded,
    else ``OMP_NUM_THREADS`` where set, else the CPUs this process may run on."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
