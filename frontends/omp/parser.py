"""``parse(text, filename) -> ir.Module`` for C with OpenMP pragmas (see docs/OPENMP.md).

Every function with a ``#pragma omp target`` region becomes a graph; the other functions are
helpers, inlined where they are called. Integer ``#define``s are sizes, unless the task graph's
shape depends on them (a thread count, the trip count of a loop that creates tasks): those are
fixed at their ``#define`` value, found by lowering once and lowering again with them fixed.
"""

from __future__ import annotations

from dataclasses import replace

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span, register_source, warn
from kernelc.frontends.omp import checks, loops, syntax
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.exprs import Context
from kernelc.frontends.omp.macros import collect
from kernelc.frontends.omp.program import FunctionLowering, Names


def parse(text: str, filename: str = "<string>") -> ir.Module:
    """Parse and lower a C file. Raises KernelcError; prints located warnings."""
    register_source(filename, text)
    unit = syntax.parse_file(text, filename)
    macros = collect(unit.items, filename)
    functions = _functions(unit)
    entries = [f for f in functions.values() if _has_target(f)]
    if not entries:
        raise KernelcError(
            "no function has a '#pragma omp target' region; kernelc compiles target regions "
            "(the device program), so offload the kernel with one",
            Span(filename, 1, 1),
        )
    helpers = {name: f for name, f in functions.items() if f not in entries}
    _warn_unused(helpers, entries)
    identifiers = {n.name for n in loops.walk(unit.items) if isinstance(n, c.Name)}
    identifiers |= set(functions) | set(macros) | _declared(unit)
    fixed: frozenset[str] = frozenset()
    while True:
        ctx = Context(macros, fixed, helpers, set())
        names = Names(set(identifiers))
        warnings: list[tuple[str, Span]] = []
        graphs, kernels = [], []
        for fn in entries:
            lowering = FunctionLowering(ctx, fn, names, warnings)
            graph = lowering.lower()
            if ctx.fixed_used - fixed:
                break
            defaults = {n: m.size for n, m in macros.items() if m.size is not None}
            memory = lowering.memory
            calls = checks.check(
                lowering.items, lowering.works.order, memory.tensors, defaults, memory.inputs
            )
            graphs.append(replace(graph, calls=tuple(calls)))
            kernels.extend(lowering.works.kernels.values())
        if ctx.fixed_used - fixed:
            fixed = fixed | frozenset(ctx.fixed_used)
            continue
        break
    for message, span in warnings:
        warn(message, span)
    sizes = tuple(
        ir.SizeDecl(name=n, default=m.size, span=m.span)
        for n, m in macros.items()
        if m.size is not None and n not in fixed
    )
    span = Span(filename, 1, 1)
    return ir.Module(
        filename=filename, sizes=sizes, kernels=tuple(kernels), graphs=tuple(graphs), span=span
    )


def _functions(unit: c.TranslationUnit) -> dict[str, c.Function]:
    found: dict[str, c.Function] = {}
    for item in unit.items:
        if isinstance(item, c.Decl):
            raise KernelcError(
                "global variables are not supported; pass arrays as parameters or declare "
                "them in the function",
                item.span,
            )
        if isinstance(item, c.Pragma):
            raise KernelcError(
                f"'#pragma omp {item.directive}' at file level is not supported",
                item.words_span,
            )
        if isinstance(item, c.Function) and item.body is not None:
            if item.name in found:
                raise KernelcError(
                    f"function '{item.name}' is defined twice",
                    item.span,
                    [(found[item.name].span, "first defined here")],
                )
            found[item.name] = item
    return found


def _has_target(fn: c.Function) -> bool:
    return any(
        isinstance(n, c.Construct) and n.pragma.words[0] == "target" for n in loops.walk(fn.body)
    )


def _warn_unused(helpers: dict[str, c.Function], entries: list[c.Function]) -> None:
    called = {
        n.fn.name
        for f in (*entries, *helpers.values())
        for n in loops.walk(f.body)
        if isinstance(n, c.Call) and isinstance(n.fn, c.Name)
    }
    for name, fn in helpers.items():
        if name not in called:
            warn(
                f"function '{name}' has no target region and no target region calls it; "
                "kernelc ignores it",
                fn.span,
            )


def _declared(unit: c.TranslationUnit) -> set[str]:
    names = set()
    for n in loops.walk(unit.items):
        if isinstance(n, c.Declarator):
            names.add(n.name)
        elif isinstance(n, c.Param) and n.name:
            names.add(n.name)
    return names
