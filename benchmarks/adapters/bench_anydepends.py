"""anydepends: ``container.call(handler)``, a fresh scope per call.

``anydepends`` runs sync dependables inline (``Depends(f, sync_to_thread=False)``),
``anydepends-thread`` keeps the default (a worker thread, FastAPI parity) and
``anydepends-seq`` uses ``Container(sequential=True)``; ``anydepends-cold`` keeps no
idle worker task between calls, so every concurrent call starts its runner tasks.
``anydepends-scope`` spells the request scope out (``async with container.scope() as
s: await s.call(...)``), as a web integration does. The ``...-first-...`` rows make
the plan's very first call in the fresh container through the *other* entry point
before anything is counted, to show whether speed depends on call history.

``open_route`` serves the ``fastapi_route`` scenario: a FastAPI app whose routes are
``ConcurrentRoute(container)`` (``anydepends-route``) or ``ConcurrentRoute(container,
sequential=True)`` (``anydepends-route-seq``), with ``lifespan(container)``; FastAPI
is imported only then.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from anydepends import Container, Depends, _pool
from benchmarks import codegen
from benchmarks.adapters import Phases, Session, Step
from benchmarks.graphs import Graph, Node

_SCOPE_IMPLS = frozenset({"anydepends-scope", "anydepends-scope-first-call"})


def versions() -> dict[str, str]:
    """Versions of anydepends and anyio."""
    return {"anydepends": version("anydepends"), "anyio": version("anyio")}


def _dialect(inline_sync: bool) -> codegen.Dialect:
    def param(dep: Node) -> str:
        opts = [f"n_{dep.name}"]
        if dep.app:
            opts.append('scope="app"')
        if dep.kind == "sync" and inline_sync:
            opts.append("sync_to_thread=False")
        return f"p_{dep.name}: Annotated[Any, Depends({', '.join(opts)})]"

    return codegen.Dialect(param=param)


def _build(
    impl: str, graph: Graph, *, string_annotations: bool = False
) -> tuple[dict[str, Any], Container]:
    ns = codegen.build(
        graph,
        _dialect(impl != "anydepends-thread"),
        string_annotations=string_annotations,
        Depends=Depends,
    )
    return ns, Container(sequential=impl == "anydepends-seq")


async def _via_scope(container: Container, root: Callable[..., Any]) -> Any:
    async with container.scope() as scope:
        return await scope.call(root)


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Enter a container and yield one request through the impl's entry point."""
    ns, container = _build(impl, graph)
    root = codegen.root_of(graph, ns)
    async with container:
        call: Callable[[], Any]
        if impl in _SCOPE_IMPLS:
            call = functools.partial(_via_scope, container, root)
        else:
            call = functools.partial(container.call, root)
        # Prime the plan through the other entry point, then count from zero.
        if impl == "anydepends-first-scope":
            await _via_scope(container, root)
            codegen.reset_counts(graph, ns)
        elif impl == "anydepends-scope-first-call":
            await container.call(root)
            codegen.reset_counts(graph, ns)
        if impl == "anydepends-cold":
            # The one cost that depends on earlier calls (a warm pool of workers):
            # with no idle worker kept, every call pays what a first one does.
            kept, _pool.IDLE_KEPT = _pool.IDLE_KEPT, 0
            try:
                yield call, ns
            finally:
                _pool.IDLE_KEPT = kept
            return
        yield call, ns


@asynccontextmanager
async def open_route(impl: str, graph: Graph, client: str) -> AsyncIterator[Session]:
    """Serve ``graph``'s root through ``ConcurrentRoute``; yield one ``GET /``."""
    from anydepends.fastapi import ConcurrentRoute, lifespan
    from benchmarks import routes

    if impl not in ("anydepends-route", "anydepends-route-seq"):
        raise KeyError(impl)
    ns = routes.namespace(graph)
    container = Container()
    route_class = ConcurrentRoute(container, sequential=impl == "anydepends-route-seq")
    app = routes.app(
        codegen.root_of(graph, ns),
        route_class=route_class,
        lifespan=lifespan(container),
    )
    async with routes.client(app, client) as call:
        yield call, ns


@asynccontextmanager
async def compile_step(
    impl: str, graph: Graph
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield ``container.compile(handler)``, its first call and its second call.

    The row's time is compile + first call: the first call runs the graph once and
    builds any code the engine generates for the plan, so it belongs to start-up.
    The second call is timed apart (today the runner of a plan whose nodes may
    overlap is generated on its second call).
    """
    ns, container = _build(impl, graph, string_annotations=True)
    root = codegen.root_of(graph, ns)

    async def step() -> object:
        t0 = time.perf_counter()
        plan = container.compile(root)
        t1 = time.perf_counter()
        await container.call(plan)
        t2 = time.perf_counter()
        await container.call(plan)
        t3 = time.perf_counter()
        phases = {"compile": t1 - t0, "first call": t2 - t1, "second call": t3 - t2}
        return Phases(plan, phases, headline=2)

    async with container:
        yield step, ns


@asynccontextmanager
async def compile_roots(
    graph: Graph, roots: Sequence[str], *, shared: bool
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield a step compiling every root in ``roots``.

    ``shared``: one container compiles them all (introspection can be shared);
    otherwise each root gets its own new container, as separate processes would.
    """
    ns = codegen.build(
        graph, _dialect(inline_sync=True), string_annotations=True, Depends=Depends
    )
    fns = [ns[f"n_{name}"] for name in roots]

    async def step() -> object:
        if shared:
            async with Container() as container:
                return [container.compile(fn) for fn in fns]
        plans = []
        for fn in fns:
            async with Container() as container:
                plans.append(container.compile(fn))
        return plans

    yield step, ns
