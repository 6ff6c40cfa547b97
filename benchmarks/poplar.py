"""The poplar target in kernelc's IPU model: modelled vs simulated cycles, and wall times.

    python benchmarks/poplar.py [--tiles N]

For the four DSL examples (sobel, gemm, pca, xs_lookup) at sizes the model runs in seconds,
Sobel 256x256 on 64 tiles, and softmax 37x100 (a Reduction): the tiles the planner chose (or
``--tiles``), the modelled cycles (build-time cost model) and the cycles the IPU model counted
running the emitted program, their ratio, and wall times: building the artifact, compiling the
emitted C++ with g++ (the model's own sources are compiled once beforehand and not counted),
and ``kc.run`` (which plans again, finds the binary cached and simulates). A fresh compile
cache is used, so every program compiles. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import kernelc as kc
from kernelc.inputs import random_inputs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CASES = {
    "sobel 256x256": ("sobel.k", {"H": 256, "W": 256}, None),
    "sobel 256x256 @64": ("sobel.k", {"H": 256, "W": 256}, 64),
    "gemm 128^3": ("gemm.k", {"M": 128, "N": 128, "K": 128}, None),
    "pca 16x4096x32": ("pca.k", {"B": 16, "P": 4096, "K": 32}, None),
    "xs_lookup L=500": ("xs_lookup.k", {"NI": 8, "NG": 200, "NM": 4, "MAXN": 8, "L": 500}, None),
    # the Reduction form (the conformance suite's softmax kernel)
    "softmax 37x100": (ROOT / "tests" / "conformance" / "softmax.k", {"R": 37, "C": 100}, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, help="force this many tiles for every case")
    args = parser.parse_args()
    from kernelc.runtime.ipu import runner

    with tempfile.TemporaryDirectory(prefix="kernelc-bench-") as tmp:
        os.environ["KERNELC_CACHE_DIR"] = tmp
        runner.runtime_objects(runner.compiler())  # the model's sources, once
        print(
            "| case | tiles | modelled | simulated | modelled/simulated | build s | g++ s | run s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, (file, params, tiles) in CASES.items():
            tiles = args.tiles or tiles
            options = {} if tiles is None else {"tiles": tiles}
            program = kc.load(EXAMPLES / file, params=params)
            inputs = random_inputs(program.graph(None, params), 0)
            start = time.perf_counter()
            artifact = kc.build(program, "poplar", params=params, **options)
            built = time.perf_counter()
            src = artifact.write(Path(tmp) / label.replace(" ", "_") / "artifact")
            runner.build(src)  # compiles the emitted C++; the run below finds it cached
            compiled = time.perf_counter()
            result = kc.run_with_stats(program, "poplar", inputs, params=params, **options)
            ran = time.perf_counter()
            want = kc.interpret(program, inputs, params=params)
            for name, value in want.items():
                np.testing.assert_allclose(result.outputs[name], value, rtol=1e-5, atol=1e-6)
            s = result.stats
            ratio = s["modelled_cycles"] / s["simulated_cycles"]
            print(
                f"| {label} | {s['tiles_used']} | {s['modelled_cycles']:,} | "
                f"{s['simulated_cycles']:,} | {ratio:.3f} | {built - start:.2f} | "
                f"{compiled - built:.2f} | {ran - compiled:.2f} |"
            )


if __name__ == "__main__":
    main()
