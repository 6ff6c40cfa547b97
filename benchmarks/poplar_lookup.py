"""The poplar Lookup lowering against the scalar vertex, in kernelc's IPU model.

    python benchmarks/poplar_lookup.py [L ...]

For examples/xs_lookup.k with small tables (6 nuclides x 40 grid points, XSBench's "small"
materials and material probabilities, ``kernelc xsdata``'s generator) at each L (default 256
and 4096): the tiles used, the modelled cycles (build-time cost model), the cycles the IPU model
counted running the emitted program, the model's error, and the same for the scalar-vertex
fallback (the task as one single-worker vertex, what poplar did before the Lookup lowering).
Both outputs are checked bit-exact against the interpreter. The tables stay replicated (the
split, benchmarks/poplar_split.py, is turned off). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import kernelc as kc
from kernelc import xsbench
from kernelc.backends.poplar import lookup, lower
from kernelc.forms import Lookup

XS = Path(__file__).resolve().parent.parent / "examples" / "xs_lookup.k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lookups", type=int, nargs="*", default=[256, 4096])
    args = parser.parse_args()
    lookup.plan_split = lambda *args: "turned off: this benchmark is the replicated lowering's"
    print("| L | lowering | tiles | modelled | simulated | model error |")
    print("|---:|---|---:|---:|---:|---:|")
    for lookups in args.lookups:
        params = {"NI": 6, "NG": 40, "L": lookups}
        inputs = xsbench.generate("small", lookups, 6, 40).kernel_inputs()
        want = kc.interpret(XS, inputs, params=params)["macro"]
        for label in ("Lookup", "scalar vertex"):
            saved = lower.LOWERINGS.pop(Lookup) if label == "scalar vertex" else None
            try:
                result = kc.run_with_stats(XS, "poplar", inputs, params=params)
            finally:
                if saved is not None:
                    lower.LOWERINGS[Lookup] = saved
            np.testing.assert_array_equal(result.outputs["macro"], want)
            s = result.stats
            error = (s["modelled_cycles"] - s["simulated_cycles"]) / s["simulated_cycles"]
            print(
                f"| {lookups} | {label} | {s['tiles_used']} | {s['modelled_cycles']:,} | "
                f"{s['simulated_cycles']:,} | {error:+.1%} |"
            )


if __name__ == "__main__":
    main()
