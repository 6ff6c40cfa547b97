"""The examples/omp programs: OpenMP (the C compiler with -fopenmp) is the reference for every
target, and the task graphs have the shapes the pragmas describe."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from omp_gcc import compiler, run_c, run_on_targets, unsupported

import kernelc as kc
from kernelc import ir, targets, xsbench
from kernelc.cli import main
from kernelc.dot import steps
from kernelc.inputs import random_inputs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "omp"
needs_cc = pytest.mark.skipif(compiler() is None, reason="no C compiler with OpenMP")

SIZES = {
    "sobel": {"H": 11, "W": 7},
    "gemm": {"M": 5, "N": 9, "K": 6},
    "pca": {"B": 3, "P": 20, "K": 4},
    "pipeline": {"CH": 5},
}


def _xs_problem():
    inputs = xsbench.generate("small", 64, 6, 40).kernel_inputs()
    sizes = {
        "NI": inputs["egrid"].shape[0],
        "NG": inputs["egrid"].shape[1],
        "NM": inputs["mat_nucs"].shape[0],
        "MAXN": inputs["mat_nucs"].shape[1],
        "L": inputs["energy"].shape[0],
    }
    return sizes, inputs


def _check_against_openmp(name, sizes, inputs, tmp_path):
    source = EXAMPLES / f"{name}.c"
    program = kc.load(source, params=sizes)
    graph = program.graph(inputs=inputs)
    reference = run_c(source, graph, inputs, sizes, tmp_path)
    assert set(reference) == {t.name for t in graph.outputs}
    for target, outputs in run_on_targets(program, inputs).items():
        for out, want in reference.items():
            np.testing.assert_allclose(
                outputs[out], want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {out} on {target}"
            )


@needs_cc
@pytest.mark.parametrize("name", sorted(SIZES))
def test_example_matches_openmp_on_every_target(name, tmp_path):
    graph = kc.load(EXAMPLES / f"{name}.c", params=SIZES[name]).graph()
    inputs = random_inputs(graph, seed=7)
    _check_against_openmp(name, SIZES[name], inputs, tmp_path)


@needs_cc
def test_xs_lookup_matches_openmp_on_every_target(tmp_path):
    sizes, inputs = _xs_problem()
    _check_against_openmp("xs_lookup", sizes, inputs, tmp_path)


def test_pipeline_is_one_step_of_eight_task_instances():
    graph = kc.load(EXAMPLES / "pipeline.c", params={"CH": 6}).graph()
    assert len(graph.tasks) == 8
    assert graph.dependencies.number_of_edges() == 0
    generations = list(nx.topological_generations(graph.dependencies))
    assert len(generations) == 1 and len(generations[0]) == 8
    kernels = [t.kernel.name for t in graph.tasks]
    assert sorted(set(kernels)) == ["pipeline_task1", "pipeline_task2"]
    assert kernels.count("pipeline_task1") == kernels.count("pipeline_task2") == 4
    regions = sorted((t.kernel.name, str(t.reads[0]), str(t.writes[0])) for t in graph.tasks)
    expected = sorted(
        [("pipeline_task1", f"v1[{6 * t}:{6 * t + 6}]", f"sums[{t}:{t + 1}]") for t in range(4)]
        + [("pipeline_task2", f"v1[{6 * t}:{6 * t + 6}]", f"peaks[{t}:{t + 1}]") for t in range(4)]
    )
    assert regions == expected


STUDY = """
#define NT 4
#define CH 3
void study(const float v1[NT * CH], float v2[NT]) {
#pragma omp target map(to: v1[0:NT * CH]) map(from: v2[0:NT])
#pragma omp parallel num_threads(NT)
  {
    int tid = omp_get_thread_num();
#pragma omp task depend(in: v1[tid * CH:CH]) depend(out: v2[tid])
    { v2[tid] = v1[tid * CH] + v1[tid * CH + 1]; }
#pragma omp task depend(in: v1[tid * CH:CH]) depend(out: v2[tid])
    { v2[tid] = v2[tid] * v1[tid * CH + 2]; }
  }
}
"""


def test_study_shape_with_both_tasks_writing_one_element_splits_the_step():
    # The study's own example: both tasks of a thread write v2[tid]. OpenMP orders them (out
    # after out on the same element), so kernelc needs two steps, not one conflicting step.
    graph = kc.loads(STUDY, "study.c").graph()
    assert [len(s) for s in steps(graph)] == [4, 4]
    deps = graph.dependencies
    for t in range(4):
        first, second = f"study_task1_{2 * t}", f"study_task2_{2 * t + 1}"
        assert deps.has_edge(first, second)
    assert deps.number_of_edges() == 4
    v1 = np.arange(12, dtype=np.float32)
    out = kc.interpret(kc.loads(STUDY, "study.c"), {"v1": v1})["v2"]
    want = (v1[0::3] + v1[1::3]) * v1[2::3]
    np.testing.assert_array_equal(out, want)


LEAGUE = (EXAMPLES / "gemm.c").read_text().replace("collapse(2)", "collapse(2) num_teams(4)")


def test_gemm_without_num_teams_is_one_matrix_product():
    graph = kc.load(EXAMPLES / "gemm.c", params={"M": 10, "N": 3, "K": 2}).graph()
    (task,) = graph.tasks
    assert str(task.writes[0]) == "c[0:10, 0:3]"
    store = task.kernel.body[0].body[0].body[0]  # for i, for j: the accumulator became a sum
    assert isinstance(store.value, ir.Reduce)


def test_gemm_league_is_one_task_per_team():
    graph = kc.loads(LEAGUE, "league.c", params={"M": 10, "N": 3, "K": 2}).graph()
    assert [len(step) for step in steps(graph)] == [4]
    assert [str(t.writes[0]) for t in graph.tasks] == [
        "c[0:2, 0:3]",
        "c[2:5, 0:3]",
        "c[5:7, 0:3]",
        "c[7:10, 0:3]",
    ]


def test_pca_is_centre_then_project():
    graph = kc.load(EXAMPLES / "pca.c", params={"B": 2, "P": 8, "K": 3}).graph()
    names = [t.name for t in graph.tasks]
    assert names == ["pca_task1_0", "pca_task2_1"]
    assert graph.dependencies.edges[names[0], names[1]]["kind"] == "flow"
    assert {t.name: t.role for t in graph.tensors}["centred"] == "temp"


def test_sobel_is_two_data_parallel_loops_in_order():
    graph = kc.load(EXAMPLES / "sobel.c", params={"H": 6, "W": 5}).graph()
    zero, interior = graph.tasks
    for task in graph.tasks:
        outer = task.kernel.body[0]
        assert outer.parallel and outer.body[0].parallel
    # Both write mag and neither reads it: the order comes from the source, not from data.
    assert graph.dependencies.edges[zero.name, interior.name]["kind"] == "order"


@pytest.mark.parametrize("name", ["sobel", "gemm", "pca", "pipeline", "xs_lookup"])
def test_examples_build_for_every_target(name):
    program = kc.load(EXAMPLES / f"{name}.c", params=SIZES.get(name, {}))
    for target in targets.names():
        try:
            artifact = kc.build(program, target)
        except kc.KernelcError as err:
            if unsupported(err):
                continue
            raise
        assert artifact.files


def test_graph_command_writes_deterministic_dot(tmp_path, capsys):
    out = tmp_path / "pipeline.dot"
    assert main(["graph", str(EXAMPLES / "pipeline.c"), "-D", "CH=4", "-o", str(out)]) == 0
    assert "8 task(s) in 1 step(s)" in capsys.readouterr().out
    text = out.read_text()
    assert 'label="step 0 (8 tasks)"' in text
    assert '"tensor:v1" -> "task:pipeline_task1_2" [label="v1[4:8]"];' in text
    assert (
        main(["build", str(EXAMPLES / "pipeline.c"), "-t", "interp", "-D", "CH=4", "--emit", "dot"])
        == 0
    )
    assert capsys.readouterr().out == text


def test_build_emit_ir_of_a_c_file(capsys):
    assert main(["build", str(EXAMPLES / "pca.c"), "-t", "interp", "--emit", "ir"]) == 0
    text = capsys.readouterr().out
    assert "task pca_task2_1 = pca_task2" in text
    assert "after pca_task1_0  // flow dependence on centred[0:16, 0:16384]" in text


def test_lang_option_selects_the_c_frontend(tmp_path, capsys):
    source = tmp_path / "kernel.txt"
    source.write_text((EXAMPLES / "gemm.c").read_text())
    args = ["build", str(source), "-t", "interp", "--emit", "ir", "-D", "M=2"]
    assert main([*args, "--lang", "c"]) == 0
    assert "kernel gemm_loop1" in capsys.readouterr().out
