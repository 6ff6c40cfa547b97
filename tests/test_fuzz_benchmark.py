"""benchmarks/fuzz.py's tally: a long run shows each distinct finding on stderr when it is
found (the figures come only at the end), and keeps its first program."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz.py"


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_finding_is_shown_at_once_and_only_once(capsys: pytest.CaptureFixture) -> None:
    tally = _fuzz().Tally()
    key = ("error", "csl@2x2", "no table indexed by a key")
    tally.note(key, "kernel first")
    assert capsys.readouterr().err == (
        "-- new error on csl@2x2: no table indexed by a key\nkernel first\n\n"
    )
    tally.note(key, "kernel second")
    assert capsys.readouterr().err == ""
    assert tally.distinct == {key: "kernel first"}
