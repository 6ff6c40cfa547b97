"""``groq.runner.tsp`` as the emulator answers it: ``create_tsp_runner(iop)(**inputs) -> dict``.

Inputs are checked as the runtime checks them: every input by its name, with the declared shape
and dtype (no silent conversion); the outputs come back by tensor name.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

import numpy as np

from .errors import caller, fail
from .iop import execute, read_iop

# who follows the runs of one emitted file (loader.run_file's ``watch``): told (instructions
# executed, instructions) as a program runs
WATCH: ContextVar[Callable[[int, int], None] | None] = ContextVar("tsp_watch", default=None)


class TspRunner:
    def __init__(self, path: str) -> None:
        self.path = path
        self.doc, self.constants = read_iop(path)
        self.inputs = [t for t in self.doc["tensors"] if t.get("kind") == "input"]

    @property
    def cycles(self) -> int:
        return self.doc["cycles"]

    def __call__(self, **given: np.ndarray) -> dict[str, np.ndarray]:
        where = caller()
        names = {t["name"] for t in self.inputs}
        extra = sorted(set(given) - names)
        if extra:
            raise fail(f"{self.path}: the program has no input {extra[0]!r}", where)
        arrays = {}
        for t in self.inputs:
            if t["name"] not in given:
                raise fail(f"input '{t['name']}' is missing", where)
            array = np.asarray(given[t["name"]])
            if array.dtype != np.dtype(t["dtype"]):
                raise fail(
                    f"input '{t['name']}' is {array.dtype}; the program takes {t['dtype']}", where
                )
            if list(array.shape) != t["shape"]:
                raise fail(
                    f"input '{t['name']}' has shape {array.shape}; "
                    f"the program takes {tuple(t['shape'])}",
                    where,
                )
            arrays[t["name"]] = np.ascontiguousarray(array)
        return execute(self.doc, self.constants, arrays, WATCH.get())


def create_tsp_runner(iop: str) -> TspRunner:
    return TspRunner(str(iop))
