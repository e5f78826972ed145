"""di: ``Container.solve`` once, then ``execute_async`` per request scope.

``di`` uses the sequential ``AsyncExecutor``; ``di-concurrent`` the
``ConcurrentAsyncExecutor`` (one anyio task per ready node). Sync dependables run
inline (di only offloads them when wrapped with ``di.concurrency.as_async``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from di import Container
from di.dependent import Dependent, Marker
from di.executors import AsyncExecutor, ConcurrentAsyncExecutor

from benchmarks import codegen
from benchmarks.adapters import Session, Step
from benchmarks.graphs import Graph, Node

_SCOPES = ("app", "request")


def versions() -> dict[str, str]:
    """The di version."""
    return {"di": version("di")}


def _param(dep: Node) -> str:
    scope = "app" if dep.app else "request"
    return f"p_{dep.name}: Annotated[Any, Marker(n_{dep.name}, scope={scope!r})]"


_DIALECT = codegen.Dialect(param=_param)


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Solve once, enter the app scope, yield one request scope per call."""
    ns = codegen.build(graph, _DIALECT, Marker=Marker)
    root = codegen.root_of(graph, ns)
    container = Container()
    solved = container.solve(Dependent(root, scope="request"), scopes=_SCOPES)
    executor = ConcurrentAsyncExecutor() if impl == "di-concurrent" else AsyncExecutor()
    async with container.enter_scope("app") as app_state:

        async def call() -> Any:
            async with container.enter_scope("request", state=app_state) as state:
                return await solved.execute_async(executor=executor, state=state)

        yield call, ns


@asynccontextmanager
async def compile_step(
    impl: str, graph: Graph
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield ``container.solve(...)`` (di's graph walk and validation) and the first
    ``execute_async`` in a request scope."""
    ns = codegen.build(graph, _DIALECT, string_annotations=True, Marker=Marker)
    root = codegen.root_of(graph, ns)
    container = Container()
    executor = AsyncExecutor()

    async def step() -> object:
        solved = container.solve(Dependent(root, scope="request"), scopes=_SCOPES)
        async with (
            container.enter_scope("app") as app_state,
            container.enter_scope("request", state=app_state) as state,
        ):
            await solved.execute_async(executor=executor, state=state)
        return solved

    yield step, ns
