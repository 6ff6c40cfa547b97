"""A plan too large for this machine's memory is refused before the simulation starts
(runtime/fabric/footprint.py): the wafer-wide XS lookup would otherwise run for many minutes
and then be killed."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelc.cli import main
from kernelc.runtime.fabric import footprint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_estimate_counts_arrays_and_simulator_state_per_pe() -> None:
    state = footprint.PE_STATE_BYTES + footprint.LANE_BYTES
    assert footprint.host_bytes(10, 1000) == 10 * (2 * 1000 + state)


def test_a_plan_that_fits_or_an_unknown_budget_is_let_through() -> None:
    assert footprint.too_big(100, 1000, 2**30) is None
    assert footprint.too_big(10**6, 40_000, None) is None


def test_a_plan_that_does_not_fit_says_how_much_it_needs() -> None:
    why = footprint.too_big(276_000, 37_484, 20 * 2**30)
    assert why is not None
    assert "simulating 276,000 PEs needs about 24.7 GiB" in why
    assert "20.0 GiB available" in why


def test_available_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   2000000 kB\n")
    assert footprint.available_bytes(meminfo) == 2_000_000 * 1024
    assert footprint.available_bytes(tmp_path / "absent") is None


def test_kernelc_run_refuses_before_simulating(monkeypatch, capsys) -> None:
    monkeypatch.setattr(footprint, "available_bytes", lambda: 10**6)
    code = main(
        [
            "run",
            str(EXAMPLES / "sobel.k"),
            "--target",
            "csl",
            "-D",
            "H=32",
            "-D",
            "W=32",
            "--random-inputs",
            "0",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "sobel.k:" in err and "error: simulating" in err
    assert "--grid min" in err
    assert "Traceback" not in err


def test_a_given_grid_is_told_to_shrink(monkeypatch, capsys) -> None:
    monkeypatch.setattr(footprint, "available_bytes", lambda: 10**5)
    argv = [
        "run",
        str(EXAMPLES / "sobel.k"),
        "--target",
        "csl",
        "-D",
        "H=32",
        "-D",
        "W=32",
        "--random-inputs",
        "0",
    ]
    assert main([*argv, "--grid", "4x4"]) == 2
    assert "give a smaller --grid (the plan is 4 x 4 PEs)" in capsys.readouterr().err


@pytest.mark.parametrize("grid", ["2x2"])
def test_a_plan_that_fits_runs(grid: str, capsys) -> None:
    argv = [
        "run",
        str(EXAMPLES / "sobel.k"),
        "--target",
        "csl",
        "-D",
        "H=16",
        "-D",
        "W=16",
        "--random-inputs",
        "0",
    ]
    assert main([*argv, "--grid", grid]) == 0
