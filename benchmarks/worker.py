"""A worker subprocess: imports one library, answers timing requests on stdin/stdout.

``python -m benchmarks.worker LIB`` reads one JSON request per line and writes one JSON
reply per line. Every timed batch first checks that the library computed the expected
root value (in ``fastapi_route``: that the app answered 200 with the expected JSON
body), and after the batch that every node ran exactly once per request (once per
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
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import IO, Any, cast

import anyio

from benchmarks import graphs
from benchmarks.adapters import Adapter, Call, Phases, Session
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


def _check_reply(graph: Graph, reply: object) -> None:
    """A ``fastapi_route`` response: 200, JSON, the expected body byte for byte."""
    want = (200, "application/json", graphs.expected_json(graph))
    if reply != want:
        raise CheckFailed(f"wrong response (status, type, body): {reply!r:.200}")


class _Routes:
    """An adapter's ``fastapi_route`` apps behind the usual ``open(impl, graph)``,
    requested through the ASGI client ``client``."""

    def __init__(self, adapter: Adapter, client: str) -> None:
        open_route = getattr(adapter, "open_route", None)
        if open_route is None:
            raise ValueError("this adapter has no open_route")
        self._open_route: Callable[..., AbstractAsyncContextManager[Session]]
        self._open_route = open_route
        self._client = client

    def open(self, impl: str, graph: Graph) -> AbstractAsyncContextManager[Session]:
        return self._open_route(impl, graph, self._client)


async def _batch(
    adapter: Adapter | _Routes,
    impl: str,
    graph: Graph,
    n: int | None,
    warmup: int,
    check: Callable[[Graph, object], None] = _check_value,
) -> tuple[float, int]:
    """Time ``n`` sequential requests; with ``n=None`` calibrate for ~50 ms instead.

    ``check`` judges the first call's result (the root value, or an HTTP reply).
    """
    total = 0
    async with adapter.open(impl, graph) as (call, ns):
        check(graph, await call())
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


async def _loaded_batch(
    adapter: Adapter, impl: str, case: Case, n: int | None, warmup: int
) -> tuple[float, int]:
    """Time ``n`` requests made by ``callers`` concurrent tasks, R = n / callers each.

    The callers are started and parked on a gate first, so the time runs from the
    gate opening to the last request's end: spawning is not counted, the wake-up of
    every caller and the scheduler's round trips are.
    """
    graph = case.graph()
    callers = int(case.params["callers"])
    per_caller = max(1, -(-(n or callers) // callers))
    total = 0
    async with adapter.open(impl, graph) as (call, ns):
        _check_value(graph, await call())
        total += 1
        for _ in range(warmup):
            await call()
        total += warmup
        gate = anyio.Event()

        async def caller() -> None:
            await gate.wait()
            for _ in range(per_caller):
                await call()

        async with anyio.create_task_group() as tg:
            for _ in range(callers):
                tg.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            gc.collect()
            start = time.perf_counter()
            gate.set()
        elapsed = time.perf_counter() - start
        total += callers * per_caller
        _check_counts(graph, ns, total, closed=False)
    _check_counts(graph, ns, total)
    return elapsed / (callers * per_caller), callers * per_caller


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise BuildTimeout in the main thread after ``seconds`` (pure-Python builds).

    A library may catch the exception and wrap it in its own (anydepends turns it
    into a DeclarationError when it fires during annotation evaluation): whatever
    escapes after the alarm fired is re-raised as BuildTimeout.
    """
    fired = False

    def fire(signum: int, frame: object) -> None:
        nonlocal fired
        fired = True
        raise BuildTimeout

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Exception as exc:
        if fired and not isinstance(exc, BuildTimeout):
            raise BuildTimeout from exc
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _check_first_call(graph: Graph, ns: dict[str, Any]) -> None:
    """A build step that called the root ran every node once per call it made."""
    calls = ns["CALLS"]
    if len(set(calls)) != 1:
        i = next(i for i, c in enumerate(calls) if c != calls[-1])
        raise CheckFailed(
            f"{graph.nodes[i].name} called {calls[i]} times, the root {calls[-1]}"
        )


