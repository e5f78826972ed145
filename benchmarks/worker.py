"""A worker subprocess: imports one library, answers timing requests on stdin/stdout.

``python -m benchmarks.worker LIB`` reads one JSON request per line and writes one JSON
reply per line. Every timed batch first checks that the library computed the expected
root value, and after the batch that every node ran exactly once per request (once per
container when app-scoped) and every ``yield`` dependency was torn down as often.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import signal
import sys
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

import anyio

from benchmarks import graphs
from benchmarks.adapters import Adapter, Call
from benchmarks.graphs import Graph
from benchmarks.scenarios import Case


class CheckFailed(Exception):
    """The library did different work from the reference; its numbers are void."""


class BuildTimeout(Exception):
    """A graph build exceeded the compile budget."""


def _check_counts(
    graph: Graph, ns: dict[str, Any], requests: int, *, closed: bool = True
) -> None:
    """Each node ran once per request (once per container if app-scoped).

    Request-scoped generators must be torn down by the end of each request; app-scoped
    ones only when the container closes (``closed``), not before.
    """
    for i, node in enumerate(graph.nodes):
        want = 1 if node.app else requests
        got = ns["CALLS"][i]
        if got != want:
            raise CheckFailed(f"{node.name} called {got} times, expected {want}")
        if node.kind != "asyncgen":
            continue
        exits = want if closed or not node.app else 0
        if ns["EXITS"][i] != exits:
            raise CheckFailed(
                f"{node.name} torn down {ns['EXITS'][i]} times, expected {exits}"
                f" ({'after' if closed else 'before'} the container closed)"
            )


def _check_value(graph: Graph, value: object) -> None:
    if value != graphs.expected_value(graph):
        raise CheckFailed(f"wrong root value: {value!r:.200}")


async def _batch(
    adapter: Adapter, impl: str, graph: Graph, n: int | None, warmup: int
) -> tuple[float, int]:
    """Time ``n`` sequential requests; with ``n=None`` calibrate for ~50 ms instead."""
    total = 0
    async with adapter.open(impl, graph) as (call, ns):
        _check_value(graph, await call())
        total += 1
        for _ in range(warmup):
            await call()
        total += warmup
        gc.collect()
        if n is None:  # calibration: as many calls as fit in 50 ms (at least 3)
            count, start = 0, time.perf_counter()
            while count < 3 or time.perf_counter() - start < 0.05:
                await call()
                count += 1
            elapsed, n = time.perf_counter() - start, count
        else:
            start = time.perf_counter()
            for _ in range(n):
                await call()
            elapsed = time.perf_counter() - start
        total += n
        _check_counts(graph, ns, total, closed=False)
    _check_counts(graph, ns, total)
    return elapsed / n, n


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise BuildTimeout in the main thread after ``seconds`` (pure-Python builds)."""

    def fire(signum: int, frame: object) -> None:
        raise BuildTimeout

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _compile(
    adapter: Adapter, impl: str, sizes: list[int], budget: float
) -> list[dict[str, Any]]:
    """Time the graph-build step on layered DAGs of growing size.

    A build slower than ``budget`` is interrupted and ends the series. A size whose
    build, extrapolated linearly from the previous size, would exceed the budget is
    skipped without running (so quick mode does not spend its time on timeouts).
    """
    out: list[dict[str, Any]] = []
    stopped = False
    last: tuple[int, float] | None = None

    async def once(graph: Graph) -> float:
        async with adapter.compile_step(impl, graph) as step:
            gc.collect()
            with _deadline(budget):
                start = time.perf_counter()
                step()
                return time.perf_counter() - start

    for size in sizes:
        graph = graphs.layered_dag(size)
        row: dict[str, Any] = {"size": size, "edges": graphs.edge_count(graph)}
        estimate = last[1] * size / last[0] if last else 0.0
        if stopped or estimate > budget:
            stopped = True
            out.append({**row, "timeout": True, "estimate": estimate, "seconds": []})
            continue
        times: list[float] = []
        repeats = 5 if size <= 100 else 3 if size <= 1000 else 1
        for _ in range(repeats):
            try:
                times.append(anyio.run(once, graph))
            except BuildTimeout:
                stopped = True
                break
            except Exception as exc:  # a library that cannot build this size at all
                stopped = True
                row["error"] = f"{type(exc).__name__}: {exc}"[:200]
                times.clear()
                break
            if times[-1] > budget / 4:  # one slow build is enough at this size
                break
        if times and not stopped:
            last = (size, min(times))
        out.append({**row, "timeout": stopped, "seconds": times})
    return out


