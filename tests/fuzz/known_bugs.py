"""Known bugs found by the fuzzer in targets that are being rewritten (not fixed here): the
construct each bug needs is left out of the programs generated for that target, so CI stays
green while the bug stands. docs/TESTING.md ("Fuzzing") lists the same entries.

``AVOID[target]`` maps a construct (a feature name of fuzz.dsl) to the bug it triggers.
"""

from __future__ import annotations

AVOID: dict[str, dict[str, str]] = {}


REFUSED: dict[str, dict[str, str]] = {
    target: {f"tensor:{t}": "host transfers are 32-bit only (docs/CSL.md)" for t in narrow}
    for target, narrow in (("csl", ("f16", "u16", "bool")),)
}
"""Constructs a target refuses with kc.Unsupported, as documented: left out of its programs so
that its share of the run goes to programs it runs."""


def avoid(labels) -> frozenset[str]:
    """The constructs to leave out for targets (or conformance variants: 'csl@2x2' is csl)."""
    targets = {label.split("@")[0] for label in labels}
    return frozenset(c for t in targets for table in (AVOID, REFUSED) for c in table.get(t, {}))


AVOID_C: dict[str, dict[str, str]] = {}
"""The same for the C programs of fuzz.omp (its construct names)."""

REFUSED_C: dict[str, dict[str, str]] = {
    "csl": {"narrow-arrays": "host transfers are 32-bit only (docs/CSL.md)"},
}


def avoid_c(labels) -> frozenset[str]:
    """The constructs of fuzz.omp to leave out for targets (or variants)."""
    targets = {label.split("@")[0] for label in labels}
    return frozenset(c for t in targets for table in (AVOID_C, REFUSED_C) for c in table.get(t, {}))
