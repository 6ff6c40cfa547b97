"""The target registry: one entry per backend, imported only when used.

Adding a target means adding a folder under backends/ (and runtime/) that defines a ``TARGET``
object, plus one line in ``REGISTRY``. Nothing else in kernelc names a target.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kernelc.artifact import Artifact
from kernelc.diagnostics import KernelcError, Span
from kernelc.graph import TaskGraph
from kernelc.report.data import View

REGISTRY: dict[str, str] = {
    "interp": "kernelc.backends.interp.target",
    "cpu": "kernelc.backends.cpu.target",
    "csl": "kernelc.backends.csl.target",
    "poplar": "kernelc.backends.poplar.target",
    "groq": "kernelc.backends.groq.target",
}


@dataclass(frozen=True)
class RunResult:
    """A run's outputs by name, and its statistics: plain numbers and strings whose keys depend
    on the target (README.md, "Run statistics"; cycle keys say simulated, emulated or modelled)."""

    outputs: dict[str, np.ndarray]
    stats: Mapping[str, Any]
    artifact: Artifact | None = None  # what the target built and ran, where it builds one


class Target(Protocol):
    name: str
    description: str
    options: Mapping[str, Callable[[Any], Any]]  # accepted options and their validators

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact: ...

    def run(
        self, graph: TaskGraph, inputs: Mapping[str, np.ndarray], options: Mapping[str, Any]
    ) -> RunResult: ...

    def report_view(self, manifest: Mapping[str, Any]) -> View | None:
        """What the build report shows of this target's manifest (None: the graph only).
        A target with a simulator also has ``simulated(manifest, stats) -> Simulated``."""


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str, span: Span | None = None) -> Target:
    if name not in REGISTRY:
        raise KernelcError(
            f"unknown target '{name}'; available: {', '.join(REGISTRY)}",
            span or Span("<command line>", 1, 1),
        )
    return importlib.import_module(REGISTRY[name]).TARGET


def check_options(target: Target, options: Mapping[str, Any], span: Span | None = None) -> dict:
    """Validate target options; an option the target does not take is a user error."""
    checked = {}
    for key, value in options.items():
        if value is None:
            continue
        if key not in target.options:
            accepted = ", ".join(target.options) or "none"
            raise KernelcError(
                f"target '{target.name}' does not take option '{key}' (it takes: {accepted})",
                span or Span("<command line>", 1, 1),
            )
        checked[key] = target.options[key](value)
    return checked
