"""The poplar target: golden files, determinism, the report, and the IPU model's strictness
(copies of an emitted program edited by hand to break one rule each must be refused, naming
what is wrong).

Golden files live in tests/golden/poplar/<case>/; regenerate them after an intended emitter
change with ``KERNELC_UPDATE_GOLDEN=1 pytest tests/test_poplar.py`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc.diagnostics import KernelcError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "poplar"
CASES = {
    "sobel": (ROOT / "examples" / "sobel.k", {"H": 9, "W": 7}),
    "gemm": (ROOT / "examples" / "gemm.k", {"M": 5, "N": 9, "K": 6}),
}
needs_gxx = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None,
    reason="the IPU model compiles the emitted C++ with g++, which is not installed",
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_files(case: str) -> None:
    path, params = CASES[case]
    artifact = kc.build(path, "poplar", params=params)
    again = kc.build(path, "poplar", params=params)
    assert artifact.files == again.files  # deterministic
    folder = GOLDEN / case
    names = ("codelets.cpp", "main.cpp")
    if os.environ.get("KERNELC_UPDATE_GOLDEN") == "1":
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_text(artifact.files[name])
    for name in names:
        assert artifact.files[name] == (folder / name).read_text(), f"{case}/{name} differs"


def test_report_names_tiles_memory_and_cycles() -> None:
    path, params = CASES["sobel"]
    report = "\n".join(kc.build(path, "poplar", params=params).report)
    assert "1 of 1472 tiles" in report
    assert "largest tile: tile 0, 504 bytes" in report
    assert "compute" in report and "exchange" in report and "sync" in report
    assert "GHz" in report


def test_keyword_names_are_mangled() -> None:
    source = """
kernel k(class: f32[N]) -> const: f32[N] {
  for i in 0 .. N { const[i] = class[i] * 2; }
}"""
    files = kc.build(kc.loads(source, params={"N": 4}), "poplar").files
    assert "Input<Vector<float>> u_class;" in files["codelets.cpp"]
    assert "Tensor u_const = graph.addVariable" in files["main.cpp"]


@pytest.fixture(scope="module")
def sobel(tmp_path_factory) -> Path:
    path, params = CASES["sobel"]
    out = tmp_path_factory.mktemp("sobel")
    kc.build(path, "poplar", params=params).write(out / "artifact")
    inputs = out / "inputs"
    inputs.mkdir()
    img = np.random.default_rng(0).random((9, 7), dtype=np.float32)
    (inputs / "img.bin").write_bytes(img.tobytes())
    return out


def _run_edited(sobel: Path, tmp_path: Path, file: str, old: str, new: str) -> str:
    from kernelc.runtime.ipu import runner

    edited = tmp_path / "artifact"
    shutil.copytree(sobel / "artifact", edited)
    text = (edited / file).read_text()
    assert old in text
    (edited / file).write_text(text.replace(old, new, 1))
    (tmp_path / "outputs").mkdir()
    with pytest.raises(KernelcError) as err:
        binary = runner.build(edited)
        runner.run(binary, ["--inputs", str(sobel / "inputs"), "--outputs", "outputs"], tmp_path)
    return err.value.message


@needs_gxx
def test_unedited_program_runs(sobel: Path, tmp_path: Path) -> None:
    from kernelc.runtime.ipu import runner

    (tmp_path / "outputs").mkdir()
    binary = runner.build(sobel / "artifact")
    stats = runner.run(
        binary, ["--inputs", str(sobel / "inputs"), "--outputs", "outputs"], tmp_path
    )
    assert stats["tiles_used"] == 1 and stats["supersteps"] == 1


STRICTNESS = {
    "unconnected field": (
        "main.cpp",
        '    graph.connect(v["img"], img.flatten());\n',
        "",
        "field 'img' is not connected",
    ),
    "missing tile mapping": (
        "main.cpp",
        "  graph.setTileMapping(img, 0);\n",
        "",
        "tensor 'img' has no tile mapping",
    ),
    "race": (
        "main.cpp",
        '    VertexRef v = graph.addVertex(step0, "Sobel0Vertex");',
        '    VertexRef w = graph.addVertex(step0, "Sobel0Vertex");\n'
        "    graph.setTileMapping(w, 1);\n"
        '    graph.connect(w["img"], img.flatten());\n'
        '    graph.connect(w["mag"], mag.flatten());\n'
        '    VertexRef v = graph.addVertex(step0, "Sobel0Vertex");',
        "race in compute set 'step0'",
    ),
    "overfilled tile": (
        "main.cpp",
        "  graph.setTileMapping(img, 0);\n",
        "  graph.setTileMapping(img, 0);\n"
        '  Tensor big = graph.addVariable(FLOAT, {200000}, "big");\n'
        "  graph.setTileMapping(big, 0);\n",
        "out of memory on tile 0",
    ),
    "field of another type": (
        "codelets.cpp",
        "Input<Vector<float>> img;",
        "Input<Vector<int>> img;",
        "field 'img' (Input of int) connected to a tensor of float",
    ),
    "write through an Input": (
        "codelets.cpp",
        "    return true;",
        "    img[0] = 1.0f;\n    return true;",
        "read-only",
    ),
}


@needs_gxx
@pytest.mark.parametrize("rule", sorted(STRICTNESS))
def test_strictness(rule: str, sobel: Path, tmp_path: Path) -> None:
    file, old, new, expected = STRICTNESS[rule]
    message = _run_edited(sobel, tmp_path, file, old, new)
    assert expected in message
    if rule in ("unconnected field", "race"):
        assert "tile" in message and "vertex" in message
