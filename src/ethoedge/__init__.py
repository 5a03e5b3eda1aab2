"""ethoedge: animal behaviour classification from accelerometry, small and exact enough for an MCU.

Stages (one package each, data flows one way):
``data`` -> ``models`` -> ``distill`` -> ``quantize`` -> ``export`` -> ``evaluate``;
``pipeline`` and ``cli`` sit on top.
"""

__version__ = "0.1.0"

from ethoedge.errors import EthoedgeError

__all__ = ["EthoedgeError", "__version__"]
