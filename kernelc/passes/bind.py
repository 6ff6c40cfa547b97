"""Parameter binding: give every size a value and turn the entry into a concrete task graph.

Sizes come from, in order of authority: explicit parameters (``-D NAME=VALUE`` or a params dict),
the shapes of the input arrays, then ``size`` defaults in the source. Disagreements are errors that
name both sources. Graph calls are bound by unifying each kernel's parameter shapes with the
regions passed to it, so a shape mismatch between graph stages is reported at the argument.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from kernelc import ir
from kernelc.affine import evaluate
from kernelc.diagnostics import KernelcError, Span
from kernelc.forms import recognise
from kernelc.graph import Binding, Region, Task, TaskGraph, TensorDecl, verify
from kernelc.passes.access import check_bounds, mark_parallel, shape_of
from kernelc.passes.constants import specialise
from kernelc.passes.normalise import raise_accumulators
from kernelc.passes.searches import raise_searches
from kernelc.passes.typecheck import size_names
from kernelc.types import DType

I32_MAX = 2**31 - 1
"""Sizes are i32 values inside kernels (docs/LANGUAGE.md, Sizes)."""


def choose_entry(module: ir.Module, entry: str | None) -> ir.Kernel | ir.Graph:
    """The kernel or graph to compile: named, the only graph, or the only kernel."""
    if entry is not None:
        found = module.graph(entry) or module.kernel(entry)
        if found is None:
            names = ", ".join(d.name for d in (*module.graphs, *module.kernels)) or "none"
            raise KernelcError(
                f"no kernel or graph named '{entry}' (this file has: {names})", module.span
            )
        return found
    if len(module.graphs) == 1:
        return module.graphs[0]
    if not module.graphs and len(module.kernels) == 1:
        return module.kernels[0]
    if not module.graphs and not module.kernels:
        raise KernelcError("this file defines no kernel", module.span)
    names = ", ".join(d.name for d in (*module.graphs, *module.kernels))
    raise KernelcError(f"several possible entries ({names}); choose one with --entry", module.span)


def bind(
    module: ir.Module,
    entry: str | None = None,
    params: Mapping[str, int | float | bool] | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> TaskGraph:
    """Bind sizes and build the verified task graph of the entry."""
    target = choose_entry(module, entry)
    params = dict(params or {})
    input_shapes = dict(input_shapes or {})
    sizes = _entry_sizes(module, target, params, input_shapes)
    scalars = tuple(_scalar_with_override(p, params) for p in target.params if p.is_scalar)
    tensors = []
    for p in target.all_params:
        if p.is_scalar:
            continue
        shape = shape_of(p, sizes)
        _check_shape(p, shape)
        role = "output" if p.is_output else "input"
        tensors.append(TensorDecl(p.name, p.dtype, shape, role, p.span))
        if p.name in input_shapes and tuple(input_shapes[p.name]) != shape:
            raise KernelcError(
                f"input '{p.name}' has shape {tuple(input_shapes[p.name])}, but "
                f"{p.dtype}[{_dims_text(p)}] is {shape} here",
                p.span,
            )
    if isinstance(target, ir.Kernel):
        tasks = [_kernel_task(target, sizes, tensors, scalars)]
    else:
        tasks = _graph_tasks(module, target, sizes, tensors)
    tasks = [replace(t, form=recognise(specialise(t))) for t in tasks]
    graph = TaskGraph(
        name=target.name,
        filename=module.filename,
        tensors=tuple(tensors),
        scalars=scalars,
        tasks=tuple(tasks),
        sizes=tuple(sizes.items()),
        span=target.span,
    )
    for decl in graph.outputs:
        if not any(w.tensor == decl.name for t in graph.tasks for w in t.writes):
            raise KernelcError(f"output '{decl.name}' is never written", decl.span)
    verify(graph)
    return graph


def _dims_text(p: ir.Param) -> str:
    from kernelc.printer import expr_text

    return ", ".join(expr_text(d) for d in p.shape)


def _check_shape(p: ir.Param, shape: tuple[int, ...]) -> None:
    for extent in shape:
        if extent < 0:
            raise KernelcError(f"'{p.name}' would have a negative extent: shape {shape}", p.span)


def _scalar_with_override(p: ir.Param, params: Mapping) -> ir.Param:
    if p.name not in params:
        return p
    value = params[p.name]
    is_bool = isinstance(value, bool | np.bool_)
    if p.dtype.is_float and isinstance(value, numbers.Real) and not is_bool:
        value = float(value)
    elif p.dtype == DType.BOOL and is_bool:
        value = bool(value)
    elif p.dtype.is_int and isinstance(value, numbers.Integral) and not is_bool:
        value = int(value)
        info = np.iinfo(p.dtype.numpy)
        if not info.min <= value <= info.max:
            raise KernelcError(
                f"{p.dtype} parameter '{p.name}' cannot hold {value}", p.span, parameter=p.name
            )
    else:
        raise KernelcError(
            f"parameter '{p.name}' is {p.dtype}, got {value!r}", p.span, parameter=p.name
        )
    return replace(p, default=ir.Const(value=value, span=p.span, dtype=p.dtype))


def _entry_sizes(module, target, params, input_shapes) -> dict[str, int]:
    names = target.sizes
    scalar_names = {p.name for p in target.params if p.is_scalar}
    for name in params:
        if name not in names and name not in scalar_names:
            known = ", ".join((*names, *sorted(scalar_names))) or "none"
            raise KernelcError(
                f"'{target.name}' has no size or scalar parameter '{name}' (it has: {known})",
                target.span,
                parameter=name,
            )
    sizes: dict[str, int] = {}
    origin: dict[str, str] = {}
    for name in names:
        if name in params:
            value = params[name]
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
                raise KernelcError(
                    f"size '{name}' must be an integer, got {value!r}", target.span, parameter=name
                )
            sizes[name], origin[name] = int(value), f"-D {name}={value}"
    for p in target.params:
        if p.is_scalar or p.name not in input_shapes:
            continue
        shape = tuple(input_shapes[p.name])
        if len(shape) != len(p.shape):
            raise KernelcError(
                f"input '{p.name}' has rank {len(shape)} (shape {shape}), but the kernel "
                f"declares rank {len(p.shape)}",
                p.span,
            )
        for dim, extent in zip(p.shape, shape, strict=True):
            if not isinstance(dim, ir.Name):
                continue
            if dim.name in sizes and sizes[dim.name] != extent:
                raise KernelcError(
                    f"input '{p.name}' has {dim.name} = {extent}, but {origin[dim.name]}",
                    p.span,
                )
            sizes[dim.name] = extent
            origin[dim.name] = f"input '{p.name}' has {dim.name} = {extent}"
    for name in names:
        if name not in sizes:
            default = module.size_default(name)
            if default is None:
                raise KernelcError(
                    f"size '{name}' has no value; pass -D {name}=VALUE or give an input whose "
                    "shape fixes it",
                    target.span,
                )
            sizes[name] = default
    for name, value in sizes.items():
        if value < 0:
            raise KernelcError(f"size '{name}' must not be negative, got {value}", target.span)
        if value > I32_MAX:
            raise KernelcError(
                f"size '{name}' must fit in i32 (at most {I32_MAX}), got {value}",
                target.span,
                parameter=name if name in params else None,
            )
    return sizes


def _analysed(kernel: ir.Kernel, sizes: dict[str, int], shapes: dict[str, tuple[int, ...]]):
    marked = mark_parallel(raise_searches(raise_accumulators(kernel), sizes))
    check_bounds(marked, sizes, shapes)
    return marked


def _kernel_task(kernel, sizes, tensors, scalars) -> Task:
    shapes = {t.name: t.shape for t in tensors}
    bindings = [
        Binding(p.name, scalar=p.name)
        if p.is_scalar
        else Binding(p.name, region=Region.whole(p.name, shapes[p.name]))
        for p in kernel.all_params
    ]
    return Task(
        name=kernel.name,
        kernel=_analysed(kernel, sizes, shapes),
        sizes=tuple(sizes.items()),
        bindings=tuple(bindings),
        span=kernel.span,
    )


def _graph_tasks(module, graph: ir.Graph, sizes, tensors: list[TensorDecl]) -> list[Task]:
    decls = {t.name: t for t in tensors}
    for temp in graph.temps:
        shape = shape_of(temp, sizes)
        _check_shape(temp, shape)
        decls[temp.name] = TensorDecl(temp.name, temp.dtype, shape, "temp", temp.span)
        tensors.append(decls[temp.name])
    scalar_names = {p.name for p in graph.params if p.is_scalar}
    tasks = []
    for number, call in enumerate(graph.calls):
        kernel = module.kernel(call.kernel)
        shaped = set(size_names(kernel.all_params))
        bindings: list[Binding] = []
        kernel_sizes: dict[str, int] = {}
        for arg, param in zip(call.args, kernel.params, strict=True):
            if isinstance(arg, ir.Const):
                bindings.append(Binding(param.name, constant=arg.value))
                continue
            if param.is_scalar:
                if arg.name not in scalar_names or arg.slices is not None:
                    raise KernelcError(
                        f"'{param.name}' of '{kernel.name}' is a scalar; pass a literal or a "
                        "scalar parameter of the graph",
                        arg.span,
                    )
                bindings.append(Binding(param.name, scalar=arg.name))
                continue
            if arg.name in scalar_names:
                raise KernelcError(
                    f"'{arg.name}' is a scalar, but '{param.name}' is a tensor", arg.span
                )
            region = _region(arg, decls[arg.name], sizes)
            _unify(param, region.view_shape, kernel_sizes, arg.span, kernel)
            bindings.append(Binding(param.name, region=region))
        for ref, out in zip(call.results, kernel.outputs, strict=True):
            if ref.name in decls:
                region = _region(ref, decls[ref.name], sizes)
                _unify(out, region.view_shape, kernel_sizes, ref.span, kernel)
            else:
                missing = [n for n in kernel.sizes if n not in kernel_sizes]
                if any(n in missing for d in out.shape for n in _names(d)):
                    raise KernelcError(
                        f"the shape of '{out.name}' depends on sizes of '{kernel.name}' that its "
                        f"arguments do not fix ({', '.join(missing)}); declare '{ref.name}' with "
                        "let first",
                        ref.span,
                    )
                shape = shape_of(out, kernel_sizes)
                _check_shape(out, shape)
                decls[ref.name] = TensorDecl(ref.name, out.dtype, shape, "temp", ref.span)
                tensors.append(decls[ref.name])
                region = Region.whole(ref.name, shape)
            bindings.append(Binding(out.name, region=region))
        for name in kernel.sizes:  # sizes a frontend declared beyond the parameter shapes
            if name not in kernel_sizes and name in sizes and name not in shaped:
                kernel_sizes[name] = sizes[name]
        missing = [n for n in kernel.sizes if n not in kernel_sizes]
        if missing:
            raise KernelcError(
                f"sizes {', '.join(missing)} of '{kernel.name}' are not fixed by this call",
                call.span,
            )
        shapes = {b.param: b.region.view_shape for b in bindings if b.region is not None}
        tasks.append(
            Task(
                name=f"{call.kernel}_{number}",
                kernel=_analysed(kernel, kernel_sizes, shapes),
                sizes=tuple(kernel_sizes.items()),
                bindings=tuple(bindings),
                span=call.span,
                after=tuple(f"{graph.calls[i].kernel}_{i}" for i in call.after),
            )
        )
    return tasks


def _names(expr: ir.Expr) -> set[str]:
    return {n.name for n in ir.walk(expr) if isinstance(n, ir.Name)}


def _region(ref: ir.TensorRef, decl: TensorDecl, sizes: dict[str, int]) -> Region:
    if ref.slices is None:
        return Region.whole(decl.name, decl.shape)
    box, keep = [], []
    for dim, (part, extent) in enumerate(zip(ref.slices, decl.shape, strict=True)):
        if isinstance(part, ir.Slice):
            lo = evaluate(part.lo, sizes) if part.lo is not None else 0
            hi = evaluate(part.hi, sizes) if part.hi is not None else extent
            keep.append(True)
        else:
            lo = evaluate(part, sizes)
            hi = lo + 1
            keep.append(False)
        if not 0 <= lo <= hi <= extent:
            raise KernelcError(
                f"slice {lo}:{hi} of '{decl.name}' (dimension {dim}) is outside 0 .. {extent}",
                getattr(part, "span", ref.span),
            )
        box.append((lo, hi))
    return Region(decl.name, tuple(box), tuple(keep))


def _unify(
    param: ir.Param, shape: tuple[int, ...], kernel_sizes: dict[str, int], span: Span, kernel
) -> None:
    for dim, (expr, extent) in enumerate(zip(param.shape, shape, strict=True)):
        if isinstance(expr, ir.Name) and expr.name not in kernel_sizes:
            kernel_sizes[expr.name] = extent
            continue
        if all(n in kernel_sizes for n in _names(expr)):
            expected = evaluate(expr, kernel_sizes)
            if expected != extent:
                raise KernelcError(
                    f"shape mismatch: '{param.name}' of '{kernel.name}' needs extent {expected} "
                    f"in dimension {dim}, but the tensor passed has {extent} (shape {shape})",
                    span,
                    [(param.span, f"'{param.name}' is declared here")],
                )
