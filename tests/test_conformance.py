"""The conformance suite: every case of tests/conformance/cases.py on every registered target.

The targets come from the registry at collection time (``kernelc.targets.names()``), so a new
backend is tested by registering it. Each case's outputs are compared with an independent NumPy
reference: bit for bit where the language defines the result exactly, within a tolerance where a
target may reorder sums. A target may refuse a case with ``kc.Unsupported`` only where
tests/conformance/unsupported.py expects it, naming the construct; docs/TESTING.md lists the same
table (see "Conformance suite").
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conformance.cases import BY_NAME, CASES, Case
from conformance.unsupported import BUGS, SLOW, UNSUPPORTED
from conformance.variants import VARIANTS

import kernelc as kc
from kernelc import targets
from kernelc.cli import compare

DOCS = Path(__file__).resolve().parent.parent / "docs" / "TESTING.md"


def assert_matches(got: np.ndarray, want: np.ndarray, rtol: float | None, where: str) -> None:
    """The one comparison of the suite (the project's tolerance function, kernelc.cli.compare).

    ``rtol=None`` is bit for bit (compare with rtol 0: NaN matches NaN, integers exactly);
    otherwise ``|got - want| <= rtol * (|want| + max|want|)``. The float64 references are
    rounded to the output's dtype first.
    """
    want = np.asarray(want).astype(got.dtype) if got.dtype.kind == "f" else np.asarray(want)
    verdict = compare(got, want, 0.0 if rtol is None else rtol)
    if verdict.bad is not None:
        index, g, w, allowed = verdict.bad
        pytest.fail(
            f"{where}{list(index)} is {g!r}, NumPy gives {w!r} (allowed difference {allowed:.3g}); "
            f"{verdict.count} of {want.size} elements differ"
        )


def configurations() -> dict[str, tuple[str, dict]]:
    """label -> (target, options): every registered target with its default options (labelled
    by its name), plus the option sets tests/conformance/variants.py adds for it."""
    result = {}
    for target in targets.names():
        result[target] = (target, {})
        for label, options in VARIANTS.get(target, {}).items():
            result[label] = (target, options)
    return result


def _params() -> list:
    params = []
    for label, (target, options) in configurations().items():
        for case in CASES:
            marks = []
            if (label, case.name) in BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=BUGS[label, case.name]))
            if (label, case.name) in SLOW:
                marks.append(pytest.mark.slow)
            param = pytest.param(label, target, options, case, marks=marks, id=f"{label}-{case}")
            params.append(param)
    return params


@pytest.mark.parametrize(("label", "target", "options", "case"), _params())
def test_conformance(label: str, target: str, options: dict, case: Case) -> None:
    inputs = case.draw()
    refused = UNSUPPORTED.get((label, case.name))
    try:
        with np.errstate(all="ignore"):
            got = kc.run(case.program(), target, inputs, params=dict(case.params), **options)
    except kc.Unsupported as err:
        if refused is None:
            raise AssertionError(
                f"{label} refuses {case.name}, which tests/conformance/unsupported.py does not "
                f"expect: {err}"
            ) from err
        assert refused in str(err), f"{label} refuses {case.name} for another reason: {err}"
        return
    if refused is not None:
        pytest.fail(
            f"{label} now runs {case.name} (expected kc.Unsupported naming {refused!r}): "
            "update the table in tests/conformance/unsupported.py and docs/TESTING.md"
        )
    with np.errstate(all="ignore"):
        expected = case.reference(inputs)
    assert set(got) == set(expected), f"{case.name}: outputs {sorted(got)}"
    for name, (want, rtol) in expected.items():
        assert_matches(got[name], want, rtol, f"{case.name} on {label}: '{name}'")


def test_tables_name_registered_targets_and_existing_cases() -> None:
    labels = set(configurations())
    for target in VARIANTS:
        assert target in targets.names(), f"variants.py: no target '{target}' registered"
    for table in (UNSUPPORTED, BUGS, SLOW):
        for target, case in table:
            assert target in labels, f"({target}, {case}): no target or variant '{target}'"
            assert case in BY_NAME, f"({target}, {case}): no conformance case '{case}'"
    assert not set(UNSUPPORTED) & set(BUGS), "a refused case cannot also be a known bug"


def _docs_table(third: str) -> dict[tuple[str, str], str]:
    """The rows of the table under "Conformance suite" in docs/TESTING.md whose third column
    is headed ``third``: | target | case | <third> | ..., that cell in backquotes."""
    text = DOCS.read_text()
    section = text.split("## Conformance suite", 1)[1].split("\n## ", 1)[0]
    rows, heading = {}, None
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.lstrip().startswith("|"):
            heading = None
            continue
        target, case, value = cells[:3]
        if target == "target":
            heading = value
            continue
        if heading != third or set(target) <= set("-: "):
            continue
        match = re.fullmatch(r"`([^`]*)`", value)
        assert match, f"docs/TESTING.md: {third} {value!r} is not in backquotes"
        rows[target.strip("`"), case.strip("`")] = match.group(1)
    return rows


def test_docs_list_exactly_what_each_target_refuses() -> None:
    assert _docs_table("construct named") == UNSUPPORTED, (
        "docs/TESTING.md (Conformance suite) and tests/conformance/unsupported.py differ"
    )


def test_docs_list_exactly_the_known_bugs() -> None:
    assert _docs_table("known bug") == BUGS, (
        "docs/TESTING.md (Conformance suite, known bugs) and tests/conformance/unsupported.py "
        "BUGS differ"
    )
