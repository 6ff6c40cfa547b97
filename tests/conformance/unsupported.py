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

F16_TRANSFER = "is f16; the csl backend moves 32-bit tensors"

UNSUPPORTED: dict[tuple[str, str], str] = {
    (label, case): f"'{tensor}' {F16_TRANSFER}"
    for label in ("csl", "csl@2x2", "csl@3x5")
    for case, tensor in (("heat_f16", "u"), ("dense_f16", "x"))
}

BUGS: dict[tuple[str, str], str] = {}

# poplar compiles each case's emitted C++ with g++ (a few seconds on CI): the cases that repeat
# another case's program at other sizes or from the other frontend run only with KERNELC_SLOW=1
SLOW: set[tuple[str, str]] = {
    (label, case)
    for label in ("poplar", "poplar@7")
    for case in (
        "heat_5x17",
        "dense_3x17x5",
        "softmax_3x17",
        "mc_xs_L48",
        "sobel.c",
        "gemm.c",
        "pca.c",
        "xs_lookup.c",
    )
}
