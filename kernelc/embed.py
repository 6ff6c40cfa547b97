"""Modules whose source emitted host programs carry verbatim (kernelc.semantics, .tolerance).

A host program runs where kernelc may not be installed, so it cannot import these modules; it
embeds their definitions instead, taken from the very source kernelc itself runs, so that the two
cannot drift apart.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType


def definitions(module: ModuleType) -> str:
    """The source of ``module`` after its docstring and imports: its definitions, for a host
    program that does ``from __future__ import annotations`` and ``import numpy as np`` itself."""
    source = inspect.getsource(module)
    imports = [n for n in ast.parse(source).body if isinstance(n, ast.Import | ast.ImportFrom)]
    lines = source.splitlines(keepends=True)[imports[-1].end_lineno :]
    return "".join(lines).lstrip("\n")
