"""Run a C-with-OpenMP kernel through the system C compiler: the reference semantics of the
OpenMP frontend. A generated driver reads the inputs from binary files, calls the entry function
and writes its outputs; tests compare these with kernelc's results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kernelc.frontends.omp import ctree, syntax
from kernelc.frontends.omp.c_types import c_name
from kernelc.graph import TaskGraph


def compiler() -> str | None:
    """The system C compiler, when one with OpenMP support is installed."""
    for name in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def run_c(
    source: Path,
    graph: TaskGraph,
    inputs: Mapping[str, np.ndarray | np.generic],
    defines: Mapping[str, int],
    workdir: Path,
) -> dict[str, np.ndarray]:
    """Compile ``source`` with -fopenmp, run its entry function on ``inputs``, return outputs
    named as kernelc names them (an array both read and written comes back as NAME_out)."""
    entry = _entry(source, graph.name)
    workdir.mkdir(parents=True, exist_ok=True)
    tensors = {t.name: t for t in graph.tensors}
    outputs = {t.name for t in graph.outputs}
    lines = [
        "#include <stdio.h>",
        "#include <stdlib.h>",
        "#include <stdbool.h>",
        "#include <stdint.h>",
        f'#include "{source.resolve()}"',
        "static void *load(const char *path, size_t n) {",
        '  void *p = calloc(1, n ? n : 1); FILE *f = fopen(path, "rb");',
        "  if (!f || fread(p, 1, n, f) != n) exit(3); fclose(f); return p; }",
        "static void save(const char *path, const void *p, size_t n) {",
        '  FILE *f = fopen(path, "wb");',
        "  if (!f || fwrite(p, 1, n, f) != n) exit(4); fclose(f); }",
        "int main(void) {",
    ]
    call_args, saves = [], []
    for param in entry.params:
        name = param.name
        if not param.dims:
            value = inputs[name]
            scalar = graph.scalars[[s.name for s in graph.scalars].index(name)]
            lines.append(f"  {c_name(scalar.dtype)} {name} = {_literal(value)};")
            call_args.append(name)
            continue
        decl = tensors.get(name) or tensors.get(f"{name}_out")
        nbytes = decl.nbytes if decl is not None else 1
        if name in inputs:
            path = workdir / f"{name}.in"
            np.ascontiguousarray(inputs[name]).tofile(path)
            lines.append(f'  void *{name} = load("{path}", {nbytes});')
        else:
            lines.append(f"  void *{name} = calloc(1, {max(nbytes, 1)});")
        call_args.append(name)
        for out in (name, f"{name}_out"):
            if out in outputs:
                saves.append((out, name, tensors[out]))
    lines.append(f"  {entry.name}({', '.join(call_args)});")
    for out, buffer, decl in saves:
        lines.append(f'  save("{workdir / (out + ".out")}", {buffer}, {decl.nbytes});')
    lines += ["  return 0;", "}", ""]
    driver = workdir / "driver.c"
    driver.write_text("\n".join(lines))
    program = workdir / "driver"
    flags = [f"-D{k}={v}" for k, v in defines.items()]
    command = [compiler(), "-std=c11", "-O1", "-fopenmp", "-ffp-contract=off", *flags]
    subprocess.run(
        [*command, str(driver), "-o", str(program), "-lm"], check=True, capture_output=True
    )
    env = {**os.environ, "OMP_DYNAMIC": "false"}
    subprocess.run([str(program)], check=True, capture_output=True, env=env, timeout=120)
    return {
        out: np.fromfile(workdir / f"{out}.out", dtype=decl.dtype.numpy).reshape(decl.shape)
        for out, _, decl in saves
    }


def _entry(source: Path, name: str) -> ctree.Function:
    unit = syntax.parse_file(source.read_text(), str(source))
    return next(f for f in unit.items if isinstance(f, ctree.Function) and f.name == name)


def _literal(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value).hex()}f"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(int(value))


def run_on_targets(program, inputs: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    """Outputs of ``program`` on every registered target; a target that reports the program as
    unsupported is left out (the others must all run it). A target that found a source file
    unsupported is not asked again for it (property tests run one file at many sizes)."""
    import kernelc as kc
    from kernelc import targets

    results = {}
    for name in targets.names():
        if (program.filename, name) in _UNSUPPORTED_BY:
            continue
        try:
            results[name] = kc.run(program, name, inputs)
        except kc.KernelcError as err:
            if unsupported(err):
                _UNSUPPORTED_BY.add((program.filename, name))
                continue
            raise
    assert "interp" in results
    return results


_UNSUPPORTED_BY: set[tuple[str, str]] = set()


def unsupported(err: Exception) -> bool:
    """Whether a target reported the program as beyond it (as opposed to a user error)."""
    from kernelc.diagnostics import Unsupported

    return isinstance(err, Unsupported)
