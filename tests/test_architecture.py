"""The source rules of docs/ARCHITECTURE.md, checked on the code so that they cannot regress: no
string dispatch of forms, no caches keyed on ``id()``, no private names imported across files, no
import cycles between modules (imports inside functions included), and no user-error exceptions
caught to try the next option in the csl backend's plan and lower path."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"kernelc": "kernelc", "backends": "kernelc.backends", "runtime": "kernelc.runtime"}
FORMS = ("Map", "Contraction", "Reduction", "Lookup", "Scalar")
FORM_WORDS = {*FORMS, *(f.lower() for f in FORMS), "stencil"}


def _modules() -> dict[str, Path]:
    """Every audited module's dotted name and its file."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}
KNOWN = set(MODULES) | {"kernelc.frontends"}


def _where(name: str, node: ast.AST) -> str:
    return f"{MODULES[name].relative_to(ROOT)}:{node.lineno}"


def _type_checking(tree: ast.Module) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt)}
    return lines


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(module, imported name or None) of each name an import statement binds."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if not MODULES[module].name == "__init__.py":
            package.pop()
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append((sub, None) if sub in KNOWN else (base, alias.name))
    return out


def test_the_audit_sees_the_project():
    assert "kernelc.backends.csl.policy" in MODULES
    assert "kernelc.runtime.fabric.fabric" in MODULES
    assert len(MODULES) > 100


def test_no_import_cycles():
    graph = nx.DiGraph()
    for name, tree in TREES.items():
        graph.add_node(name)
        typing_only = _type_checking(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in typing_only:
                for target, _ in _imported(name, node):
                    if target in MODULES and target != name:
                        graph.add_edge(name, target)
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []


def test_no_private_names_across_files():
    found = []
    for name, tree in TREES.items():
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for (target, item), alias in zip(_imported(name, node), node.names, strict=True):
                    if target not in KNOWN:
                        continue
                    if item is None:
                        aliases[alias.asname or alias.name.split(".")[0]] = target
                    elif item.startswith("_") and not item.startswith("__"):
                        found.append(f"{_where(name, node)}: {target}.{item}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{_where(name, node)}: {aliases[node.value.id]}.{node.attr}")
    assert found == []


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                break
    return names


def test_no_id_keyed_caches():
    """``id()`` keys only in containers local to one call (an object's id is reused once it
    dies, so a key that outlives the call names whatever comes next)."""
    found = []
    for name, tree in TREES.items():
        globals_ = _module_names(tree)
        for node in ast.walk(tree):
            for container, key in _keyed(node):
                if not (isinstance(key, ast.Call) and ast.unparse(key.func) == "id"):
                    continue
                held = isinstance(container, ast.Attribute) or (
                    isinstance(container, ast.Name) and container.id in globals_
                )
                if held:
                    found.append(f"{_where(name, node)}: {ast.unparse(node)}")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                "cache" in ast.unparse(d) for d in node.decorator_list
            ):
                if any(
                    isinstance(n, ast.Call) and ast.unparse(n.func) == "id" for n in ast.walk(node)
                ):
                    found.append(f"{_where(name, node)}: id() in the cached {node.name}")
    assert found == []


def _keyed(node: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    """(container, key) of subscripts, membership tests and keyed method calls."""
    if isinstance(node, ast.Subscript):
        return [(node.value, node.slice)]
    if isinstance(node, ast.Compare):
        return [
            (right, node.left)
            for op, right in zip(node.ops, node.comparators, strict=True)
            if isinstance(op, ast.In | ast.NotIn)
        ]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "setdefault", "add", "pop", "discard", "remove")
        and node.args
    ):
        return [(node.func.value, node.args[0])]
    return []


def test_no_string_dispatch_of_forms():
    """Forms are told apart by type (a registry keyed by the form's class), never by a name."""
    found = []
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                words = [s.value for s in sides if isinstance(s, ast.Constant)]
                named = any("__name__" in ast.unparse(s) or "form" in ast.unparse(s) for s in sides)
                if named and any(w in FORM_WORDS for w in words):
                    found.append(f"{_where(name, node)}: {ast.unparse(node)}")
                if any(isinstance(s, ast.Attribute) and s.attr == "__name__" for s in sides):
                    if any(isinstance(w, str) and w in FORMS for w in words):
                        found.append(f"{_where(name, node)}: {ast.unparse(node)}")
            if isinstance(node, ast.Match) and "form" in ast.unparse(node.subject):
                for case in node.cases:
                    if any(
                        isinstance(n, ast.Constant) and n.value in FORM_WORDS
                        for n in ast.walk(case.pattern)
                    ):
                        found.append(f"{_where(name, case.pattern)}: case {case.pattern}")
    assert found == []


CSL_PLAN_PATH = ("backends/csl", "kernelc/forms", "kernelc/csl")


@pytest.mark.parametrize("folder", CSL_PLAN_PATH)
def test_no_user_errors_caught_to_try_the_next_option(folder):
    """csl's lowerings answer "not this task" and "not this grid" with values (Refusal, Misfit);
    a user error is raised once, at the end, and never caught on the way."""
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                if any(word in caught for word in ("KernelcError", "Unsupported", "Exception")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: except {caught}")
    assert found == []
