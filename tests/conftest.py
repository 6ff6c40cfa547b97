"""Shared test configuration: slow tests run only when KERNELC_SLOW=1; tests that need a C++
compiler (the poplar target's IPU model) are skipped, saying why, where there is none."""

import os

import pytest
from hypothesis import settings

# CI draws the same examples every run (a green main stays green); "thorough" explores anew
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("KERNELC_HYPOTHESIS", "ci"))


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KERNELC_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set KERNELC_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# the tail of the error runtime/ipu/runner.py `compiler()` raises when there is no g++ (or $CXX)
NO_COMPILER = "not installed (set CXX or install g++)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that stopped because the IPU model has no C++ compiler is a skip with that reason,
    not a failure: `kernelc build --target poplar` works without one, running the output does
    not."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and call.excinfo is not None and NO_COMPILER in str(call.excinfo.value):
        path, line, _ = item.location
        reason = "the poplar target's IPU model compiles the emitted C++ with g++ (or $CXX), "
        report.outcome = "skipped"
        report.longrepr = (path, (line or 0) + 1, f"Skipped: {reason}which is not installed")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _run_from_repository_root(monkeypatch):
    """Tests name examples by repository-relative paths, whatever directory pytest started in."""
    monkeypatch.chdir(ROOT)
