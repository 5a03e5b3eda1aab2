"""CLI commands (registered on import)."""

from __future__ import annotations

from ethoedge.cli import app  # noqa: F401
