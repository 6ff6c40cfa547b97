"""The fabric simulator's per-PE statistics and outputs, pinned.

The simulator evaluates each PE program's module scope once per distinct set of the values it
reads, and copies that state to the other PEs (runtime/fabric/setup.py). These figures were
recorded before that cache existed (and re-recorded when the PE programs began to read their
run-time offsets from <layout>, which adds read_coords to each launch; the output bits did not
change): a run must give exactly the same simulated cycles, per-PE busy cycles, per-PE memory
and output bits.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import inputs
from kernelc.runtime.fabric.runner import compile_program, run_host_script
from kernelc.runtime.fabric.sdk import STATS_FILE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def simulate(example: str, params: dict[str, int], grid: tuple[int, int], arch: str, tmp: Path):
    """Build, 'cslc' and run the emitted run.py; the stats (less wall times) and output digests."""
    program = kc.load(EXAMPLES / f"{example}.k", params=params)
    art = kc.build(program, "csl", grid=grid, arch=arch)
    src = art.write(tmp / "artifact")
    ins, out, outs = tmp / "inputs", tmp / "out", tmp / "outputs"
    ins.mkdir()
    for name, value in inputs.random_inputs(program.graph(), 7).items():
        np.save(ins / f"{name}.npy", np.ascontiguousarray(value))
    manifest = art.manifest
    compile_program(
        src / "layout.csl",
        arch=manifest["arch"],
        fabric_dims=tuple(manifest["fabric_dims"]),
        fabric_offsets=tuple(manifest["fabric_offsets"]),
        params=dict(manifest["cslc_params"]),
        channels=1,
        memcpy=True,
        out_dir=out,
    )
    run_host_script(
        src / "run.py", ["--name", str(out), "--inputs", str(ins), "--outputs", str(outs)]
    )
    stats = json.loads((out / STATS_FILE).read_text())
    del stats["wall_seconds"], stats["launch_wall_seconds"]
    digests = {
        p.stem: hashlib.sha256(np.load(p).tobytes()).hexdigest()[:16]
        for p in sorted(outs.glob("*.npy"))
    }
    return stats, digests


# Recorded from the simulator before the setup cache (commit d1197f5): (example, params, grid,
# arch), then the stats less wall times and the sha256 prefixes of the outputs.
RECORDED = [
    (
        ("sobel", {"H": 20, "W": 18}, (3, 2), "wse2"),
        {
            "arch": "wse2",
            "busy_cycles_per_pe": [[1446, 1741, 1446], [1446, 1741, 1446]],
            "grid": [3, 2],
            "launches": [{"function": "f_sobel", "simulated_cycles": 1691}],
            "max_busy_cycles": 1741,
            "max_memory_bytes": 9402,
            "memory_bytes_per_pe": [[9402, 9402, 9402], [9402, 9402, 9402]],
            "simulated_kernel_cycles": 1691,
            "simulated_memcpy_cycles": 3754,
            "simulated_total_cycles": 5445,
        },
        {"mag": "6a01789573b1c908"},
    ),
    (
        ("sobel", {"H": 20, "W": 18}, (3, 2), "wse3"),
        {
            "arch": "wse3",
            "busy_cycles_per_pe": [[1446, 1741, 1446], [1446, 1741, 1446]],
            "grid": [3, 2],
            "launches": [{"function": "f_sobel", "simulated_cycles": 1691}],
            "max_busy_cycles": 1741,
            "max_memory_bytes": 9402,
            "memory_bytes_per_pe": [[9402, 9402, 9402], [9402, 9402, 9402]],
            "simulated_kernel_cycles": 1691,
            "simulated_memcpy_cycles": 3754,
            "simulated_total_cycles": 5445,
        },
        {"mag": "6a01789573b1c908"},
    ),
    (
        ("gemm", {"M": 12, "N": 10, "K": 9}, (4, 4), "wse2"),
        {
            "arch": "wse2",
            "busy_cycles_per_pe": [
                [545, 545, 545, 676],
                [545, 545, 545, 676],
                [545, 288, 288, 419],
                [288, 288, 288, 419],
            ],
            "grid": [4, 4],
            "launches": [{"function": "f_gemm", "simulated_cycles": 706}],
            "max_busy_cycles": 676,
            "max_memory_bytes": 8322,
            "memory_bytes_per_pe": [
                [8322, 8322, 8322, 8322],
                [8322, 8322, 8322, 8322],
                [8322, 8322, 8322, 8322],
                [8322, 8322, 8322, 8322],
            ],
            "simulated_kernel_cycles": 706,
            "simulated_memcpy_cycles": 1912,
            "simulated_total_cycles": 2618,
        },
        {"c": "51946ed70c56685f"},
    ),
    (
        ("pca", {"B": 4, "P": 64, "K": 8}, (3, 3), "wse2"),
        {
            "arch": "wse2",
            "busy_cycles_per_pe": [[884, 796, 839], [796, 796, 839], [796, 796, 839]],
            "grid": [3, 3],
            "launches": [
                {"function": "f_centre_0", "simulated_cycles": 87},
                {"function": "f_project_1", "simulated_cycles": 884},
            ],
            "max_busy_cycles": 884,
            "max_memory_bytes": 7962,
            "memory_bytes_per_pe": [[7962, 7962, 7962], [7962, 7962, 7962], [7962, 7962, 7962]],
            "simulated_kernel_cycles": 971,
            "simulated_memcpy_cycles": 3896,
            "simulated_total_cycles": 4867,
        },
        {"codes": "f3f6ed9e1bf98de4"},
    ),
]


@pytest.mark.parametrize(
    ("case", "stats", "digests"), RECORDED, ids=[f"{c[0]}-{c[3]}" for c, _, _ in RECORDED]
)
def test_stats_and_outputs_are_unchanged(case, stats, digests, tmp_path: Path) -> None:
    assert simulate(*case, tmp_path) == (stats, digests)
