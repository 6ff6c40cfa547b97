"""The public Python API; the CLI is a thin shell over these functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kernelc import inputs as inputs_mod
from kernelc import ir, progress, targets
from kernelc.artifact import Artifact
from kernelc.diagnostics import KernelcError, Span
from kernelc.graph import TaskGraph
from kernelc.passes.bind import bind
from kernelc.passes.typecheck import check_module

Params = Mapping[str, int | float | bool]


@dataclass(frozen=True)
class Program:
    """A parsed and type-checked source file, with the parameters given when it was loaded."""

    module: ir.Module
    params: Mapping[str, int | float | bool] = field(default_factory=dict)
    _graphs: dict[tuple, TaskGraph] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def filename(self) -> str:
        return self.module.filename

    def graph(
        self,
        entry: str | None = None,
        params: Params | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> TaskGraph:
        """Bind sizes (params over load-time params over input shapes over defaults).

        Bound graphs are immutable, so each distinct binding is computed once per program:
        repeated ``kc.run`` calls on same-shaped inputs skip binding and analysis.
        """
        merged = {**self.params, **(params or {})}
        shapes = inputs_mod.input_shapes(inputs or {})
        key = (entry, tuple(sorted(merged.items())), tuple(sorted(shapes.items())))
        if key not in self._graphs:
            self._graphs[key] = bind(self.module, entry, merged, shapes)
        return self._graphs[key]


def _frontend(filename: str, lang: str | None):
    """The frontend for a file: by ``lang`` if given, else by extension."""
    lang = lang or ("c" if filename.endswith((".c", ".h")) else "k")
    if lang == "k":
        from kernelc.frontends.dsl.parser import parse

        return parse
    if lang == "c":
        from kernelc.frontends.omp import parse

        return parse
    raise KernelcError(f"no frontend for language '{lang}' (available: k, c)", Span(filename, 1, 1))


def loads(
    text: str, filename: str = "<string>", params: Params | None = None, lang: str | None = None
) -> Program:
    """Parse and check source text."""
    module = _frontend(filename, lang)(text, filename)
    return Program(check_module(module), dict(params or {}))


def load(path: str | Path, params: Params | None = None, lang: str | None = None) -> Program:
    """Parse and check a source file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise KernelcError(f"cannot read {path}: {exc.strerror}", Span(str(path), 1, 1)) from None
    except UnicodeDecodeError as exc:
        raise KernelcError(
            f"cannot read {path}: not UTF-8 text (byte {exc.start})", Span(str(path), 1, 1)
        ) from None
    return loads(text, str(path), params, lang)


def _as_program(program: Program | str | Path) -> Program:
    return program if isinstance(program, Program) else load(program)


def build(
    program: Program | str | Path,
    target: str,
    *,
    entry: str | None = None,
    params: Params | None = None,
    **options: Any,
) -> Artifact:
    """Compile for a target and return the artifact (its files and manifest)."""
    backend = targets.get(target)
    checked = targets.check_options(backend, options)
    graph = _as_program(program).graph(entry, params)
    with progress.from_environment():
        return backend.build(graph, checked)


def run_with_stats(
    program: Program | str | Path,
    target: str,
    inputs: Mapping[str, Any],
    *,
    entry: str | None = None,
    params: Params | None = None,
    **options: Any,
) -> targets.RunResult:
    """Like :func:`run`, also returning the target's statistics (times, cycles, memory): a
    ``RunResult`` whose ``stats`` keys per target README.md's "Run statistics" lists."""
    backend = targets.get(target)
    checked = targets.check_options(backend, options)
    graph = _as_program(program).graph(entry, params, inputs)
    valid = inputs_mod.validate(graph, inputs)
    with progress.from_environment():
        return backend.run(graph, valid, checked)


def run(
    program: Program | str | Path,
    target: str,
    inputs: Mapping[str, Any],
    *,
    entry: str | None = None,
    params: Params | None = None,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Run on a target (natively or in its simulator) and return the outputs by name."""
    return run_with_stats(program, target, inputs, entry=entry, params=params, **options).outputs


def interpret(
    program: Program | str | Path,
    inputs: Mapping[str, Any],
    *,
    entry: str | None = None,
    params: Params | None = None,
) -> dict[str, np.ndarray]:
    """Run the reference interpreter: the semantic oracle for every target."""
    return run(program, "interp", inputs, entry=entry, params=params)
