"""XSBench's lookup at 20,000 lookups on csl, through several batches, checked in the fabric
simulator against the reference interpreter (issue 9's last acceptance point). Lockstep
execution (runtime/fabric/lockstep.py) is what makes this fit the CI budget: every PE of the
grid scans its row's items in one set of NumPy lanes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kernelc as kc
from kernelc.runtime.fabric import footprint

ROOT = Path(__file__).resolve().parent.parent
XS = ROOT / "examples" / "xs_lookup.k"
GRID = (644, 16)  # every key block and energy band has its column; few rows: many batches
PARAMS = {"L": 20000}


def test_the_plan_sends_the_lookups_through_several_batches() -> None:
    art = kc.build(XS, "csl", params=PARAMS, grid=GRID)
    summary = "\n".join(art.summary)
    assert "18 batches of 1,168 items (items 0 .. 20,000)" in summary
    assert art.manifest["grid"] == list(GRID)


def test_twenty_thousand_lookups_match_the_interpreter_in_the_simulator() -> None:
    art = kc.build(XS, "csl", params=PARAMS, grid=GRID)
    pes = GRID[0] * GRID[1]
    why = footprint.too_big(pes, art.manifest["memory"]["data_bytes"], footprint.available_bytes())
    assert why is None, why
    cmd = [sys.executable, "-P", "-m", "kernelc", "check", str(XS), "--target", "csl"]
    cmd += ["-D", "L=20000", "--grid", f"{GRID[0]}x{GRID[1]}", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: xs_lookup on csl matches the reference interpreter")