def _error_text(exc: BaseException, limit: int = 160) -> str:
    """``Type: first line of the message``, shortened (errors can name 10,000-node
    paths)."""
    first = str(exc).split("\n", 1)[0]
    text = f"{type(exc).__name__}: {first}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _compile_once(
    adapter: Adapter, impl: str, family: str, size: int, budget: float, traced: bool
) -> dict[str, Any]:
    """One build step (most rows: build + first call) in a fresh event loop.

    Returns ``seconds`` (the row's time), ``whole`` (the whole step, extra phases
    included) and ``phases``; or ``timeout`` when it ran over ``budget``; or
    ``error`` when the library cannot build this graph at all. With ``traced`` the
    build runs under tracemalloc instead and returns its peak and what is still
    allocated once it returned (the plan and caches, kept alive until then).
    """
    graph = graphs.family(family, size)

    async def once() -> dict[str, Any]:
        async with adapter.compile_step(impl, graph) as (step, ns):
            gc.collect()
            if traced:
                tracemalloc.start()
            try:
                with _deadline(budget):
                    start = time.perf_counter()
                    built = await step()
                    whole = time.perf_counter() - start
                gc.collect()
                held, peak = tracemalloc.get_traced_memory() if traced else (0, 0)
            finally:
                tracemalloc.stop()
            out: dict[str, Any] = {"seconds": whole, "whole": whole}
            if isinstance(built, Phases):
                parts = list(built.seconds.values())
                out.update(seconds=sum(parts[: built.headline]), phases=built.seconds)
            del built  # the plan (or container) was alive while memory was measured
            _check_first_call(graph, ns)
            if traced:
                out.update(retained_bytes=held, peak_bytes=peak)
            return out

    try:
        return anyio.run(once)
    except BuildTimeout:
        return {"timeout": True}
    except CheckFailed:
        raise
    except Exception as exc:  # a library that cannot build this graph at all
        return {"error": _error_text(exc)}


def _compile_shared(
    adapter: Adapter, nodes: int, handlers: int, repeats: int
) -> dict[str, Any]:
    """Compile ``handlers`` roots over one shared graph: in one container, and each
    in its own container (seconds, one per repeat)."""
    compile_roots = getattr(adapter, "compile_roots", None)
    if compile_roots is None:
        raise ValueError("this adapter has no compile_roots")
    graph, roots = graphs.shared_graph(nodes, handlers)

    async def once(shared: bool) -> float:
        async with compile_roots(graph, roots, shared=shared) as (step, _ns):
            gc.collect()
            start = time.perf_counter()
            await step()
            return time.perf_counter() - start

    out: dict[str, Any] = {
        "nodes": nodes,
        "handlers": handlers,
        "mean_plan_nodes": sum(graphs.reachable(graph, r) for r in roots) / handlers,
    }
    for shared in (True, False):
        key = "shared" if shared else "independent"
        out[key] = [anyio.run(once, shared) for _ in range(repeats)]
    return out


async def _memory(
    adapter: Adapter, impl: str, graph: Graph, tasks: int
) -> dict[str, Any]:
    """Net bytes allocated per in-flight request while ``tasks`` are parked at once.

    The graph's waiting node (root, a mid dependency or a leaf) awaits ``EVENT``;
    the measurement is taken once every request has reached it and every task is
    blocked (so dependencies that run beside the waiting one have finished).
    """
    waiting = next(i for i, n in enumerate(graph.nodes) if n.waits)
    bare = impl == "bare-task"  # baseline: a task doing nothing but waiting
    async with adapter.open("hand-seq" if bare else impl, graph) as (call, ns):
        if bare:

            async def call() -> None:
                ns["CALLS"][waiting] += 1
                await ns["EVENT"].wait()

        ns["EVENT"] = anyio.Event()
        ns["EVENT"].set()
        warm = 3
        for _ in range(warm):  # plans compiled, caches warm, outside the measurement
            await call()
        ns["EVENT"] = event = anyio.Event()
        started = ns["CALLS"][waiting]
        gc.collect()
        tracemalloc.start()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(tasks):
                    tg.start_soon(_drive, call)
                # Poll the plain counter: an Event per task would itself cost memory.
                while ns["CALLS"][waiting] - started < tasks:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
                await anyio.wait_all_tasks_blocked()
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
    if op == "shared":
        return _compile_shared(
            adapter, request["nodes"], request["handlers"], request["repeats"]
        )
    impl = request["impl"]
    if op == "run":
        case = Case.from_json(request["case"])
        n, warmup = request.get("n"), request.get("warmup", 0)
        if case.scenario == "loaded":
            per_call, n = anyio.run(
                _loaded_batch, adapter, impl, case, n, warmup, backend=case.backend
            )
        elif case.scenario == "fastapi_route":
            routes = _Routes(adapter, case.params["client"])
            per_call, n = anyio.run(
                _batch,
                routes,
                impl,
                case.graph(),
                n,
                warmup,
                _check_reply,
                backend=case.backend,
            )
        else:
            per_call, n = anyio.run(
                _batch, adapter, impl, case.graph(), n, warmup, backend=case.backend
            )
        return {"per_call": per_call, "n": n}
    if op == "compile":
        return _compile_once(
            adapter,
            impl,
            request["family"],
            request["size"],
            request["budget"],
            request.get("traced", False),
        )
    if op == "memory":
        case = Case("memory", params={"position": request["position"]})
        return anyio.run(_memory, adapter, impl, case.graph(), request["tasks"])
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
                reply = {
                    "ok": False,
                    "error": _error_text(exc, 500),
                    "traceback": "".join(tb)[-4000:],
                }
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
