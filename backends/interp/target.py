"""The ``interp`` target: the reference interpreter, the oracle every other target is checked by."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from kernelc.artifact import Artifact, base_manifest, manifest_text
from kernelc.graph import TaskGraph
from kernelc.interpreter import interpret
from kernelc.printer import graph_text
from kernelc.report import data
from kernelc.targets import RunResult


class InterpTarget:
    name = "interp"
    description = "reference interpreter on NumPy (the semantic oracle; not the fast path)"
    options: Mapping[str, Any] = {}

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact:
        files: dict[str, str] = {"program.kir": graph_text(graph) + "\n"}
        manifest = base_manifest(graph, self.name, [*files, "kernelc.json"])
        files["kernelc.json"] = manifest_text(manifest)
        return Artifact(self.name, files, manifest, (), data.report(manifest, None))

    def report_view(self, manifest: Mapping[str, Any]) -> None:
        """No placement or cycle model on this target: the report shows the graph only."""
        return None

    def run(
        self, graph: TaskGraph, inputs: Mapping[str, np.ndarray], options: Mapping[str, Any]
    ) -> RunResult:
        start = time.perf_counter()
        outputs = interpret(graph, inputs)
        return RunResult(outputs, {"run_seconds": time.perf_counter() - start})


TARGET = InterpTarget()
