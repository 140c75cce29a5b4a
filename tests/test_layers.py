"""The package's shape, kept: imports only go down the layers (core <- engine, gcp <- openai <-
lifecycle <- http), there is no import cycle, and no module is much over 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sglang_hathora"
# Folder -> layer; modules directly in the package are the core every layer may use.
LAYERS = {"": 0, "engine": 1, "gcp": 1, "openai": 2, "lifecycle": 3, "http": 4}
MAX_LINES = 300


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "_cpu_shims" in path.parts:
            continue  # imported by SGLang's children, not by us
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules this file imports, at any depth (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sglang_hathora"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
    return found


def layer(module: str) -> tuple[int, str]:
    parts = module.split(".")
    folder = parts[1] if len(parts) > 2 else ""
    return LAYERS[folder], folder


def test_imports_only_go_down_the_layers() -> None:
    known = modules()
    upward = []
    for module, path in known.items():
        (rank, folder) = layer(module)
        for target in imports(path, known) - {module}:
            (target_rank, target_folder) = layer(target)
            if target_rank > rank or (target_rank == rank and target_folder != folder):
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_no_import_cycle() -> None:
    known = modules()
    edges = {module: imports(path, known) - {module} for module, path in known.items()}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        assert module not in stack, " -> ".join([*stack[stack.index(module) :], module])
        if module in done:
            return
        for target in edges[module]:
            visit(target, [*stack, module])
        done.add(module)

    for module in edges:
        visit(module, [])


def test_no_module_much_over_300_lines() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long
