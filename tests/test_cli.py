"""The `kernelc` command: build, run, check, targets, xsdata, --version and --help.

Most tests call `kernelc.cli.main` in-process (fast); the acceptance commands of the foundation
issue also run once as a real process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from references import (
    gemm_reference,
    gemm_tolerance,
    sobel_reference,
    sobel_tolerance,
    xs_extrapolation,
)
from xs_reference import float32_tolerance, macro_xs_reference

import kernelc as kc
from kernelc import targets
from kernelc.artifact import Artifact
from kernelc.cli import compare, main
from kernelc.inputs import random_inputs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def kernelc(capsys, *argv: str | Path) -> str:
    """Run the CLI in-process, require success and return what it printed."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    return captured.out


def summary(out: str) -> dict[str, dict[str, str]]:
    """The output table of `kernelc run`, by output name."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output "))
    header = lines[start].split()
    rows = {}
    for line in lines[start + 1 :]:
        if line.startswith("saved "):
            break
        name, rest = line.split(maxsplit=1)
        shape_end = rest.index(")") + 1
        cells = [name, rest[:shape_end], *rest[shape_end:].split()]
        rows[name] = dict(zip(header, cells, strict=True))
    return rows


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------ version, help, list


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"kernelc {kc.__version__}\n"


@pytest.mark.parametrize("command", [None, "build", "run", "check", "targets", "xsdata"])
def test_help(capsys, command: str | None) -> None:
    argv = [command, "--help"] if command else ["--help"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kernelc{' ' + command if command else ''}")
    if command in ("build", "run", "check"):
        assert "--target" in out and "-D NAME=VALUE" in out
    if command is None:
        for sub in ("build", "run", "check", "targets", "xsdata"):
            assert sub in out


def test_targets_lists_every_registered_target(capsys) -> None:
    out = kernelc(capsys, "targets")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == targets.names()
    interp = next(line for line in lines if line.startswith("interp "))
    assert interp.split(None, 1)[1] == targets.get("interp").description


# ---------------------------------------------------------------------------------------- run


@pytest.mark.parametrize(
    ("example", "defines", "outputs"),
    [
        ("sobel", ["H=64", "W=48"], {"mag": "(64, 48)"}),
        ("gemm", ["M=5", "N=7", "K=3"], {"c": "(5, 7)"}),
        ("pca", ["B=3", "P=40", "K=4"], {"codes": "(3, 4)"}),
    ],
)
def test_run_with_random_inputs_prints_the_summary(capsys, example, defines, outputs) -> None:
    argv = ["run", EXAMPLES / f"{example}.k", "--target", "interp", "--random-inputs", "1"]
    for d in defines:
        argv += ["-D", d]
    out = kernelc(capsys, *argv)
    assert out.splitlines()[0].startswith(f"{example} on interp: ")
    assert "run " in out.splitlines()[0] and out.splitlines()[0].endswith(" s")
    table = summary(out)
    assert set(table) == set(outputs)
    for name, shape in outputs.items():
        assert table[name]["shape"] == shape and table[name]["dtype"] == "f32"
        assert len(table[name]["sha256"]) == 16
    assert kernelc(capsys, *argv).splitlines()[1:] == out.splitlines()[1:]  # same seed, same data


def test_run_with_inputs_and_outputs_matches_the_reference(capsys, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    img = rng.uniform(-3, 3, (17, 9)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    out_path = tmp_path / "mag.npy"
    out = kernelc(
        capsys,
        "run",
        EXAMPLES / "sobel.k",
        "-t",
        "interp",
        "--in",
        f"img={tmp_path / 'img.npy'}",
        "--out",
        f"mag={out_path}",
    )
    mag = np.load(out_path)
    ref = sobel_reference(img)
    assert mag.dtype == np.float32 and mag.shape == (17, 9)
    assert np.all(np.abs(mag - ref) <= sobel_tolerance(img, ref))
    row = summary(out)["mag"]
    assert row["sha256"] == digest(mag)
    assert float(row["sum"]) == pytest.approx(float(mag.sum(dtype=np.float64)), rel=1e-5)
    assert float(row["max"]) == pytest.approx(float(mag.max()), rel=1e-5)
    assert row["min"] == "0"
    assert f"saved mag to {out_path}" in out


def test_run_random_inputs_fill_only_missing_inputs(capsys, tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    kernelc(
        capsys,
        "run",
        EXAMPLES / "gemm.k",
        "-t",
        "interp",
        "--in",
        f"a={tmp_path / 'a.npy'}",
        "-D",
        "N=2",
        "--random-inputs",
        "5",
        "--out",
        f"c={tmp_path / 'c.npy'}",
    )
    c = np.load(tmp_path / "c.npy")
    assert c.shape == (3, 2)
    graph = kc.load(EXAMPLES / "gemm.k").graph(params={"M": 3, "K": 4, "N": 2})
    drawn = random_inputs(graph, 5)["b"]
    ref = gemm_reference(a, drawn)
    assert np.all(np.abs(c - ref) <= gemm_tolerance(a, drawn, ref))


def test_xsdata_then_run_from_the_directory(capsys, tmp_path: Path) -> None:
    data = tmp_path / "xs"
    out = kernelc(
        capsys, "xsdata", "-o", data, "--lookups", "2000", "--nuclides", "8", "--gridpoints", "64"
    )
    assert out.splitlines()[0] == (
        f"wrote 7 arrays to {data}/ (small: 8 nuclides x 64 grid points, 2000 lookups)"
    )
    names = sorted(p.stem for p in data.glob("*.npy"))
    assert names == sorted(
        ["egrid", "xs", "mat_nucs", "mat_conc", "mat_count", "energy", "material"]
    )
    macro_path = tmp_path / "macro.npy"
    out = kernelc(
        capsys,
        "run",
        EXAMPLES / "xs_lookup.k",
        "--target",
        "interp",
        "--in-dir",
        data,
        "--out",
        f"macro={macro_path}",
    )
    assert summary(out)["macro"]["shape"] == "(2000, 5)"
    macro = np.load(macro_path)
    inputs = {p.stem: np.load(p) for p in data.glob("*.npy")}
    ref = macro_xs_reference(**inputs)
    tol = float32_tolerance(inputs["mat_conc"], inputs["mat_count"], inputs["material"])
    assert np.all(np.abs(macro - ref) <= tol * xs_extrapolation(inputs)[:, None])


# -------------------------------------------------------------------------------------- build


def test_emit_ir_is_readable(capsys) -> None:
    out = kernelc(capsys, "build", EXAMPLES / "sobel.k", "--target", "interp", "--emit", "ir")
    lines = out.splitlines()
    assert lines[0] == f"// kernelc IR of 'sobel' from {EXAMPLES / 'sobel.k'}"
    assert "sizes H = 800, W = 800;" in lines
    assert "tensor img: f32[800, 800]  // input, 2560000 bytes" in lines
    assert "  access img: reads 12, writes 0, halo -1/+1 x -1/+1" in lines
    assert "kernel sobel(img: f32[H, W]) -> (mag: f32[H, W]) {" in lines
    assert "  for i in 1 .. H - 1 {  // parallel" in lines
    assert "    for j in 1 .. W - 1 {  // parallel" in lines
    assert "      mag[i, j] = sqrt(gx * gx + gy * gy);" in lines


def test_emit_ir_of_a_graph_shows_tasks_and_dependences(capsys) -> None:
    out = kernelc(
        capsys,
        "build",
        EXAMPLES / "pca.k",
        "-t",
        "interp",
        "--emit",
        "ir",
        "-D",
        "B=2",
        "-D",
        "P=6",
    )
    assert "task project_1 = project  // " in out
    assert "  after centre_0  // flow dependence on centred[0:2, 0:6]" in out
    assert "  z <- codes[0:2, 0:64]" in out


def test_build_writes_the_artifact_deterministically(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = kernelc(capsys, "build", EXAMPLES / "sobel.k", "-t", "interp", "-D", "H=32", "-D", "W=16")
    assert out.splitlines()[-1].startswith("wrote sobel.interp/ (2 files) in ")
    first = {p.name: p.read_bytes() for p in (tmp_path / "sobel.interp").iterdir()}
    assert sorted(first) == ["kernelc.json", "program.kir"]
    manifest = json.loads(first["kernelc.json"])
    assert manifest["target"] == "interp" and manifest["entry"] == "sobel"
    assert manifest["params"] == {"H": 32, "W": 16}
    assert manifest["inputs"] == [{"name": "img", "dtype": "f32", "shape": [32, 16]}]
    assert manifest["outputs"] == [{"name": "mag", "dtype": "f32", "shape": [32, 16]}]
    assert manifest["source"] == "sobel.k" and manifest["files"] == sorted(first)
    kernelc(
        capsys, "build", EXAMPLES / "sobel.k", "-t", "interp", "-D", "H=32", "-D", "W=16", "-o", "b"
    )
    second = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert second == first
    kernelc(capsys, "build", EXAMPLES / "sobel.k", "-t", "interp", "-D", "H=32", "-D", "W=16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "sobel.interp"]  # no leftovers


def test_artifact_write_is_atomic(tmp_path: Path) -> None:
    """A write that fails half-way leaves the previous artifact as it was and no temporaries."""
    target = tmp_path / "art"
    Artifact("interp", {"a.txt": "old", "kernelc.json": "{}"}, {}).write(target)
    broken = Artifact("interp", {"a.txt": "new", "z.txt": object()}, {})
    with pytest.raises(TypeError):
        broken.write(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    assert (target / "a.txt").read_text() == "old"
    Artifact("interp", {"a.txt": "new", "sub/run.sh": "#!/bin/sh\n"}, {}).write(target)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "sub"]
    assert (target / "sub" / "run.sh").stat().st_mode & 0o111


def test_public_api_survives_loading_the_interpreter() -> None:
    """Importing the interpreter module must not replace the function kc.interpret."""
    prog = kc.loads("kernel k(a: i32[N]) -> b: i32[N] { for i in 0 .. N { b[i] = a[i] + 1; } }")
    a = np.arange(3, dtype=np.int32)
    assert kc.run(prog, "interp", {"a": a})["b"].tolist() == [1, 2, 3]
    import kernelc.interpreter  # noqa: F401

    assert callable(kc.interpret)
    assert kc.interpret(prog, {"a": a})["b"].tolist() == [1, 2, 3]
    for name in ("load", "loads", "build", "run", "interpret", "KernelcError", "Artifact"):
        assert name in kc.__all__ and getattr(kc, name) is not None


def test_api_build_matches_the_cli(capsys, tmp_path: Path) -> None:
    art = kc.build(EXAMPLES / "gemm.k", "interp", params={"M": 2, "N": 3, "K": 4})
    kernelc(
        capsys,
        "build",
        EXAMPLES / "gemm.k",
        "-t",
        "interp",
        "-D",
        "M=2",
        "-D",
        "N=3",
        "-D",
        "K=4",
        "-o",
        tmp_path / "g",
    )
    for name, content in art.files.items():
        assert (tmp_path / "g" / name).read_text() == content
    assert art.manifest["params"] == {"M": 2, "N": 3, "K": 4}


# -------------------------------------------------------------------------------------- check


def test_check_passes_on_the_reference_target(capsys) -> None:
    out = kernelc(
        capsys, "check", EXAMPLES / "pca.k", "-t", "interp", "-D", "B=2", "-D", "P=8", "-D", "K=3"
    )
    assert out.startswith("ok: pca on interp matches the reference interpreter (1 output(s), ")
    assert "seed 0" in out
    out = kernelc(
        capsys,
        "check",
        EXAMPLES / "sobel.k",
        "-t",
        "interp",
        "-D",
        "H=5",
        "-D",
        "W=5",
        "--seed",
        "3",
    )
    assert "seed 3" in out


class _OffByOne:
    """A target that runs the interpreter and then spoils one output element."""

    name = "offbyone"
    description = "the interpreter with one wrong element (a test double)"
    options: dict = {}

    def build(self, graph, options):
        return targets.get("interp").build(graph, options)

    def run(self, graph, inputs, options):
        result = targets.get("interp").run(graph, inputs, options)
        outputs = {name: value.copy() for name, value in result.outputs.items()}
        first = next(iter(outputs.values()))
        first.flat[4] += 1
        return targets.RunResult(outputs, result.stats)


def test_check_names_the_worst_element_and_exits_1(capsys, monkeypatch) -> None:
    real_get = targets.get
    monkeypatch.setattr(
        targets,
        "get",
        lambda name, span=None: _OffByOne() if name == "offbyone" else real_get(name, span),
    )
    argv = ["check", str(EXAMPLES / "gemm.k"), "-t", "offbyone", "-D", "M=2", "-D", "N=3"]
    assert main([*argv, "-D", "K=4"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("MISMATCH gemm on offbyone: 'c'[1, 1] is ")
    assert out.rstrip().endswith("; 1 of 6 elements differ")


def test_compare_rules() -> None:
    """Exact for integers; floats within rtol * (|want| + max|want|); NaN only matches NaN."""
    ints = compare(np.array([[1, 2], [3, 4]], np.int32), np.array([[1, 2], [3, 5]], np.int32))
    assert ints.bad[:3] == ((1, 1), 4, 5) and ints.count == 1
    want = np.array([1.0, -2.0, np.nan, np.inf], np.float32)
    assert compare(want.copy(), want).bad is None
    assert compare(want + np.float32(1e-6), want).bad is None
    assert compare(np.array([1.0, -2.0, 0.0, np.inf], np.float32), want).bad[0] == (2,)
    assert compare(np.array([1.0, -2.0, np.nan, 1e30], np.float32), want).bad[0] == (3,)
    assert compare(np.array([1.1, -2.0, np.nan, np.inf], np.float32), want).bad[0] == (0,)
    assert compare(np.zeros(3, np.float32), np.zeros(2, np.float32)).bad is not None
    assert compare(want.copy(), want).worst == 0.0


# ------------------------------------------------------------------------------ as a process


def test_acceptance_commands_as_processes(tmp_path: Path) -> None:
    """The foundation issue's own command line, and a build error, in a real process."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelc",
            "run",
            str(EXAMPLES / "sobel.k"),
            "--target",
            "interp",
            "-D",
            "H=64",
            "-D",
            "W=48",
            "--random-inputs",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert summary(proc.stdout)["mag"]["shape"] == "(64, 48)"
    proc = subprocess.run(
        [sys.executable, "-m", "kernelc", "targets"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "interp" in proc.stdout
