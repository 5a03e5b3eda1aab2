"""What a fresh install gets: every package that ``src/`` imports is declared in
``pyproject.toml``, and ``requirements.lock`` pins every declared dependency at a version its
range allows, the versions the test environment was installed with."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ethoedge"
LOCK = ROOT / "requirements.lock"
PACKAGE = "ethoedge"


def declared_requirements() -> list[Requirement]:
    """Core and optional dependencies of ``pyproject.toml``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def imported_modules(source: str) -> set[str]:
    """Top-level names of the absolute imports in ``source``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def undeclared_imports(sources: dict[str, str], declared: set[str]) -> dict[str, str]:
    """``{module: file}`` for every third-party module imported in ``sources`` (``{file: text}``)
    whose distribution is not among ``declared`` (canonical names). A module no installed
    distribution provides counts as undeclared."""
    providers = metadata.packages_distributions()
    bad: dict[str, str] = {}
    for file, text in sorted(sources.items()):
        for mod in sorted(imported_modules(text)):
            if mod == PACKAGE or mod in sys.stdlib_module_names or mod == "__future__":
                continue
            dists = {canonicalize_name(d) for d in providers.get(mod, [])}
            if not dists & declared:
                bad.setdefault(mod, file)
    return bad


def test_src_imports_only_declared_packages():
    declared = {canonicalize_name(r.name) for r in declared_requirements()}
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in sorted(SRC.rglob("*.py"))}
    assert len(sources) > 20
    assert undeclared_imports(sources, declared) == {}


def test_undeclared_import_is_caught():
    declared = {canonicalize_name(r.name) for r in declared_requirements()}
    src = "import numpy as np\nfrom ethoedge import errors\nimport json\n"
    assert undeclared_imports({"ok.py": src}, declared) == {}
    src += "def f():\n    import click\n    from yaml_but_not import x\n"
    assert undeclared_imports({"bad.py": src}, declared) == {
        "click": "bad.py",
        "yaml_but_not": "bad.py",
    }


def locked_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_lock_pins_every_declared_dependency_within_its_range():
    pins = locked_versions()
    assert len(pins) > 20
    for req in declared_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK.name}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {req.name}=={pins[name]}, outside pyproject's {req}: run `make lock`"
        )


def test_environment_was_installed_from_the_lock():
    if not (ROOT / ".venv").is_dir() or not sys.prefix.startswith(str(ROOT / ".venv")):
        pytest.skip("not running in the project's .venv (make test installs it from the lock)")
    drift = {}
    for name, version in locked_versions().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            drift[name] = (version, None)
            continue
        if Version(installed).public != Version(version).public:
            drift[name] = (version, installed)
    assert drift == {}, f"installed versions differ from {LOCK.name} (locked, installed)"
