"""Which OpenMP directives and clauses the frontend supports, and how combined directives split.

A combined directive such as ``target teams distribute parallel for`` is split into the target
region and the loop construct inside it; each clause goes to the construct it belongs to.
Unsupported directives and clauses are rejected by name, with the reason when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import ctree as c

# Clauses accepted per construct kind. Clauses that cannot change results (schedules, thread
# limits, hints) are accepted and have no effect on the task graph.
_LOOP = {
    "collapse",
    "reduction",
    "private",
    "firstprivate",
    "shared",
    "default",
    "schedule",
    "dist_schedule",
    "num_threads",
    "num_teams",
    "thread_limit",
    "proc_bind",
    "simdlen",
    "safelen",
    "order",
}
ALLOWED = {
    "target": {"map", "firstprivate"},
    "teams": {"num_teams", "thread_limit", "default", "shared", "firstprivate"},
    "parallel": {"num_threads", "default", "shared", "private", "firstprivate", "proc_bind"},
    "loop": _LOOP,
    "task": {"depend", "default", "shared", "private", "firstprivate", "untied", "priority"},
    "single": set(),
    "masked": {"filter"},
    "taskwait": set(),
    "barrier": set(),
}

_WHY = {
    "nowait": "kernelc keeps the implicit barrier (and a target region's completion); remove "
    "nowait",
    "if": "a run-time condition would make the task graph dynamic",
    "lastprivate": "not supported; store the value into an array element instead",
    "linear": "not supported",
    "ordered": "not supported",
    "final": "not supported",
    "mergeable": "not supported",
    "depend": "only tasks may have depend clauses here",
    "device": "kernelc chooses the device with --target",
    "defaultmap": "map arrays explicitly",
    "is_device_ptr": "device pointers are not supported",
    "copyprivate": "not supported",
    "copyin": "not supported",
    "in_reduction": "task reductions are not supported",
    "task_reduction": "task reductions are not supported",
    "allocate": "not supported",
    "affinity": "not supported",
    "detach": "not supported",
}

_UNSUPPORTED_DIRECTIVES = {
    "critical": "critical sections serialise at run time in an order the static graph cannot know",
    "atomic": "atomic updates are not supported; use a reduction clause",
    "ordered": "ordered regions are not supported",
    "sections": "sections are not supported; use tasks",
    "section": "sections are not supported; use tasks",
    "taskloop": "taskloop is not supported; use tasks or a parallel for",
    "taskgroup": "taskgroup is not supported; use taskwait",
    "taskyield": "taskyield is not supported",
    "flush": "flush is not supported (a static graph has no shared-memory races to flush)",
    "declare": "declare directives are not supported",
    "threadprivate": "threadprivate is not supported",
    "cancel": "cancellation is not supported",
    "cancellation": "cancellation is not supported",
    "loop": "the loop construct is not supported; use parallel for",
    "workshare": "workshare is not supported",
    "scan": "scan is not supported",
    "depobj": "depobj is not supported",
    "requires": "requires is not supported",
    "metadirective": "metadirective is not supported",
    "tile": "tile is not supported",
    "unroll": "unroll is not supported",
    "scope": "scope is not supported",
    "error": "error directives are not supported",
    "allocate": "allocate is not supported",
    "interop": "interop is not supported",
    "dispatch": "dispatch is not supported",
    "nothing": "nothing is not supported",
    "assume": "assume is not supported",
}

LOOPS = {
    prefix + loop
    for prefix in ("", "teams ")
    for loop in (
        "for",
        "simd",
        "for simd",
        "parallel for",
        "parallel for simd",
        "distribute",
        "distribute simd",
        "distribute parallel for",
        "distribute parallel for simd",
    )
    if not (prefix == "teams " and not loop.startswith("distribute"))
}


@dataclass(frozen=True)
class Directive:
    """One construct of a (possibly combined) pragma, with the clauses that belong to it."""

    kind: str  # "target", "teams", "parallel", "loop", "task", "single", "masked", ...
    words: tuple[str, ...]
    clauses: tuple[c.Clause, ...]
    pragma: c.Pragma

    @property
    def name(self) -> str:
        return " ".join(self.words)

    @property
    def span(self) -> Span:
        return self.pragma.words_span

    def clause(self, name: str) -> c.Clause | None:
        return next((cl for cl in self.clauses if cl.name == name), None)

    def all(self, name: str) -> list[c.Clause]:
        return [cl for cl in self.clauses if cl.name == name]


def split(pragma: c.Pragma) -> tuple[Directive, Directive | None]:
    """The outer construct of a pragma and, for ``target ...``, the construct inside it."""
    words = pragma.words
    _check_words(pragma)
    if words[0] == "target" and len(words) > 1:
        outer_clauses = tuple(cl for cl in pragma.clauses if cl.name in ALLOWED["target"])
        inner_clauses = tuple(cl for cl in pragma.clauses if cl not in outer_clauses)
        outer = Directive("target", ("target",), outer_clauses, pragma)
        inner = _directive(words[1:], inner_clauses, pragma)
        return outer, inner
    return _directive(words, pragma.clauses, pragma), None


def _directive(words: tuple[str, ...], clauses: tuple[c.Clause, ...], pragma: c.Pragma):
    name = " ".join(words)
    if name in LOOPS:
        kind = "loop"
    elif name in ("target", "teams", "parallel", "task", "single", "taskwait", "barrier"):
        kind = words[0]
    elif words in (("masked",), ("master",)):
        kind = "masked"
    else:
        raise _unsupported_directive(pragma, name)
    directive = Directive(kind, words, clauses, pragma)
    _check_clauses(directive)
    return directive


def _check_words(pragma: c.Pragma) -> None:
    for word in pragma.words:
        if word in _UNSUPPORTED_DIRECTIVES:
            why = _UNSUPPORTED_DIRECTIVES[word]
            raise KernelcError(
                f"'#pragma omp {pragma.directive}' is not supported: {why}", pragma.words_span
            )
    if pragma.words[0] == "target" and len(pragma.words) > 1:
        if pragma.words[1] in ("data", "enter", "exit", "update"):
            raise KernelcError(
                f"'#pragma omp {pragma.directive}' is not supported: map the arrays on the "
                "target construct itself",
                pragma.words_span,
            )


def _unsupported_directive(pragma: c.Pragma, name: str) -> KernelcError:
    return KernelcError(f"'#pragma omp {name}' is not supported", pragma.words_span)


def _check_clauses(d: Directive) -> None:
    allowed = ALLOWED[d.kind]
    for clause in d.clauses:
        if clause.name in allowed:
            if clause.name == "num_teams" and "teams" not in d.words:
                raise _bad_clause(d, clause, "num_teams belongs to a teams construct")
            if clause.name == "num_threads" and "parallel" not in d.words:
                raise _bad_clause(d, clause, "num_threads belongs to a parallel construct")
            continue
        why = _WHY.get(clause.name)
        if why is None:
            why = "it is not a clause of this construct, or kernelc does not support it"
        raise _bad_clause(d, clause, why)


def _bad_clause(d: Directive, clause: c.Clause, why: str) -> KernelcError:
    return KernelcError(
        f"clause '{clause.name}' is not supported on '#pragma omp {d.name}': {why}", clause.span
    )
