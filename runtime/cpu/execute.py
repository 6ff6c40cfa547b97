"""Run a JIT-compiled task graph on NumPy arrays: dependency order, threads, ctypes calls.

Each task's split loop (its outermost parallel loop, see backends/cpu/lower.py) is cut into
contiguous shares that ``threads`` workers take one after another (a few shares per worker, so a
worker that finishes early takes more: the work per iteration may vary, as in the XS lookup). A
GEMM task gets one share per worker, since every share packs its own copy of B. Tasks start when
every task they depend on has finished, so independent tasks run at the same time. The ctypes
calls release the GIL, so a pool of Python threads is a pool of native threads; the calling
thread is one of the workers. A worker is one call of the task's native worker loop
(``<symbol>_shares``), which takes shares from an atomic counter.

Waking a pooled thread costs tens of microseconds, more than some whole tasks save by it. So
unless the caller fixed the thread count, the runtime measures: a task first runs on all threads;
if that took under SMALL_TASK_SECONDS it next runs on the calling thread alone; from then on it
runs the way that was faster last time.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from kernelc.backends.cpu.compile import TaskEntry
from kernelc.graph import TaskGraph
from kernelc.runtime.cpu.cache import Loaded

WHOLE = (-(2**63), 2**63 - 1)  # the range argument of a task that is not split
SHARES_PER_WORKER = 4
SMALL_TASK_SECONDS = 1e-3

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="kernelc-cpu")
        return _pools[threads]


def shares(split: tuple[int, int] | None, pieces: int) -> list[tuple[int, int]]:
    """Contiguous, nearly equal pieces of a split range (the first ones one longer)."""
    if split is None or pieces <= 1:
        return [WHOLE]
    lo, hi = split
    count = min(pieces, hi - lo)
    if count <= 1:
        return [WHOLE]
    size, extra = divmod(hi - lo, count)
    result, start = [], lo
    for n in range(count):
        end = start + size + (1 if n < extra else 0)
        result.append((start, end))
        start = end
    return result


class _TaskRun:
    """The shares of one task, in a native range table with the counter its workers share."""

    def __init__(self, fn: Callable, entry: TaskEntry, table, threads: int) -> None:
        pieces = threads if entry.gemm else threads * SHARES_PER_WORKER
        ranges = shares(entry.split, 1 if threads == 1 else pieces)
        self.threads = threads
        self.workers = min(threads, len(ranges))
        self._ranges = np.array(ranges, dtype=np.int64)
        self._next = np.zeros(1, dtype=np.int64)
        self._fn = fn
        self._table = table

        self.started = 0.0

    def work(self) -> None:
        """One worker: runs shares until none is left (in native code, without the GIL)."""
        self._fn(self._table, self._next.ctypes.data, self._ranges.ctypes.data, len(self._ranges))


def execute(
    loaded: Loaded,
    graph: TaskGraph,
    inputs: Mapping[str, np.ndarray | np.generic],
    threads: int,
    fixed: bool = True,
) -> dict[str, np.ndarray]:
    """Allocate outputs and temporaries (zero-filled), run every task, return the outputs.

    ``fixed`` False lets small tasks (by their last run time) run on one thread.
    """
    program = loaded.program
    arrays: dict[str, np.ndarray] = {}
    for t in graph.tensors:
        if t.role == "input":
            arrays[t.name] = inputs[t.name]
        else:
            arrays[t.name] = np.zeros(t.shape, dtype=t.dtype.numpy)
    for s in graph.scalars:
        arrays[s.name] = np.array(inputs[s.name], dtype=s.dtype.numpy)
    table = (ctypes.c_void_p * max(1, len(program.buffers)))(
        *[arrays[name].ctypes.data for name in program.buffers]
    )
    last = loaded.task_seconds
    runs = {}
    for t in program.tasks:
        workers = threads if fixed else _choose(last, t.name, threads)
        runs[t.name] = _TaskRun(loaded.module.functions[t.symbol], t, table, workers)
    if threads == 1 or (len(runs) == 1 and all(r.workers == 1 for r in runs.values())):
        for task in graph.tasks:
            start = time.perf_counter()
            runs[task.name].work()
            last[task.name, runs[task.name].threads] = time.perf_counter() - start
    else:
        _run_parallel(graph, runs, threads, last)
    return {t.name: arrays[t.name] for t in graph.outputs}


def _choose(last: dict[tuple[str, int], float], task: str, threads: int) -> int:
    """Threads for a task: all, unless one thread was (or may be) faster for it."""
    parallel = last.get((task, threads))
    if parallel is None or threads == 1:
        return threads
    alone = last.get((task, 1))
    if alone is None:
        return 1 if parallel < SMALL_TASK_SECONDS else threads
    return 1 if alone <= parallel else threads


def _run_parallel(
    graph: TaskGraph, runs: dict[str, _TaskRun], threads: int, last: dict[tuple[str, int], float]
) -> None:
    """Dependency-ordered execution; the calling thread works on the tasks it starts."""
    deps = graph.dependencies
    waiting = {t.name: set(deps.predecessors(t.name)) for t in graph.tasks}
    left = {name: run.workers for name, run in runs.items()}
    pool = _pool(threads)
    running: dict[Future, str] = {}
    inline: list[str] = []

    def start(name: str) -> None:
        run = runs[name]
        run.started = time.perf_counter()
        helpers = run.workers
        if not inline:  # one worker on this thread, unless it already has one waiting
            inline.append(name)
            helpers -= 1
        for _ in range(helpers):
            running[pool.submit(run.work)] = name

    def finish(name: str) -> None:
        left[name] -= 1
        if left[name]:
            return
        last[name, runs[name].threads] = time.perf_counter() - runs[name].started
        for succ in deps.successors(name):
            waiting[succ].discard(name)
            if not waiting[succ]:
                start(succ)

    for name in [n for n, w in waiting.items() if not w]:
        start(name)
    while inline or running:
        while inline:
            name = inline[0]
            runs[name].work()
            inline.pop(0)
            finish(name)
        if running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                future.result()
                finish(name)
