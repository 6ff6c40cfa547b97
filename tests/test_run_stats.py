"""``kc.run_with_stats(...).stats``: every target returns exactly the keys README.md's "Run
statistics" table documents for it, as plain numbers and strings, or per-piece figures as a
dict by name of numbers (or [start, end] pairs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import targets

ROOT = Path(__file__).resolve().parent.parent


def documented() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Run statistics", 1)[1].split("\n#", 1)[0]
    keys: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            keys.setdefault(cells[0].strip("`"), set()).add(cells[1].strip("`"))
    return keys


def test_every_target_is_documented() -> None:
    assert set(documented()) == set(targets.names())


@pytest.mark.parametrize("target", targets.names())
def test_stats_are_the_documented_keys(target: str) -> None:
    if target == "poplar" and shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("the IPU model compiles the emitted C++ with g++, which is not installed")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones((4, 2), np.float32)
    options = {"grid": (2, 2)} if target == "csl" else {}
    result = kc.run_with_stats(ROOT / "examples" / "gemm.k", target, {"a": a, "b": b}, **options)
    assert np.array_equal(result.outputs["c"], a @ b)
    assert set(result.stats) == documented()[target]
    for key, value in result.stats.items():
        parts = list(value.values()) if isinstance(value, dict) else [value]
        flat = [x for p in parts for x in (p if isinstance(p, list) else [p])]
        for part in flat:
            assert isinstance(part, int | float | str) and not isinstance(part, bool), key
    cycles = [
        v for k, v in result.stats.items() if k.endswith("cycles") and not isinstance(v, dict)
    ]
    assert all(c >= 0 for c in cycles) and (not cycles or max(cycles) > 0)
