"""Parser fuzzing at length: random small edits (tests/mutants.py) of every example, N per
frontend, each loaded, bound and built for ``interp`` as the CLI would. Every mutant must give
a program or a located error (``file:line:col``); prints how many did which, the crashes (each
distinct one with its mutant) and errors without a location, and the time taken.

    python benchmarks/mutants.py --per-frontend 100000 --seed 1 [--frontend C]

Each mutant runs under an address-space limit (--memory-gib, 4 by default), so one that makes
kernelc allocate without bound is reported as a crash (MemoryError) instead of taking the
machine down. SIGINT or SIGTERM ends the run early and prints its figures so far.
"""

from __future__ import annotations

import argparse
import random
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutants import SOURCES, mutate  # noqa: E402

import kernelc as kc  # noqa: E402
from kernelc.diagnostics import UNKNOWN_SPAN  # noqa: E402


def _outcome(name: str, text: str) -> str:
    filename = "fuzz.c" if name.endswith(".c") else "fuzz.k"
    try:
        kc.build(kc.loads(text, filename=filename), "interp")
    except kc.KernelcError as err:
        return "unlocated error" if err.span == UNKNOWN_SPAN else "located error"
    return "program"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-frontend", type=int, default=10_000, help="mutants per frontend")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--frontend", choices=["DSL", "C"], help="only this frontend's mutants")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space limit")
    args = parser.parse_args()
    limit = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stop = {"now": False}

    def interrupt(signum, frame) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    rng = random.Random(args.seed)
    draw = rng.randint
    frontends = {
        "DSL": sorted(n for n in SOURCES if n.endswith(".k")),
        "C": sorted(n for n in SOURCES if n.endswith(".c")),
    }
    if args.frontend is not None:
        frontends = {args.frontend: frontends[args.frontend]}
    tally: Counter[tuple[str, str]] = Counter()
    crashes: dict[str, str] = {}
    unlocated: dict[str, str] = {}
    start = time.perf_counter()
    for frontend, names in frontends.items():
        for k in range(args.per_frontend):
            if stop["now"]:
                break
            name = names[k % len(names)]
            text = mutate(SOURCES[name], draw, draw(1, 3))
            try:
                outcome = _outcome(name, text)
            except Exception as err:  # noqa: BLE001 - a crash is what this run looks for
                outcome = "crash"
                key = f"{type(err).__name__}: {traceback.extract_tb(err.__traceback__)[-1].name}"
                crashes.setdefault(key, f"{traceback.format_exc()}--- mutant of {name} ---\n{text}")
            if outcome == "unlocated error":
                unlocated.setdefault(name, text)
            tally[(frontend, outcome)] += 1
            if (k + 1) % 5000 == 0:
                print(f"{frontend}: {k + 1:,} mutants", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    status = " (stopped early)" if stop["now"] else ""
    print(f"parser mutants, seed {args.seed}, {seconds:,.0f} s{status}")
    for frontend in frontends:
        done = sum(n for (f, _), n in tally.items() if f == frontend)
        parts = ", ".join(f"{o} {n:,}" for (f, o), n in sorted(tally.items()) if f == frontend)
        print(f"  {frontend}: {done:,} mutants: {parts}")
    for key, text in crashes.items():
        print(f"\ncrash {key}\n{text}")
    for name, text in unlocated.items():
        print(f"\nerror without a location, a mutant of {name}:\n{text}")


if __name__ == "__main__":
    main()
