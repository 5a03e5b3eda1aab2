"""A run's report: markdown built from sections, written atomically with its figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ethoedge.io import atomic_write_text


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; floats are shown with 3 decimals.

    >>> print(md_table(["a", "b"], [[1, 0.5]]))
    | a | b |
    |---|---|
    | 1 | 0.500 |
    """

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "nan" if v != v else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Report:
    """A markdown report: a title and ordered sections (later stages append their own)."""

    title: str
    sections: list[tuple[str, str]] = field(default_factory=list)

    def add(self, heading: str, body: str) -> None:
        """Append a section (``## heading`` followed by ``body``)."""
        self.sections.append((heading, body.strip()))

    def render(self) -> str:
        parts = [f"# {self.title}", ""]
        for heading, body in self.sections:
            parts += [f"## {heading}", "", body, ""]
        return "\n".join(parts)

    def write(self, path: str | Path) -> Path:
        """Write the rendered markdown atomically."""
        return atomic_write_text(path, self.render())
