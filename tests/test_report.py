"""The build report (issue 13): report.html's pictures checked as SVG, against kernelc.json.

Builds only, except one small csl run (``kernelc run --report``) and the groq emulator's
compile of program.py (which places the memory tensors the way the report says).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

import kernelc as kc
from kernelc.cli import main
from kernelc.report.data import Report

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SVG = "{http://www.w3.org/2000/svg}"


def kernelc(capsys, *argv: str | Path) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def error(capsys, *argv: str | Path) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    return captured.err


def svgs(page: str) -> dict[str, ET.Element]:
    """Every inline SVG of the page, parsed, by its class."""
    found = {}
    for text in re.findall(r"<svg[\s\S]*?</svg>", page):
        root = ET.fromstring(text)
        found[root.get("class")] = root
    return found


def built(capsys, tmp_path: Path, *argv: str | Path) -> tuple[str, dict, dict[str, ET.Element]]:
    out = tmp_path / "out"
    kernelc(capsys, "build", *argv, "--report", "-o", out)
    page = (out / "report.html").read_text()
    return page, json.loads((out / "kernelc.json").read_text()), svgs(page)


def legend(pictures: dict[str, ET.Element]) -> dict[str, str]:
    return {r.get("data-task"): r.get("fill") for r in pictures["legend"].iter(f"{SVG}rect")}


def cells(pictures: dict[str, ET.Element]) -> list[ET.Element]:
    return [g for g in pictures["placement"] if g.get("class") == "cell"]


def check_colours(pictures: dict[str, ET.Element]) -> None:
    """Each cell is drawn in the legend's colours of exactly its tasks (grey with none)."""
    colours = legend(pictures)
    for cell in cells(pictures):
        tasks = cell.get("data-tasks").split()
        fills = [r.get("fill") for r in cell.iter(f"{SVG}rect")]
        assert fills == ([colours[t] for t in tasks] or ["#eef0f2"])


def test_csl_sobel_acceptance(capsys, tmp_path):
    """The issue's acceptance command: the PE rectangle, colours and memory of kernelc.json."""
    page, manifest, pictures = built(capsys, tmp_path, EXAMPLES / "sobel.k", "--target", "csl")
    width, height = manifest["grid"]
    drawn = cells(pictures)
    assert sum(int(c.get("data-count")) for c in drawn) == width * height == 200 * 200
    assert len(drawn) == 40 * 40  # blocks of 5 x 5 PEs: a 200 x 200 rectangle drawn at 40 x 40
    assert legend(pictures) == {"sobel": "#0072b2"}
    check_colours(pictures)
    assert {c.get("data-tasks") for c in drawn} == {"sobel"}
    memory = [r for r in pictures["memory"] if r.get("class") == "mem"]
    assert len(memory) == len(drawn)
    assert {int(r.get("data-bytes")) for r in memory} == {manifest["memory"]["per_pe_bytes"]}
    assert {int(r.get("data-limit")) for r in memory} == {manifest["memory"]["limit_bytes"]}
    per_pe, limit = manifest["memory"]["per_pe_bytes"], manifest["memory"]["limit_bytes"]
    assert f"memory {per_pe:,} of {limit:,} bytes ({100 * per_pe / limit:.1f} %, modelled)" in page
    grid = "200 x 200 PEs"
    assert f"<td>{grid}</td><td class=n>{manifest['modelled_cycles']:,}</td>" in page
    runner = manifest["placement"]["runner_up"]
    assert f"{runner['grid'][0]} x {runner['grid'][1]} PEs" in page


def test_csl_cells_are_pes_and_tasks_their_pes(capsys, tmp_path):
    """One cell per PE on a small grid; scalar tasks each on the PE of its slot."""
    _, manifest, pictures = built(
        capsys,
        tmp_path,
        EXAMPLES / "sobel.k",
        "-t",
        "csl",
        "-D",
        "H=20",
        "-D",
        "W=18",
        "--grid",
        "3x2",
    )
    assert len(cells(pictures)) == 6 == manifest["grid"][0] * manifest["grid"][1]
    assert all(c.get("data-count") == "1" for c in cells(pictures))
    _, manifest, pictures = built(capsys, tmp_path, EXAMPLES / "omp" / "pipeline.c", "-t", "csl")
    tasks = [t["name"] for t in manifest["graph"]["tasks"]]
    assert len(cells(pictures)) == 8 == len(tasks)
    assert [c.get("data-tasks") for c in cells(pictures)] == tasks  # the k-th task on slot k
    assert len(set(legend(pictures).values())) == 8  # eight colours for eight tasks
    check_colours(pictures)


