"""The source rules of docs/ARCHITECTURE.md, checked on the code so that they cannot regress: no
string dispatch of forms, no caches keyed on ``id()``, no private names imported across files, no
import cycles between modules (imports inside functions included), and no user-error exceptions
caught to try the next option in the csl backend's plan and lower path."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "kernelc": "kernelc",
    "frontends": "kernelc.frontends",
    "backends": "kernelc.backends",
    "runtime": "kernelc.runtime",
}
OPENMP = "kernelc.frontends.omp"
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


@dataclass(frozen=True)
class Code:
    """The modules audited: each one's syntax tree, file label and whether it is a package."""

    trees: dict[str, ast.Module]
    labels: dict[str, str]
    packages: frozenset[str]

    @staticmethod
    def of(sources: dict[str, str], packages: frozenset[str] = frozenset()) -> Code:
        trees = {name: ast.parse(text) for name, text in sources.items()}
        return Code(trees, {name: name for name in sources}, packages)

    def where(self, name: str, node: ast.AST) -> str:
        return f"{self.labels[name]}:{node.lineno}"

    @property
    def known(self) -> set[str]:
        return set(self.trees) | {"kernelc.frontends"}


MODULES = _modules()
PROJECT = Code(
    {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()},
    {name: str(path.relative_to(ROOT)) for name, path in MODULES.items()},
    frozenset(name for name, path in MODULES.items() if path.name == "__init__.py"),
)


def _type_checking(tree: ast.Module) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt)}
    return lines


