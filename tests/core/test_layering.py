"""The dependencies run one way: core at the bottom, the engines on it, the displays and tools on top."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncflow

SRC = Path(asyncflow.__file__).parent

#: Packages each layer may not import (directly or lazily, inside a function).
FORBIDDEN = {
    "core": ("monitor", "cli", "runner", "engine.task", "compat", "producers", "processors", "consumers"),
    "engine": ("monitor", "cli", "runner", "compat"),
}


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, resolved to ``asyncflow.x.y`` for relative imports."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module]) if node.module else ".".join(base)
            else:
                name = node.module or ""
            found.append(name)
    return found


def test_core_and_engine_do_not_import_the_layers_above_them() -> None:
    problems = []
    for layer, banned in FORBIDDEN.items():
        for path in sorted((SRC / layer).rglob("*.py")):
            for name in _imports(path):
                for top in banned:
                    if name == f"asyncflow.{top}" or name.startswith(f"asyncflow.{top}."):
                        problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert problems == []


def test_the_package_wires_the_live_display_into_the_core() -> None:
    from asyncflow.core import flow

    assert flow._progress_display is not None
