"""The package's architecture rules, read from the source: no folder imports from a folder that
imports it back (``if __name__ == "__main__":`` blocks included), nothing in the package imports
the plugin manifest, and the command line lives in cli/ only."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hftrainer_mogents"
NAME = PACKAGE.name
# the plugin manifest (the pyproject entry point): like llm's default_plugins it imports the
# library and is imported by nothing in it (the loader registers it by name), so it is a unit of
# its own rather than part of zoo/
MANIFEST = f"{NAME}.zoo.plugin"


def _unit(module: str) -> str:
    """``hftrainer_mogents.evaluation.hml263.x`` -> ``evaluation`` (a folder or a top module);
    the plugin manifest is ``zoo.plugin``."""
    if module == MANIFEST:
        return "zoo.plugin"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(tree: ast.AST) -> list[str]:
    """Every imported module of ``tree``, those inside functions and inside
    ``if __name__ == "__main__":`` blocks included (running a module as a script imports them
    too)."""
    found: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == NAME:  # `from hftrainer_mogents import artifact`
                found += [f"{NAME}.{alias.name}" for alias in node.names]
            elif node.module == f"{NAME}.zoo":  # `from hftrainer_mogents.zoo import plugin`
                found += [f"{NAME}.zoo.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
        stack.extend(ast.iter_child_nodes(node))
    return [m for m in found if m == NAME or m.startswith(NAME + ".")]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _folder_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> the files importing it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        for module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _unit(module)
            if target != source:
                graph[source][target].append(str(path.relative_to(PACKAGE)))
    return graph


def test_no_folder_imports_from_a_folder_that_imports_it_back():
    graph = _folder_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            unit = todo.pop()
            if unit == goal:
                return True
            if unit not in seen:
                seen.add(unit)
                todo.extend(graph.get(unit, {}))
        return False

    cycles = [
        f"{a} -> {b} ({', '.join(files)}) and back"
        for a, targets in graph.items()
        for b, files in targets.items()
        if reaches(b, a)
    ]
    assert not cycles, "\n".join(cycles)


def test_the_rules_see_a_cycle():
    """The check is not vacuous: the package has cross-folder imports, and a made-up back edge
    is found."""
    graph = _folder_graph()
    assert "convert" in graph["cli"] and "evaluation" in graph["convert"]
    tree = ast.parse("def f():\n    from hftrainer_mogents.cli import cli\n")
    assert _imports(tree) == ["hftrainer_mogents.cli"]
    guarded = ast.parse("if __name__ == '__main__':\n    from hftrainer_mogents.cli import x\n")
    assert _imports(guarded) == ["hftrainer_mogents.cli"]
    manifest = ast.parse("def f():\n    from hftrainer_mogents.zoo import plugin, specs\n")
    assert [_unit(m) for m in _imports(manifest)] == ["zoo.plugin", "zoo"]


def test_nothing_in_the_package_imports_the_plugin_manifest():
    """Core never reads the manifest: the manifest imports the library (its benchmark's
    published numbers included), the loader registers it by name."""
    importers = [
        f"{source} ({', '.join(files)})"
        for source, targets in _folder_graph().items()
        for target, files in targets.items()
        if target == "zoo.plugin"
    ]
    assert not importers, "\n".join(importers)
    from hftrainer_mogents.zoo import loader

    assert loader.OWN_PLUGIN == MANIFEST


def test_command_line_parsing_lives_in_cli_only():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        for module in _imports_any(ast.parse(path.read_text(encoding="utf-8"))):
            if module.split(".")[0] in ("argparse", "click"):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not offenders, "\n".join(offenders)


def _imports_any(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names
