"""The package's import graph: no module imports itself through others (no cycle anywhere in
``src/ethoedge``), and the stage layering of pyproject.toml's import-linter contracts holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def find_cycle(graph: grimp.ImportGraph, modules: set[str]) -> list[str] | None:
    """One import cycle among ``modules`` (as a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.find_modules_directly_imported_by(m) & modules):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(modules):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle_in_the_package():
    graph = grimp.build_graph("ethoedge")
    modules = set(graph.modules)
    assert len(modules) > 40
    assert find_cycle(graph, modules) is None


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    assert find_cycle(graph, {"p.a", "p.b", "p.c"}) is None
    graph.add_import(importer="p.c", imported="p.a")
    assert find_cycle(graph, {"p.a", "p.b", "p.c"}) == ["p.a", "p.b", "p.c", "p.a"]


def test_layering_contracts_hold():
    exe = Path(sys.executable).parent / "lint-imports"
    cmd = [str(exe) if exe.is_file() else shutil.which("lint-imports") or "lint-imports"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout
