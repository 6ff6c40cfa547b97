"""Speed of kernelc's fabric simulator: simulated PE-cycles per second of wall time.

Runs examples/sobel.k at 256 x 256 on 8 x 8 PEs (the emitted run.py against the simulator, as
``kc.run(..., target="csl")`` does) and reports the simulated cycle count, how many PE-cycles
that is, and the wall time of the simulated launch and of the whole host program. All cycle
figures are simulated (modelled costs), not measurements of a wafer.

    python benchmarks/fabric.py [--size 256] [--grid 8x8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import kernelc as kc

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--grid", default="8x8")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.grid.lower().split("x"))
    program = kc.load(ROOT / "examples/sobel.k", params={"H": args.size, "W": args.size})
    img = np.random.default_rng(0).uniform(-1, 1, (args.size, args.size)).astype(np.float32)
    best = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = kc.run_with_stats(program, "csl", {"img": img}, grid=(w, h))
        total = time.perf_counter() - start
        if best is None or result.stats["simulator_launch_seconds"] < best[0]:
            best = (result.stats["simulator_launch_seconds"], total, result.stats)
    launch, total, stats = best
    cycles = stats["simulated_kernel_cycles"]
    pe_cycles = cycles * w * h
    print(
        f"Sobel {args.size} x {args.size} on {w} x {h} PEs (csl, {stats['arch']}), "
        f"best of {args.repeats}"
    )
    print(f"  simulated kernel cycles      {cycles:>14,}")
    print(f"  simulated PE-cycles          {pe_cycles:>14,}")
    print(f"  wall time, simulated launch  {launch:>14.3f} s")
    print(f"  wall time, kc.run end to end {total:>14.3f} s  (build, cslc stand-in, run.py)")
    print(f"  simulated PE-cycles per wall second (launch)     {pe_cycles / launch:>14,.0f}")
    print(f"  simulated PE-cycles per wall second (end to end) {pe_cycles / total:>14,.0f}")


if __name__ == "__main__":
    main()
