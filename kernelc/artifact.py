"""Build artifacts: the emitted files of one target, with the manifest, written atomically."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelc.dot import steps
from kernelc.graph import TaskGraph
from kernelc.report.data import Report, View, report
from kernelc.version import VERSION

MANIFEST = "kernelc.json"


@dataclass(frozen=True)
class Artifact:
    """What ``kc.build`` returns: file name -> content, plus the manifest as a dict."""

    target: str
    files: Mapping[str, str | bytes]
    manifest: Mapping[str, Any]
    summary: tuple[str, ...] = field(default=())  # the lines ``kernelc build`` prints
    report: Report | None = None  # what report.html shows (kernelc.report)

    def write(self, directory: str | Path) -> Path:
        """Write every file under ``directory``; an interrupted write leaves nothing half-done.

        The files go to a temporary sibling directory that is renamed into place at the end.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for name, content in sorted(self.files.items()):
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(content)
                if name.endswith(".sh"):
                    path.chmod(0o755)
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _replace_dir(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, moving an existing ``target`` aside first.

    Concurrent writers of one directory may each move the other's result aside: the rename
    is retried until this writer's directory is in place (the last writer wins), and every
    writer ends with a complete directory at ``target``. An interrupted writer puts the old
    directory back; one killed between the two renames leaves none.
    """
    moved: list[Path] = []
    try:
        while True:
            try:
                os.rename(staging, target)  # replaces nothing but an empty directory
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            moved.append(aside)
            try:
                os.rename(target, aside / "old")
            except FileNotFoundError:
                pass  # another writer moved it aside first
    except BaseException:
        # interrupted (or failed) with the old directory aside: put it back
        if moved and (moved[-1] / "old").exists() and not target.exists():
            os.rename(moved[-1] / "old", target)
        raise
    finally:
        for aside in moved:
            shutil.rmtree(aside, ignore_errors=True)


def base_manifest(graph: TaskGraph, target: str, files: list[str], **extra: Any) -> dict[str, Any]:
    """The target-independent part of kernelc.json; deterministic (no times, no paths)."""

    manifest: dict[str, Any] = {
        "kernelc": VERSION,
        "target": target,
        "entry": graph.name,
        "source": Path(graph.filename).name,
        "params": dict(graph.sizes),
        "inputs": [_tensor(t) for t in graph.inputs]
        + [{"name": s.name, "dtype": str(s.dtype), "shape": []} for s in graph.scalars],
        "outputs": [_tensor(t) for t in graph.outputs],
        "tasks": [
            {
                "name": task.name,
                "kernel": task.kernel.name,
                "reads": [str(r) for r in task.reads],
                "writes": [str(w) for w in task.writes],
            }
            for task in graph.tasks
        ],
        "files": sorted(files),
        "graph": graph_doc(graph),
    }
    manifest.update(extra)
    return manifest


def manifest_text(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def graph_doc(graph: TaskGraph) -> dict[str, Any]:
    """Every tensor, each task's step and the dependences: what the report draws."""
    step = {name: number for number, names in enumerate(steps(graph)) for name in names}
    order = {task.name: i for i, task in enumerate(graph.tasks)}
    deps = graph.dependencies
    return {
        "tensors": [{**_tensor(t), "role": t.role, "bytes": t.nbytes} for t in graph.tensors],
        "tasks": [
            {
                "name": task.name,
                "kernel": task.kernel.name,
                "reads": [str(r) for r in task.reads],
                "writes": [str(w) for w in task.writes],
                "step": step[task.name],
            }
            for task in graph.tasks
        ],
        "dependencies": [
            {"before": a, "after": b, **{k: deps.edges[a, b][k] for k in ("kind", "tensor")}}
            for a, b in sorted(deps.edges, key=lambda e: (order[e[0]], order[e[1]]))
        ],
    }


def _tensor(t) -> dict[str, Any]:
    return {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape)}


def finished(
    target: str,
    files: Mapping[str, str],
    manifest: dict[str, Any],
    summary: tuple[str, ...] | list[str],
    view: Callable[[Mapping[str, Any]], View],
) -> Artifact:
    """A build's artifact: its manifest written as kernelc.json, and its report read back from
    that very text (as ``kernelc report DIR`` reads it), so both draw the same page."""
    text = manifest_text(manifest)
    shown = report(manifest, view(json.loads(text)))
    return Artifact(target, {**files, MANIFEST: text}, manifest, tuple(summary), shown)
