"""Input validation and reproducible random inputs, shared by every target.

Validation happens once, before any target sees the data: a missing, misnamed, mistyped,
misshaped or non-contiguous input is a user error located at the parameter's declaration.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kernelc.diagnostics import KernelcError
from kernelc.graph import TaskGraph

RANDOM_INT_HIGH = 16
"""Random integer inputs are uniform in [0, RANDOM_INT_HIGH): small enough for trip counts."""


def input_shapes(inputs: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    return {name: np.shape(v) for name, v in inputs.items() if np.ndim(v) > 0}


def validate(graph: TaskGraph, inputs: Mapping[str, object]) -> dict[str, np.ndarray | np.generic]:
    """Check the inputs against the graph and return them in canonical form."""
    known = {t.name for t in graph.inputs} | {s.name for s in graph.scalars}
    for name in inputs:
        if name not in known:
            raise KernelcError(
                f"'{graph.name}' has no input named '{name}' (its inputs: "
                f"{', '.join(sorted(known)) or 'none'})",
                graph.span,
            )
    result: dict[str, np.ndarray | np.generic] = {}
    for t in graph.inputs:
        if t.name not in inputs:
            raise KernelcError(
                f"input '{t.name}' ({t.dtype}{list(t.shape)}) is missing; give an array for it "
                "(CLI: --in NAME=PATH.npy, --in-dir DIR or --random-inputs SEED)",
                t.span,
            )
        value = inputs[t.name]
        if not isinstance(value, np.ndarray):
            raise KernelcError(
                f"input '{t.name}' must be a NumPy array, got {type(value).__name__}", t.span
            )
        if value.dtype != t.dtype.numpy:
            raise KernelcError(
                f"input '{t.name}' has dtype {value.dtype}, but the kernel declares {t.dtype} "
                f"({t.dtype.numpy}); convert it with .astype(np.{t.dtype.numpy})",
                t.span,
            )
        if value.shape != t.shape:
            raise KernelcError(
                f"input '{t.name}' has shape {value.shape}, but the kernel expects {t.shape}",
                t.span,
            )
        if not value.flags.c_contiguous:
            raise KernelcError(
                f"input '{t.name}' is not C-contiguous (a strided view or a transpose); pass "
                "np.ascontiguousarray(...)",
                t.span,
            )
        result[t.name] = value
    for s in graph.scalars:
        if s.name in inputs:
            value = inputs[s.name]
            if np.ndim(value) != 0:
                raise KernelcError(f"scalar input '{s.name}' must be a single value", s.span)
            result[s.name] = s.dtype.numpy.type(value)
        elif s.default is not None:
            result[s.name] = s.dtype.numpy.type(s.default.value)
        else:
            raise KernelcError(f"scalar input '{s.name}' ({s.dtype}) is missing", s.span)
    return result


def random_inputs(graph: TaskGraph, seed: int) -> dict[str, np.ndarray | np.generic]:
    """Reproducible inputs: floats uniform in [-1, 1), integers in [0, 16), random bools.

    Scalars with defaults keep their defaults.
    """
    rng = np.random.default_rng(seed)
    result: dict[str, np.ndarray | np.generic] = {}
    for t in graph.inputs:
        try:
            result[t.name] = _draw(rng, t.dtype.numpy, t.shape)
        except (MemoryError, ValueError):  # NumPy: "array is too big"
            raise KernelcError(
                f"input '{t.name}' ({t.dtype}{list(t.shape)}) is too big to draw in memory",
                t.span,
            ) from None
    for s in graph.scalars:
        if s.default is not None:
            result[s.name] = s.dtype.numpy.type(s.default.value)
        else:
            result[s.name] = _draw(rng, s.dtype.numpy, ())[()]
    return result


def _draw(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.integers(0, RANDOM_INT_HIGH, size=shape).astype(dtype)
