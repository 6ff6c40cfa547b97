"""Run an emitted file with ``groq.api``, ``groq.api.nn`` and ``groq.runner.tsp`` answered by the
emulator, for the duration of that run only (sys.modules entries, restored afterwards)."""

from __future__ import annotations

import contextlib
import runpy
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

from . import api, nn, runner

NAMES = ("groq", "groq.api", "groq.api.nn", "groq.runner", "groq.runner.tsp")


@contextlib.contextmanager
def groq_modules() -> Iterator[None]:
    groq = types.ModuleType("groq")
    groq.__path__ = []
    runner_pkg = types.ModuleType("groq.runner")
    runner_pkg.__path__ = []
    runner_pkg.tsp = runner
    groq.api = api
    groq.runner = runner_pkg
    api.nn = nn
    modules = {
        "groq": groq,
        "groq.api": api,
        "groq.api.nn": nn,
        "groq.runner": runner_pkg,
        "groq.runner.tsp": runner,
    }
    saved = {n: sys.modules.get(n) for n in NAMES}
    sys.modules.update(modules)
    api.reset_program_context()
    try:
        yield
    finally:
        api.reset_program_context()
        del api.nn
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


def run_file(
    script: str | Path, argv: list[str] = (), watch: Callable[[int, int], None] | None = None
) -> None:
    """Execute an emitted file as ``python script ARGV`` would, against the emulator; a
    non-zero exit is a RuntimeError. ``watch`` follows the programs it runs (runner.WATCH)."""
    script = Path(script).resolve()
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    token = runner.WATCH.set(watch)
    try:
        with groq_modules():
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"{script.name} exited with status {exc.code}") from None
    finally:
        runner.WATCH.reset(token)
        sys.argv, sys.path[:] = saved_argv, saved_path
