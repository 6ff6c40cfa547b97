"""What each target (or variant, conformance/variants.py) is expected to refuse, and the known
wrong results, of the conformance cases.

``UNSUPPORTED[(target, case)]`` is a phrase that the target's ``kc.Unsupported`` message must
contain (the construct it names). The suite fails when a listed case stops raising ("update the
table") and when an unlisted case raises, so this table is always exactly what the targets refuse.
docs/TESTING.md shows the same table; a test keeps the two equal.

``BUGS[(target, case)]`` are wrong results or crashes found by the suite and not yet fixed: the
test is an ``xfail(strict=True)`` with this reason, so a fix makes it fail until the entry goes.

``SLOW`` are the (target, case) pairs that CI skips to stay within its time budget; they run
with KERNELC_SLOW=1.
"""

from __future__ import annotations

F16_SCALAR_TASKS = "'x' is 16-bit and 'dense' runs as scalar tasks"

UNSUPPORTED: dict[tuple[str, str], str] = {
    (label, "dense_f16"): F16_SCALAR_TASKS for label in ("csl", "csl@2x2", "csl@3x5")
}

BUGS: dict[tuple[str, str], str] = {
    ("interp", "guarded_shifted_store"): (
        "the reference interpreter runs the i loop as parallel lanes (access analysis marks it "
        "parallel although iteration i + 1's if-branch store v[i, j] overwrites the element "
        "iteration i's else-branch stores, issue 14) and executes the else branch's stores after "
        "the if branch's for all lanes, so v[0, 1:M-1] keeps u[0, j] instead of the later "
        "u[1, j] + u[2, j]; cpu and csl give the sequential result"
    ),
}

SLOW: set[tuple[str, str]] = set()
