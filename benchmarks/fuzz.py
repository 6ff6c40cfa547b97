"""Differential fuzzing at length: random DSL programs (tests/fuzz/dsl.py) on every registered
target against the reference interpreter, and random OpenMP C programs (tests/fuzz/omp.py) on
the interpreter and every target against the same program compiled by gcc -fopenmp. Prints the
figures: programs generated, target runs, refusals (per reason), disagreements, errors and
crashes found (each distinct one with its program), time taken.

    python benchmarks/fuzz.py --dsl 2000 --sim 100
    python benchmarks/fuzz.py --dsl 0 --sim 0 --c 2000 --c-sim 100
    python benchmarks/fuzz.py --dsl 0 --sim 5000 --only csl

A progress line goes to stderr every 100 programs, and each distinct finding as soon as it is
found; SIGINT or SIGTERM ends the current run early
and prints its figures so far.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz import differential, known_bugs, omp  # noqa: E402
from fuzz.dsl import programs  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

import kernelc as kc  # noqa: E402


class Tally:
    def __init__(self) -> None:
        self.programs = 0
        self.runs: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.reasons: Counter[tuple[str, str]] = Counter()
        self.found: Counter[str] = Counter()
        self.distinct: dict[tuple[str, str, str], str] = {}
        self.seconds = 0.0
        self.drawn = 0  # programs generated, including those the check could not run
        self.interrupted = False

    def add(self, generated, outcome) -> None:
        self.programs += 1
        self.runs.update(outcome.ran)
        self.refused.update(list(outcome.refused))
        for label, message in outcome.refused.items():
            self.reasons[(label, reason(message))] += 1
        for finding in outcome.findings:
            self.found[finding.kind] += 1
            lines = [ln for ln in finding.message.strip().splitlines() if ln.strip()]
            key = (finding.kind, finding.target, lines[-1][:100] if lines else "")
            self.note(key, differential.report(generated, outcome))

    def note(self, key: tuple[str, str, str], text: str) -> None:
        """Keep the first program of each distinct finding, and show it on stderr at once, so
        a long run can be looked into while it goes on."""
        if key not in self.distinct:
            self.distinct[key] = text
            print(f"-- new {key[0]} on {key[1]}: {key[2]}\n{text}\n", file=sys.stderr, flush=True)


def reason(message: str) -> str:
    """A refusal's message without its location and the program's own names."""
    line = message.splitlines()[0].split(" error: ", 1)[-1]
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", line))[:120]


def _search(strategy, count: int, body, tally: Tally) -> None:
    """Run ``body`` on ``count`` examples; a progress line every 100 on stderr, and an interrupt
    (Ctrl-C, SIGINT) ends the run early with the figures so far."""

    def step(example) -> None:
        body(example)
        tally.drawn += 1
        if tally.drawn % 100 == 0:
            print(f"   ... {tally.drawn} programs", file=sys.stderr, flush=True)

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(example) -> None:
        step(example)

    try:
        run()
    except KeyboardInterrupt:
        tally.interrupted = True


def fuzz_dsl(tally: Tally, configs, count: int) -> None:
    avoid = known_bugs.avoid(label for label, _, _ in configs)

    def body(generated) -> None:
        try:
            tally.add(generated, differential.check(generated, configs))
        except kc.KernelcError as err:
            tally.found["invalid program"] += 1
            key = ("invalid program", "generator", str(err).splitlines()[0][:100])
            tally.note(key, f"{err}\n{generated.source}")

    start = time.perf_counter()
    _search(programs(avoid=avoid), count, body, tally)
    tally.seconds += time.perf_counter() - start


def fuzz_c(tally: Tally, configs, count: int) -> None:
    """C programs: gcc -fopenmp's outputs are the reference for the interpreter and ``configs``.
    A program the C frontend rejects is a finding ("refused by the frontend"): the generator
    writes only programs docs/OPENMP.md accepts."""
    avoid = known_bugs.avoid_c(label for label, _, _ in configs)

    def body(generated) -> None:
        try:
            reference = generated.run_gcc()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            tally.found["gcc failed"] += 1
            detail = getattr(err, "stderr", b"") or b""
            text = detail.decode() if isinstance(detail, bytes) else detail
            key = ("gcc failed", "gcc", (text.strip().splitlines() or [str(err)])[-1][:100])
            tally.note(key, f"{err}\n{text}\n{generated.reproducer()}")
            return
        try:
            tally.add(generated, differential.check(generated, configs, "fuzz.c", reference))
        except kc.KernelcError as err:
            tally.found["refused by the frontend"] += 1
            key = ("refused by the frontend", "frontend", reason(str(err)))
            tally.note(key, f"{err}\n{generated.reproducer()}")

    start = time.perf_counter()
    _search(omp.programs(avoid=avoid), count, body, tally)
    tally.seconds += time.perf_counter() - start


def show(title: str, tally: Tally) -> None:
    cut = " (interrupted)" if tally.interrupted else ""
    print(f"== {title}: {tally.programs} programs in {tally.seconds:.1f} s{cut}")
    for label in sorted(set(tally.runs) | set(tally.refused)):
        print(f"   {label}: ran {tally.runs[label]}, refused {tally.refused[label]}")
    for (label, why), n in sorted(tally.reasons.items(), key=lambda item: (item[0][0], -item[1])):
        print(f"      {label} refused {n}: {why}")
    kinds = (
        "disagreement", "error", "crash", "invalid program", "refused by the frontend", "gcc failed"
    )  # fmt: skip
    print("   found: " + ", ".join(f"{tally.found[k]} {k}" for k in kinds))
    for (kind, target, line), text in sorted(tally.distinct.items()):
        print(f"-- {kind} on {target}: {line}\n{text}\n")


def _stop(signum, frame) -> None:
    """SIGTERM (and SIGINT, also where a background shell ignores it) ends the current run."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsl", type=int, default=500, help="DSL programs on the fast targets")
    parser.add_argument("--sim", type=int, default=30, help="DSL programs per simulated target")
    parser.add_argument("--c", type=int, default=0, help="C programs on the fast targets")
    parser.add_argument("--c-sim", type=int, default=0, help="C programs per simulated target")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(differential.SIMULATED),
        help="run only this simulated target (repeatable; default: every one)",
    )
    args = parser.parse_args()
    simulated = sorted(args.only or differential.SIMULATED)
    fast = differential.configurations(simulated=False)
    if args.dsl:
        tally = Tally()
        fuzz_dsl(tally, fast, args.dsl)
        show(f"DSL on {', '.join(label for label, _, _ in fast)}", tally)
    for name in simulated:
        configs = [c for c in differential.configurations(simulated=True) if c[1] == name]
        if args.sim and configs:
            tally = Tally()
            fuzz_dsl(tally, configs, args.sim)
            show(f"DSL on {', '.join(label for label, _, _ in configs)}", tally)
    if args.c:
        tally = Tally()
        fuzz_c(tally, fast, args.c)
        show(f"C (gcc -fopenmp) on interp, {', '.join(label for label, _, _ in fast)}", tally)
    for name in simulated:
        configs = [c for c in differential.configurations(simulated=True) if c[1] == name]
        if args.c_sim and configs:
            tally = Tally()
            fuzz_c(tally, configs, args.c_sim)
            show(f"C (gcc -fopenmp) on interp, {', '.join(c[0] for c in configs)}", tally)


if __name__ == "__main__":
    main()