async def _memory(
    adapter: Adapter, impl: str, graph: Graph, tasks: int
) -> dict[str, Any]:
    """Net bytes allocated per in-flight request while ``tasks`` are parked at once."""
    root = len(graph.nodes) - 1
    bare = impl == "bare-task"  # baseline: a task doing nothing but waiting
    async with adapter.open("hand-seq" if bare else impl, graph) as (call, ns):
        if bare:

            async def call() -> None:
                ns["CALLS"][root] += 1
                await ns["EVENT"].wait()

        ns["EVENT"] = anyio.Event()
        ns["EVENT"].set()
        warm = 3
        for _ in range(warm):  # plans compiled, caches warm, outside the measurement
            await call()
        ns["EVENT"] = event = anyio.Event()
        started = ns["CALLS"][root]
        gc.collect()
        tracemalloc.start()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(tasks):
                    tg.start_soon(_drive, call)
                # Poll the plain counter: an Event per task would itself cost memory.
                while ns["CALLS"][root] - started < tasks:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
                gc.collect()
                held, _peak = tracemalloc.get_traced_memory()
                event.set()
        finally:
            tracemalloc.stop()
    if not bare:
        _check_counts(graph, ns, warm + tasks)
    return {"bytes_per_scope": held / tasks, "tasks": tasks}


async def _drive(call: Call) -> None:
    await call()


def _adapter(lib: str) -> Adapter:
    return cast(Adapter, importlib.import_module(f"benchmarks.adapters.bench_{lib}"))


def _handle(adapter: Adapter, request: dict[str, Any]) -> dict[str, Any]:
    op = request["op"]
    if op == "hello":
        return {"versions": adapter.versions(), "python": platform.python_version()}
    impl = request["impl"]
    if op == "run":
        case = Case.from_json(request["case"])
        per_call, n = anyio.run(
            _batch,
            adapter,
            impl,
            case.graph(),
            request.get("n"),
            request.get("warmup", 0),
            backend=case.backend,
        )
        return {"per_call": per_call, "n": n}
    if op == "compile":
        return {"sizes": _compile(adapter, impl, request["sizes"], request["budget"])}
    if op == "memory":
        return anyio.run(
            _memory, adapter, impl, Case("memory").graph(), request["tasks"]
        )
    raise ValueError(f"unknown op {op!r}")


def serve(lib: str, inp: IO[str], out: IO[str]) -> None:
    """Answer requests until EOF; errors are replies, never crashes."""
    adapter: Adapter | None = None
    error: str | None = None
    try:
        adapter = _adapter(lib)
    except Exception as exc:  # e.g. the library is not installed
        error = f"cannot import {lib}: {exc!r}"
    for line in inp:
        request = json.loads(line)
        reply: dict[str, Any]
        if adapter is None:
            reply = {"ok": False, "error": error}
        else:
            try:
                reply = {"ok": True, **_handle(adapter, request)}
            except CheckFailed as exc:
                reply = {"ok": False, "check": True, "error": str(exc)}
            except Exception as exc:
                tb = traceback.format_exception(exc)
                reply = {"ok": False, "error": f"{exc!r}", "traceback": "".join(tb)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main(argv: list[str]) -> None:
    """Entry point: ``python -m benchmarks.worker LIB``."""
    # Keep stdout for replies only: libraries that print go to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    serve(argv[0], sys.stdin, out)


if __name__ == "__main__":
    main(sys.argv[1:])
