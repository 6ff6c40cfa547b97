"""The poplar Lookup lowering with its tables split over tiles, in kernelc's IPU model.

    python benchmarks/poplar_split.py [NIxNGxL ...]

For examples/xs_lookup.k with XSBench's "small" materials (``kernelc xsdata``'s generator) at
each size (default: the rows of docs/POPLAR.md's table, full-size tables included): the
pieces, groups of tiles (copies of the pieces) and batches the planner chose, the tiles used,
the modelled cycles (build-time cost model), the cycles the IPU model counted running the
emitted program, the model's error, and
the largest difference from the interpreter relative to the largest output (the split adds
each item's terms in another order). Prints a Markdown table; all figures are modelled.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

import kernelc as kc
from kernelc import xsbench

XS = Path(__file__).resolve().parent.parent / "examples" / "xs_lookup.k"
SIZES = [
    *("68x1000x64", "68x1000x1024", "2x30000x64"),
    *("68x11303x64", "68x11303x1024", "68x11303x4096"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", default=SIZES, help="NIxNGxL")
    args = parser.parse_args()
    print(
        "| NI x NG, L | pieces | groups | batches | tiles | modelled | simulated | error "
        "| rel. diff. |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        ni, ng, lookups = (int(x) for x in size.split("x"))
        params = {"NI": ni, "NG": ng, "L": lookups}
        inputs = xsbench.generate("small", lookups, ni, ng).kernel_inputs()
        want = kc.interpret(XS, inputs, params=params)["macro"]
        result = kc.run_with_stats(XS, "poplar", inputs, params=params)
        summary = "\n".join(kc.build(XS, "poplar", params=params).summary)
        pieces = re.search(r"cut into (\d+) key groups(?: x (\d+) energy bands)?", summary)
        batches = re.search(r"in (\d+) batch\(es\)", summary)
        more = re.search(r"to (\d+) more groups", summary)
        groups = 1 + int(more[1]) if more else 1
        if pieces is None or batches is None:
            raise SystemExit(f"{size}: the planner kept the tables replicated")
        got = result.outputs["macro"]
        diff = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        s = result.stats
        error = (s["modelled_cycles"] - s["simulated_cycles"]) / s["simulated_cycles"]
        print(
            f"| {ni:,} x {ng:,}, {lookups:,} | {pieces[1]} x {pieces[2] or 1} | {groups} | "
            f"{batches[1]} | "
            f"{s['tiles_used']} | {s['modelled_cycles']:,} | {s['simulated_cycles']:,} | "
            f"{error:+.1%} | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
