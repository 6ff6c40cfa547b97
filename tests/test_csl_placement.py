"""The csl placement policies: ``--grid auto`` (fewest modelled cycles, fewer PEs within 5 %),
``--grid min`` (smallest grid that fits) and ``--grid WxH``; what ``kernelc build`` prints and
kernelc.json records about the choice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc.backends.csl.policy import NEAR, Candidate, pick
from kernelc.cli import main

ROOT = Path(__file__).resolve().parent.parent
GEMM = {"M": 24, "N": 36, "K": 40}


def _placement(example: str, params: dict, **options) -> dict:
    return kc.build(ROOT / "examples" / example, "csl", params=params, **options).manifest[
        "placement"
    ]


def test_auto_spreads_the_small_gemm_over_more_than_one_pe() -> None:
    auto = _placement("gemm.k", GEMM)
    smallest = _placement("gemm.k", GEMM, grid="min")
    assert smallest["chosen"]["grid"] == [1, 1]  # the choice before auto
    assert smallest["chosen"]["modelled_cycles"] == 49_601
    w, h = auto["chosen"]["grid"]
    assert w * h > 1
    assert auto["chosen"]["modelled_cycles"] * 4 < smallest["chosen"]["modelled_cycles"]
    assert auto["policy"] == "auto" and auto["runner_up"] is not None


def test_the_default_is_auto() -> None:
    assert _placement("gemm.k", GEMM) == _placement("gemm.k", GEMM, grid="auto")


@pytest.mark.parametrize(
    ("example", "params", "grid"),
    [
        ("gemm.k", GEMM, [1, 1]),
        ("sobel.k", {"H": 800, "W": 800}, [15, 9]),
        ("sobel.k", {"H": 64, "W": 48}, [1, 1]),
        ("pca.k", {}, [27, 8]),
    ],
)
def test_min_reproduces_the_smallest_grid_that_fits(example, params, grid) -> None:
    placement = _placement(example, params, grid="min")
    assert placement["policy"] == "min"
    assert placement["chosen"]["grid"] == grid
    assert placement["runner_up"] is None


@pytest.mark.parametrize(
    ("example", "params"),
    [
        ("gemm.k", GEMM),
        ("gemm.k", {"M": 64, "N": 64, "K": 64}),
        ("sobel.k", {"H": 64, "W": 48}),
        ("sobel.k", {"H": 9, "W": 9}),
        ("pca.k", {"B": 4, "P": 64, "K": 8}),
        ("xs_lookup.k", {"L": 2000}),
    ],
)
def test_auto_never_models_slower_than_min_and_fits(example, params) -> None:
    auto = _placement(example, params)
    smallest = _placement(example, params, grid="min")
    chosen = auto["chosen"]
    assert chosen["modelled_cycles"] <= smallest["chosen"]["modelled_cycles"]
    assert chosen["per_pe_bytes"] <= 49_152
    runner = auto["runner_up"]
    if runner is not None:
        assert runner["grid"] != chosen["grid"]
        # the runner-up is slower, or faster by less than the 5 % that fewer PEs are worth
        if runner["modelled_cycles"] < chosen["modelled_cycles"]:
            assert chosen["modelled_cycles"] <= runner["modelled_cycles"] * (1 + NEAR)
            assert runner["grid"][0] * runner["grid"][1] > chosen["grid"][0] * chosen["grid"][1]


def test_fewer_pes_win_within_five_percent() -> None:
    big = Candidate(16, 16, 1000, 8000)
    near = Candidate(8, 8, 1049, 9000)
    assert pick([big, near]) == (near, big)
    far = Candidate(8, 8, 1051, 9000)
    assert pick([big, far]) == (big, far)
    # among the near ones, the fewest PEs; the runner-up is the fastest of the rest
    small = Candidate(4, 8, 1040, 9500)
    assert pick([big, near, small]) == (small, big)
    assert pick([big]) == (big, None)


def test_build_prints_the_chosen_plan_and_the_runner_up(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gemm"
    args = ["build", str(ROOT / "examples/gemm.k"), "--target", "csl", "-o", str(out)]
    args += [f"-D{k}={v}" for k, v in GEMM.items()]
    assert main(args) == 0
    text = capsys.readouterr().out
    placement = json.loads((out / "kernelc.json").read_text())["placement"]
    chosen, runner = placement["chosen"], placement["runner_up"]
    w, h = chosen["grid"]
    assert f"csl: wse2 grid {w} x {h} PEs" in text
    assert (
        f"csl: placement auto (fewest modelled cycles, fewer PEs within 5 %): {w} x {h} PEs, "
        f"modelled {chosen['modelled_cycles']:,} cycles, {chosen['per_pe_bytes']:,} bytes per PE"
    ) in text
    rw, rh = runner["grid"]
    assert (
        f"csl: runner-up: {rw} x {rh} PEs, modelled {runner['modelled_cycles']:,} cycles, "
        f"{runner['per_pe_bytes']:,} bytes per PE"
    ) in text


def test_a_given_grid_is_recorded_without_a_runner_up(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gemm"
    args = ["build", str(ROOT / "examples/gemm.k"), "--target", "csl", "--grid", "2x3"]
    args += ["-o", str(out), *[f"-D{k}={v}" for k, v in GEMM.items()]]
    assert main(args) == 0
    assert "csl: placement given (--grid): 2 x 3 PEs" in capsys.readouterr().out
    placement = json.loads((out / "kernelc.json").read_text())["placement"]
    assert placement["policy"] == "given" and placement["runner_up"] is None
    assert placement["chosen"]["grid"] == [2, 3]


@pytest.mark.parametrize("value", ["fast", "8by8", "0x3", "auto8", "751x1", "x"])
def test_bad_grid_values_are_located_errors(value: str, tmp_path: Path, capsys) -> None:
    args = ["build", str(ROOT / "examples/sobel.k"), "--target", "csl", "--grid", value]
    assert main([*args, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "<command line>:1:1: error: --grid" in err
    assert "^" in err
    with pytest.raises(kc.KernelcError, match="--grid"):
        kc.build(ROOT / "examples/sobel.k", "csl", grid=value)


def test_auto_plan_runs_and_matches_numpy() -> None:
    """The auto grid of a small stencil (tiny blocks on many PEs) runs in the simulator."""
    program = kc.load(ROOT / "examples/sobel.k", params={"H": 9, "W": 9})
    img = np.random.default_rng(1).uniform(-1, 1, (9, 9)).astype(np.float32)
    result = kc.run_with_stats(program, "csl", {"img": img})
    expected = kc.interpret(program, {"img": img})["mag"]
    np.testing.assert_allclose(result.outputs["mag"], expected, rtol=1e-5, atol=1e-5)
    manifest = kc.build(program, "csl").manifest
    grid = manifest["placement"]["chosen"]["grid"]
    assert result.stats["grid"] == f"{grid[0]}x{grid[1]}"
    assert grid[0] * grid[1] > 1
