"""The experiment layer: one run of the method, as stages that flow one way.

- :mod:`~ethoedge.experiment.keys`: model identity (:class:`ModelKey`) and its names;
- :mod:`~ethoedge.experiment.folds`: the folds' windows and normalisers;
- :mod:`~ethoedge.experiment.jobs`: one training job per fold x seed x model, pure and
  resumable;
- :mod:`~ethoedge.experiment.executor`: jobs in this process, on local worker processes or on
  a Ray cluster;
- :mod:`~ethoedge.experiment.aggregate`: pure functions from predictions to :class:`Results`;
- :mod:`~ethoedge.experiment.deploy`: quantized folds, the deployment bundle, C export and
  verification;
- :mod:`~ethoedge.experiment.report`: the writers (``report.md``, ``results.json``, CSVs,
  plots);
- :mod:`~ethoedge.experiment.run`: :func:`run` sequences them;
  :mod:`~ethoedge.experiment.classify`: :func:`classify` for new recordings, with
  :mod:`~ethoedge.experiment.bouts` (bouts, daily budgets) and
  :mod:`~ethoedge.experiment.ethogram` (their pictures).
"""

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ethoedge.experiment.classify import ClassifyResult, classify
    from ethoedge.experiment.deploy import VerificationError
    from ethoedge.experiment.keys import ModelKey
    from ethoedge.experiment.run import run, run_windows

__all__ = ["ClassifyResult", "ModelKey", "VerificationError", "classify", "run", "run_windows"]

# Imported on first use (PEP 562): ``classify`` on new recordings needs neither the training
# stages nor scikit-learn, and importing them all costs seconds and hundreds of MB per process.
_HOME = {
    "ClassifyResult": "classify",
    "classify": "classify",
    "VerificationError": "deploy",
    "ModelKey": "keys",
    "run": "run",
    "run_windows": "run",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"{__name__}.{_HOME[name]}")
    for n, home in _HOME.items():  # every name of that submodule at once
        if home == _HOME[name]:
            globals()[n] = getattr(module, n)
    return globals()[name]


class _Package(types.ModuleType):
    """``classify`` and ``run`` are both functions and submodules: importing a submodule binds
    its name on the package, which would hide the function (and ``__getattr__`` with it).
    The package keeps the function under the name, as eager imports did; the submodules stay
    importable (``from ethoedge.experiment.run import ...``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOME and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
