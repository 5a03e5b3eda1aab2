"""ethoedge.export: the quantized student as allocation-free C, verified and costed.

- :func:`emit_c` / :func:`export_c`: C99 module from a :class:`QuantizedStudent`.
- :func:`export_float_c`: the float32 student in C (cost comparison only).
- :func:`verify_c`: run the C (host gcc, or QEMU Cortex-M4/M3) and compare with expected logits.
- :func:`measure_cost`: flash, RAM, stack, instructions, time and energy estimates.
- :func:`export_bundle` / :func:`verify_export`: the same for a model bundle (CLI).
- :mod:`ethoedge.export.host_engine`: the C as a cached host shared library (the ``c``
  inference engine, :func:`~ethoedge.export.host_engine.host_library`).
"""

from ethoedge.export.config import ExportConfig
from ethoedge.export.cost import measure_cost
from ethoedge.export.deploy import export_bundle, verify_export
from ethoedge.export.emit import emit_c, export_c
from ethoedge.export.emit_float import export_float_c
from ethoedge.export.verify import VerifyResult, verify_c

__all__ = [
    "ExportConfig",
    "VerifyResult",
    "emit_c",
    "export_bundle",
    "export_c",
    "export_float_c",
    "measure_cost",
    "verify_c",
    "verify_export",
]
