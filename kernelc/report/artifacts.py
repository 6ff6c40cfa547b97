"""report.html in artifact directories: added to an artifact before it is written (so it
appears atomically with the other files), or rewritten in a directory written earlier
(``kernelc report DIR``) from its kernelc.json and, after ``kernelc run --report``, the
simulated.json that run left beside it."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from kernelc import targets
from kernelc.artifact import MANIFEST, Artifact
from kernelc.diagnostics import KernelcError, Span
from kernelc.report import REPORT_FILE, SIMULATED_FILE
from kernelc.report.data import Report, Simulated, report
from kernelc.report.html import render


def with_report(artifact: Artifact, simulated: Simulated | None = None) -> Artifact:
    """The artifact with report.html (and the simulated figures it shows) among its files."""
    if artifact.report is None:
        raise ValueError(f"the {artifact.target} artifact carries no report data")
    shown = artifact.report.with_simulated(simulated)
    files = dict(artifact.files)
    if simulated is not None:
        files[SIMULATED_FILE] = simulated.to_json()
    files[REPORT_FILE] = render(shown)
    return replace(artifact, files=files, report=shown)


def load(directory: Path, span: Span) -> Report:
    """The report of an artifact directory; a missing or foreign directory is a user error."""
    if not directory.exists():
        raise KernelcError(f"'{directory}' does not exist", span)
    if not directory.is_dir():
        raise KernelcError(f"'{directory}' is a file, not an artifact directory", span)
    path = directory / MANIFEST
    if not path.is_file():
        raise KernelcError(
            f"'{directory}' is no kernelc artifact directory (it has no {MANIFEST}; "
            "kernelc build writes one)",
            span,
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KernelcError(f"cannot read '{path}': {exc}", span) from None
    if not isinstance(manifest, dict) or "graph" not in manifest or "target" not in manifest:
        raise KernelcError(
            f"'{path}' lacks what the report needs (the task graph): it was written by an "
            "older kernelc or by hand; build the artifact again",
            span,
        )
    backend = targets.get(str(manifest["target"]), span)
    simulated = None
    sim_path = directory / SIMULATED_FILE
    if sim_path.is_file():
        try:
            simulated = Simulated.from_json(sim_path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KernelcError(f"cannot read '{sim_path}': {exc}", span) from None
    try:
        return report(manifest, backend.report_view(manifest), simulated)
    except (KeyError, TypeError, ValueError) as exc:
        raise KernelcError(
            f"'{path}' is not a {backend.name} manifest this kernelc can read ({exc!r} is "
            "missing or malformed); build the artifact again",
            span,
        ) from None


def rewrite(directory: Path, span: Span) -> Path:
    """Write DIR/report.html for an artifact directory (replaced in one rename)."""
    page = render(load(directory, span))
    target = directory / REPORT_FILE
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{REPORT_FILE}.", dir=directory)
    except OSError as exc:
        raise KernelcError(f"cannot write '{target}': {exc.strerror or exc}", span) from None
    try:
        with os.fdopen(fd, "w") as out:
            out.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise KernelcError(f"cannot write '{target}': {exc.strerror or exc}", span) from None
        raise
    return target
