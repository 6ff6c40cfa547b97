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

UNSUPPORTED: dict[tuple[str, str], str] = {}

GROQ: dict[tuple[str, str], str] = {
    ("groq", "int_div_rem"): "'a' is i32; the groq lowering streams f32 tensors",
    ("groq", "float_to_int_casts"): "'s' is i32; the groq lowering streams f32 tensors",
    ("groq", "gather_clamped"): "'idx' is i32; the groq lowering streams f32 tensors",
    ("groq", "scatter_dropped"): "'scatter' is sequential or data-dependent code",
    ("groq", "search"): "'lookup' is sequential or data-dependent code",
    ("groq", "rand_randbits"): "'randbits' in 'draws': the counter-based generator",
    ("groq", "f16_arithmetic"): "'half' is sequential or data-dependent code",
    ("groq", "select"): "'n' is i32; the groq lowering streams f32 tensors",
    ("groq", "compound_stores"): "'compound' is sequential or data-dependent code",
    ("groq", "mc_xs"): "'rand' in 'mc_xs': the counter-based generator",
    ("groq", "mc_xs_L48"): "'rand' in 'mc_xs': the counter-based generator",
    ("groq", "prefix_sum"): "'prefix' is sequential or data-dependent code",
    ("groq", "guarded_shifted_store"): "'shifted' is sequential or data-dependent code",
    ("groq", "idle_loop.c"): "'idle_loop1' is sequential or data-dependent code",
}
UNSUPPORTED.update(GROQ)

BUGS: dict[tuple[str, str], str] = {}  # (target, case): the known wrong result or crash

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
