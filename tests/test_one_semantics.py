"""The corner cases and the tolerance rule are defined once: the interpreter and ``kernelc check``
use kernelc.semantics and kernelc.tolerance themselves, and the emitted run.py carries their
source verbatim, so the oracle and the references shipped with artifacts cannot drift apart."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import kernelc as kc
from kernelc import cli, interpreter, reference, semantics, tolerance
from kernelc.embed import definitions

ROOT = Path(__file__).resolve().parent.parent


def _public_functions(module) -> dict:
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module.__name__ and name[0] != "_"
    }


def test_the_interpreter_and_check_use_the_modules_own_functions() -> None:
    for name, function in _public_functions(semantics).items():
        assert getattr(interpreter, name) is function, name
    assert cli.excess is tolerance.excess


@pytest.mark.parametrize("module", [semantics, tolerance])
def test_embedded_modules_import_only_numpy(module) -> None:
    tree = ast.parse(inspect.getsource(module))
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports == ["from __future__ import annotations", "import numpy as np"]
    assert inspect.getsource(module).endswith(definitions(module))
    ast.parse(definitions(module), feature_version=(3, 8))  # run.py may meet an older cs_python


@pytest.mark.parametrize(
    ("example", "params", "grid"),
    [
        ("omp/pipeline.c", {"CH": 16}, (8, 1)),
        ("xs_lookup.k", {"NI": 5, "NG": 20, "NM": 3, "MAXN": 4, "L": 9}, (2, 2)),
    ],
)
def test_run_py_carries_the_modules_source_verbatim(example, params, grid) -> None:
    program = kc.load(ROOT / "examples" / example)
    run_py = kc.build(program, "csl", params=params, grid=grid).files["run.py"]
    assert reference.HELPERS.endswith(definitions(semantics))
    assert reference.HELPERS in run_py
    assert definitions(tolerance) in run_py
    tree = ast.parse(run_py)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(names) == len(set(names)), "an embedded helper shadows a run.py function"
    assert set(_public_functions(semantics)) <= set(names)
    assert {"close_enough", "reference"} <= set(names)
