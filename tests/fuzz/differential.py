"""The differential check: one generated program on every registered target (and the option
variants of tests/conformance/variants.py), each compared with the reference: the interpreter,
or for C programs the outputs of the program compiled by gcc -fopenmp (then the interpreter is
checked like the targets).

A target may refuse a program with ``kc.Unsupported``; anything else it raises is a finding
(another ``KernelcError`` on a program the interpreter ran: "error"; any other exception:
"crash"), and so is every output that differs ("disagreement"): bit for bit, except float
outputs of programs whose float sums a target may reorder, which are held to the project's
tolerance (kernelc/tolerance.py).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from conformance.variants import VARIANTS

import kernelc as kc
from kernelc import targets
from kernelc.cli import compare
from kernelc.tolerance import default_rtol

SIMULATED = frozenset({"csl", "poplar"})
"""Targets that run a simulator or a C++ compiler per program (about 1 s and 5 s): CI runs
them on fewer programs than the others."""

Config = tuple[str, str, dict]


def configurations(simulated: bool | None = None) -> list[Config]:
    """(label, target, options) of every registered target but the interpreter, with the
    conformance variants; ``simulated`` selects the slow targets (True), the others (False) or
    all (None)."""
    result = []
    for name in targets.names():
        if name == "interp" or (simulated is not None and (name in SIMULATED) != simulated):
            continue
        result.append((name, name, {}))
        result += [(label, name, options) for label, options in VARIANTS.get(name, {}).items()]
    return result


@dataclass(frozen=True)
class Finding:
    kind: str  # "disagreement", "error" (a KernelcError other than Unsupported) or "crash"
    target: str
    message: str


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def check(
    generated,
    configs: Iterable[Config],
    filename: str = "fuzz.k",
    reference: Mapping[str, np.ndarray] | None = None,
) -> Outcome:
    """Run ``generated`` (a fuzz.dsl.Generated or fuzz.omp.Generated) on ``configs`` and compare
    with the interpreter, or with ``reference`` (then the interpreter runs as one more target)."""
    outcome = Outcome()
    program = kc.loads(generated.source, filename)
    inputs = generated.draw_inputs()
    program.graph(inputs=inputs)  # a user error here is the generator's: it propagates
    if reference is None:
        try:
            with np.errstate(all="ignore"):
                want = kc.run(program, "interp", inputs)
        except Exception:
            outcome.findings.append(Finding("crash", "interp", traceback.format_exc()))
            return outcome
    else:
        want = dict(reference)
        configs = [("interp", "interp", {}), *configs]
    oracle = "the interpreter" if reference is None else "gcc -fopenmp"
    for label, target, options in configs:
        try:
            with np.errstate(all="ignore"):
                got = kc.run(program, target, inputs, **options)
        except kc.Unsupported as err:
            outcome.refused[label] = str(err)
            continue
        except kc.KernelcError as err:
            outcome.findings.append(Finding("error", label, str(err)))
            continue
        except Exception:
            outcome.findings.append(Finding("crash", label, traceback.format_exc()))
            continue
        outcome.ran.append(label)
        for name, expected in want.items():
            if name not in got:
                outcome.findings.append(
                    Finding("disagreement", label, f"no output '{name}' ({oracle} has one)")
                )
                continue
            rtol = 0.0
            if generated.reordered and expected.dtype.kind == "f":
                rtol = default_rtol(expected.dtype)
            verdict = compare(got[name], expected, rtol)
            if verdict.bad is not None:
                index, g, w, allowed = verdict.bad
                outcome.findings.append(
                    Finding(
                        "disagreement",
                        label,
                        f"'{name}'{[int(i) for i in index]} is {g!r}, {oracle} gives "
                        f"{w!r} (allowed difference {allowed:.3g}); {verdict.count} of "
                        f"{expected.size} elements differ",
                    )
                )
    return outcome


def report(generated, outcome: Outcome) -> str:
    """The findings with the program and its inputs, ready to reproduce."""
    lines = [f"{f.kind} on {f.target}: {f.message}" for f in outcome.findings]
    return "\n".join([*lines, generated.reproducer()])