def test_poplar_tiles(capsys, tmp_path):
    page, manifest, pictures = built(
        capsys,
        tmp_path,
        EXAMPLES / "pca.k",
        "-t",
        "poplar",
        "-D",
        "B=4",
        "-D",
        "P=64",
        "-D",
        "K=8",
    )
    drawn = cells(pictures)
    assert len(drawn) == len(manifest["memory"]["per_tile_bytes"]) == 1472  # the whole IPU
    assert manifest["tiles"] == 64  # the plan's tile count
    by_task = {t["task"]: set(t["tiles"]) for t in manifest["tasks"]}
    for tile, cell in enumerate(drawn):
        want = [name for name, tiles in by_task.items() if tile in tiles]
        assert cell.get("data-tasks").split() == want
    check_colours(pictures)
    memory = [int(r.get("data-bytes")) for r in pictures["memory"] if r.get("class") == "mem"]
    assert memory == manifest["memory"]["per_tile_bytes"]
    assert max(memory) > 0
    sets = manifest["modelled_compute_sets"]
    assert [dict(s) for s in sets] == [
        {"compute": 210, "exchange": 0, "sync": 90},
        {"compute": 4764, "exchange": 111, "sync": 90},
    ]
    total = manifest["modelled_cycles"]["total"]
    assert total == sum(sum(c for _, c in s) for s in sets) == 5265
    assert f"<td class=n><b>{total:,}</b></td>" in page


def test_groq_slices_and_units(capsys, tmp_path):
    out = tmp_path / "out"
    _, manifest, pictures = built(
        capsys,
        tmp_path,
        EXAMPLES / "gemm.k",
        "-t",
        "groq",
        "-D",
        "M=64",
        "-D",
        "N=64",
        "-D",
        "K=64",
    )
    drawn = cells(pictures)
    assert len(drawn) == 2 * 44 + 5  # both hemispheres' slices, MXM and SXM twice, the VXM
    check_colours(pictures)
    memory = [r for r in pictures["memory"] if r.get("class") == "mem"]
    held = {
        (t["hemisphere"], s): t["bytes_per_slice"]
        for t in manifest["memory"]["tensors"]
        for s in t["slices"]
    }
    # the inputs' and c's slices (40), and S4 for each of the three buffered MXM products of
    # an f32 product (hh, hl, lh): the lowering's budget counts them all, as the emulator does
    assert sum(manifest["memory"]["slices_used"].values()) == 40 + 3 * 4
    assert len(held) == 40 + 3 * 4
    shown = {}
    for r in memory:
        label = r.find(f"{SVG}title").text.splitlines()[0]
        match = re.match(r"MEM ([WE]) slice (\d+)", label)
        if match and int(r.get("data-bytes")):
            shown[(match.group(1), int(match.group(2)))] = int(r.get("data-bytes"))
    assert shown == held
    units = [c for c in drawn if c.find(f"{SVG}title").text.startswith(("MXM", "VXM"))]
    assert {c.get("data-tasks") for c in units} == {"gemm"}  # f32: both MXM sides and the VXM
    # the slices are the ones the emulator gives the program's tensors (program order)
    from kernelc.runtime.tsp.iop import read_iop
    from kernelc.runtime.tsp.loader import run_file
    from kernelc.runtime.tsp.memory import allocate, parse_layout

    run_file(out / "program.py")
    doc, _ = read_iop(out / manifest["iop"])
    placed = allocate(
        [
            (t["name"], parse_layout(t["layout"]), "")
            for t in doc["tensors"]
            if t.get("layout") and t.get("kind") != "view"
        ]
    )
    assert {
        t["name"]: (t["hemisphere"], tuple(t["slices"])) for t in manifest["memory"]["tensors"]
    } == placed


SMALL_PCA = ("-D", "B=4", "-D", "P=64", "-D", "K=8")


