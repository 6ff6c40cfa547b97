"""Shared test configuration: slow tests run only when KERNELC_SLOW=1."""

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


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _run_from_repository_root(monkeypatch):
    """Tests name examples by repository-relative paths, whatever directory pytest started in."""
    monkeypatch.chdir(ROOT)