def _imported(
    code: Code, module: str, node: ast.Import | ast.ImportFrom
) -> list[tuple[str, str | None]]:
    """(module, imported name or None) of each name an import statement binds."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if module not in code.packages:
            package.pop()
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append((sub, None) if sub in code.known else (base, alias.name))
    return out


def import_cycles(code: Code) -> list[list[str]]:
    """Modules that import each other, directly or around a loop (imports in functions too)."""
    graph = nx.DiGraph()
    for name, tree in code.trees.items():
        graph.add_node(name)
        typing_only = _type_checking(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in typing_only:
                for target, _ in _imported(code, name, node):
                    if target in code.trees and target != name:
                        graph.add_edge(name, target)
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(code: Code) -> list[str]:
    """Private names of one module used by another (imported, or read off the module)."""
    found = []
    for name, tree in code.trees.items():
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                pairs = zip(_imported(code, name, node), node.names, strict=True)
                for (target, item), alias in pairs:
                    if target not in code.known:
                        continue
                    if item is None:
                        aliases[alias.asname or alias.name.split(".")[0]] = target
                    elif _private(item):
                        found.append(f"{code.where(name, node)}: {target}.{item}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                found.append(f"{code.where(name, node)}: {aliases[node.value.id]}.{node.attr}")
    return found


def test_the_audit_sees_the_project():
    assert "kernelc.backends.csl.policy" in MODULES
    assert "kernelc.runtime.fabric.fabric" in MODULES
    assert len(MODULES) > 100


def test_no_import_cycles():
    assert import_cycles(PROJECT) == []


def test_an_import_cycle_through_a_local_import_is_found():
    code = Code.of(
        {
            "kernelc.a": "from kernelc.b import g\nimport kernelc.c\n",
            "kernelc.b": "def g():\n    from kernelc import a\n    return a\n",
            "kernelc.c": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kernelc.a\n"
            ),
        },
        frozenset({"kernelc"}),
    )
    assert import_cycles(code) == [["kernelc.a", "kernelc.b"]]


def test_no_private_names_across_files():
    assert private_imports(PROJECT) == []


def test_private_names_across_files_are_found():
    code = Code.of(
        {
            "kernelc.a": "def _merge():\n    pass\n",
            "kernelc.b": "from kernelc.a import _merge\n",
            "kernelc.c": "from kernelc import a\nx = a._merge\n",
            "kernelc.d": "import numpy\ny = numpy._private\n",
        }
    )
    assert private_imports(code) == [
        "kernelc.b:1: kernelc.a._merge",
        "kernelc.c:2: kernelc.a._merge",
    ]


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                break
    return names


def id_caches(code: Code) -> list[str]:
    """``id()`` keys in containers that outlive one call (an object's id is reused once it
    dies, so such a key names whatever comes next)."""
    found = []
    for name, tree in code.trees.items():
        globals_ = _module_names(tree)
        for node in ast.walk(tree):
            for container, key in _keyed(node):
                if not (isinstance(key, ast.Call) and ast.unparse(key.func) == "id"):
                    continue
                held = isinstance(container, ast.Attribute) or (
                    isinstance(container, ast.Name) and container.id in globals_
                )
                if held:
                    found.append(f"{code.where(name, node)}: {ast.unparse(node)}")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                "cache" in ast.unparse(d) for d in node.decorator_list
            ):
                if any(
                    isinstance(n, ast.Call) and ast.unparse(n.func) == "id" for n in ast.walk(node)
                ):
                    found.append(f"{code.where(name, node)}: id() in the cached {node.name}")
    return found


def test_no_id_keyed_caches():
    assert id_caches(PROJECT) == []


def test_id_keyed_caches_are_found_and_local_identity_maps_allowed():
    code = Code.of(
        {
            "kernelc.a": (
                "CACHE = {}\n"
                "def plan(task):\n"
                "    if id(task) not in CACHE:\n"
                "        CACHE[id(task)] = 1\n"
                "    seen = {}\n"
                "    seen[id(task)] = 2\n"
                "    return seen\n"
                "class Planner:\n"
                "    def plan(self, task):\n"
                "        return self.memo.setdefault(id(task), 3)\n"
            )
        }
    )
    assert id_caches(code) == [
        "kernelc.a:3: id(task) not in CACHE",
        "kernelc.a:4: CACHE[id(task)]",
        "kernelc.a:10: self.memo.setdefault(id(task), 3)",
    ]


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


def _form_words(node: ast.AST, about_forms: bool) -> bool:
    """Whether ``node`` holds a form's name as a string: any of them, or also "scalar" (a word
    other things use: a scalar edge, a scalar role) when the code is about forms."""
    words = FORM_WORDS if about_forms else FORM_WORDS - {"scalar"}
    return any(isinstance(n, ast.Constant) and n.value in words for n in ast.walk(node))


def form_dispatch(code: Code) -> list[str]:
    """Forms told apart by a name (a string, a class's ``__name__``) instead of by type: a
    comparison or a ``case`` with a form's name, or a table keyed by two or more of them."""
    found = []
    for name, tree in code.trees.items():
        if name.startswith(OPENMP):
            continue  # OpenMP names a clause `reduction`; the C frontend never sees forms
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                about = any(w in ast.unparse(node) for w in ("__name__", "form"))
                if any(_form_words(side, about) for side in (node.left, *node.comparators)):
                    found.append(f"{code.where(name, node)}: {ast.unparse(node)}")
            if isinstance(node, ast.Match):
                about = "form" in ast.unparse(node.subject)
                if any(_form_words(case.pattern, about) for case in node.cases):
                    found.append(f"{code.where(name, node)}: match {ast.unparse(node.subject)}")
            if isinstance(node, ast.Dict):
                keys = [k for k in node.keys if k is not None and _form_words(k, True)]
                if len(keys) >= 2:
                    found.append(f"{code.where(name, node)}: a table keyed by form names")
    return sorted(found)


def test_no_string_dispatch_of_forms():
    assert form_dispatch(PROJECT) == []


def test_string_dispatch_of_forms_is_found():
    code = Code.of(
        {
            "kernelc.a": (
                "def lower(task, plan):\n"
                "    if task.form_kind == 'map':\n"
                "        return 1\n"
                "    if type(task.form).__name__ == 'Contraction':\n"
                "        return 2\n"
                "    match plan.choice:\n"
                "        case 'lookup':\n"
                "            return 3\n"
                "    if plan.kind in ('reduction', 'stencil'):\n"
                "        return 4\n"
                "    if plan.role == 'scalar':\n"
                "        return 5\n"
                "    if task.form == 'scalar':\n"
                "        return 6\n"
                "    LOWER = {'map': 1, 'lookup': 2}\n"
                "    return LOWERINGS[type(task.form)]\n"
            )
        }
    )
    assert form_dispatch(code) == [
        "kernelc.a:13: task.form == 'scalar'",
        "kernelc.a:15: a table keyed by form names",
        "kernelc.a:2: task.form_kind == 'map'",
        "kernelc.a:4: type(task.form).__name__ == 'Contraction'",
        "kernelc.a:6: match plan.choice",
        "kernelc.a:9: plan.kind in ('reduction', 'stencil')",
    ]


CSL_PLAN_PATH = ("backends/csl", "kernelc/forms", "kernelc/csl")


def caught_user_errors(tree: ast.Module) -> list[int]:
    """Lines of handlers that catch user errors (or every exception)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ExceptHandler)
        and (
            node.type is None
            or any(
                w in ast.unparse(node.type) for w in ("KernelcError", "Unsupported", "Exception")
            )
        )
    ]


@pytest.mark.parametrize("folder", CSL_PLAN_PATH)
def test_no_user_errors_caught_to_try_the_next_option(folder):
    """csl's lowerings answer "not this task" and "not this grid" with values (Refusal, Misfit);
    a user error is raised once, at the end, and never caught on the way."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in caught_user_errors(ast.parse(path.read_text()))
    ]
    assert found == []


def test_caught_user_errors_are_found():
    tree = ast.parse(
        "try:\n    plan()\nexcept Unsupported:\n    pass\n"
        "try:\n    plan()\nexcept (KeyError, kc.KernelcError) as err:\n    pass\n"
        "try:\n    plan()\nexcept OSError:\n    pass\n"
    )
    assert caught_user_errors(tree) == [3, 7]