@pytest.mark.parametrize("target", ["csl", "poplar", "groq"])
def test_report_dir_rewrites_the_same_page(capsys, tmp_path, target):
    out = tmp_path / "out"
    kernelc(capsys, "build", EXAMPLES / "pca.k", "-t", target, *SMALL_PCA, "--report", "-o", out)
    first = (out / "report.html").read_bytes()
    (out / "report.html").unlink()
    assert "report.html" in kernelc(capsys, "report", out)
    assert (out / "report.html").read_bytes() == first
    other = tmp_path / "again"
    kernelc(capsys, "build", EXAMPLES / "pca.k", "-t", target, *SMALL_PCA, "--report", "-o", other)
    assert (other / "report.html").read_bytes() == first  # same input, same bytes
    kernelc(capsys, "build", EXAMPLES / "pca.k", "-t", target, *SMALL_PCA, "-o", tmp_path / "plain")
    assert not (tmp_path / "plain" / "report.html").exists()  # only with --report


def test_every_cycle_figure_says_its_kind(capsys, tmp_path):
    page, _, pictures = built(capsys, tmp_path, EXAMPLES / "gemm.k", "-t", "groq")
    titles = [t.text for root in pictures.values() for t in root.iter(f"{SVG}title")]
    figures = [t for t in titles if "cycles" in t]
    assert figures and all("(modelled)" in t or "(simulated)" in t for t in figures)
    memory = [t for t in titles if "memory " in t and " of " in t]
    assert memory and all("modelled" in t for t in memory)
    assert "measurement" in page and "None is a measurement on hardware" in page


def test_run_report_puts_simulated_beside_modelled(capsys, tmp_path):
    out = tmp_path / "run"
    kernelc(
        capsys,
        "run",
        EXAMPLES / "sobel.k",
        "-t",
        "csl",
        "-D",
        "H=20",
        "-D",
        "W=18",
        "--grid",
        "3x2",
        "--random-inputs",
        "1",
        "--report",
        "-o",
        out,
    )
    manifest = json.loads((out / "kernelc.json").read_text())
    simulated = json.loads((out / "simulated.json").read_text())
    (sim,) = simulated["cycles"]
    assert sim["name"] == "f_sobel" and sim["tasks"] == ["sobel"]
    cycles = sim["phases"][0][1]
    modelled = manifest["modelled_tasks"]["f_sobel"]
    assert abs(cycles - modelled) / cycles < 0.10  # the csl model's bound (test_csl_cost)
    page = (out / "report.html").read_text()
    assert f"<td class=n>{cycles:,}</td><td class=n>{cycles / modelled:.3f}</td>" in page
    bars = [r for r in svgs(page)["cycles"] if "simulated" in (r.get("class") or "")]
    assert [int(b.get("data-cycles")) for b in bars] == [cycles]
    kernel, memcpy = dict(simulated["totals"])["kernel"], dict(simulated["totals"])["host transfer"]
    assert kernel == cycles and memcpy > 0
    # the card compares like with like: the kernel, not the host transfers the model leaves out
    assert f"{kernel / manifest['modelled_cycles']:.2f} × modelled" in page
    assert f"host transfer {memcpy:,} more (not modelled)" in page
    first = (out / "report.html").read_bytes()
    kernelc(capsys, "report", out)
    assert (out / "report.html").read_bytes() == first  # simulated.json is kept beside it


def test_poplar_run_report_gives_each_compute_set_its_simulated_cycles(capsys, tmp_path):
    out = tmp_path / "run"
    heat = EXAMPLES.parent / "tests" / "conformance" / "heat.k"  # two sweeps: two compute sets
    kernelc(capsys, "run", heat, "-t", "poplar", "--random-inputs", "1",
            "--report", "-o", out)  # fmt: skip
    manifest = json.loads((out / "kernelc.json").read_text())
    simulated = json.loads((out / "simulated.json").read_text())
    modelled = manifest["modelled_compute_sets"]
    assert len(simulated["cycles"]) == len(modelled) > 1
    for number, piece in enumerate(simulated["cycles"]):
        assert piece["name"] == f"compute set {number}" and piece["kind"] == "simulated"
        assert [p for p, _ in piece["phases"]] == ["compute", "exchange", "sync"]
        assert piece["tasks"] == [
            t["task"] for t in manifest["tasks"] if t["compute_set"] == number
        ]
    totals = dict(simulated["totals"])
    for phase in ("compute", "exchange", "sync"):
        assert sum(dict(p["phases"])[phase] for p in simulated["cycles"]) == totals[phase]
    page = (out / "report.html").read_text()
    assert "not available" not in page


def test_api_report_is_the_dataclass():
    art = kc.build(EXAMPLES / "sobel.k", "csl", params={"H": 20, "W": 18}, grid=(3, 2))
    report = art.report
    assert isinstance(report, Report)
    assert [t.name for t in report.tasks] == ["sobel"]
    assert report.view.placement.processors == 6
    assert report.view.total_cycles == art.manifest["modelled_cycles"]
    (launch,) = report.view.cycles
    assert launch.kind == "modelled"
    assert dict(launch.phases) == dict(art.manifest["modelled_phases"]["f_sobel"])
    assert launch.total == art.manifest["modelled_tasks"]["f_sobel"]
    assert kc.build(EXAMPLES / "sobel.k", "interp").report.view is None


def test_graph_svg(capsys, tmp_path):
    out = tmp_path / "g.svg"
    kernelc(capsys, "graph", EXAMPLES / "omp" / "pipeline.c", "--format", "svg", "-o", out)
    root = ET.parse(out).getroot()
    tasks = [g.get("data-task") for g in root.iter(f"{SVG}g") if g.get("class") == "task"]
    graph = kc.load(EXAMPLES / "omp" / "pipeline.c").graph()
    assert tasks == [t.name for t in graph.tasks]
    tensors = [g.get("data-tensor") for g in root.iter(f"{SVG}g") if g.get("class") == "tensor"]
    assert sorted(tensors) == sorted(t.name for t in graph.tensors)
    edges = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("edge ")]
    assert len(edges) == sum(len(t.reads) + len(t.writes) for t in graph.tasks)
    assert kernelc(capsys, "graph", EXAMPLES / "pca.k").startswith("digraph")  # DOT by default
    printed = kernelc(capsys, "graph", EXAMPLES / "pca.k", "--format", "svg")
    assert ET.fromstring(printed.split("?>", 1)[1]).tag == f"{SVG}svg"


def test_report_errors(capsys, tmp_path):
    missing = tmp_path / "missing"
    assert f"'{missing}' does not exist" in error(capsys, "report", missing)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert "is a file, not an artifact directory" in error(capsys, "report", a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    err = error(capsys, "report", empty)
    assert "no kernelc artifact directory (it has no kernelc.json" in err
    assert err.startswith("<command line>:1:16: error:")
    (empty / "kernelc.json").write_text("{not json")
    assert "cannot read" in error(capsys, "report", empty)
    (empty / "kernelc.json").write_text(json.dumps({"target": "csl", "entry": "x"}))
    assert "lacks what the report needs" in error(capsys, "report", empty)
    out = tmp_path / "out"
    kernelc(capsys, "build", EXAMPLES / "sobel.k", "-t", "groq", "-o", out)
    manifest = json.loads((out / "kernelc.json").read_text())
    del manifest["memory"]["tensors"]
    (out / "kernelc.json").write_text(json.dumps(manifest))
    assert "not a groq manifest this kernelc can read" in error(capsys, "report", out)
    manifest["target"] = "nosuch"
    (out / "kernelc.json").write_text(json.dumps(manifest))
    assert "unknown target 'nosuch'" in error(capsys, "report", out)


def test_run_output_needs_report(capsys, tmp_path):
    err = error(
        capsys,
        "run",
        EXAMPLES / "pca.k",
        "-t",
        "interp",
        "--random-inputs",
        "0",
        "-o",
        tmp_path / "x",
    )
    assert "-o names the artifact directory of --report" in err
    assert not (tmp_path / "x").exists()


def test_run_report_on_a_target_without_a_simulator(capsys, tmp_path):
    out = tmp_path / "run"
    kernelc(
        capsys,
        "run",
        EXAMPLES / "pca.k",
        "-t",
        "interp",
        "--random-inputs",
        "0",
        "--report",
        "-o",
        out,
    )
    assert (out / "report.html").exists() and not (out / "simulated.json").exists()


def test_report_error_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "kernelc", "report", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "error: " in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("target", ["interp", "cpu"])
def test_report_without_a_machine_model(capsys, tmp_path, target):
    """Targets without a placement or cycle model still get the graph and the tables."""
    page, _, pictures = built(capsys, tmp_path, EXAMPLES / "pca.k", "-t", target)
    assert set(pictures) == {"graph"}
    assert "<h2>Tasks</h2>" in page
