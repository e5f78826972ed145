"""dishka: every node a factory keyed by its own return type; ``get`` the root's.

Each request enters a child container (``async with container() as request``) and
gets the handler's type, so dishka's generated code resolves the whole graph in one
``get``. App-scoped nodes are provided in ``Scope.APP``; the rest in ``Scope.REQUEST``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from dishka import AsyncContainer, Provider, Scope, make_async_container

from benchmarks import codegen
from benchmarks.adapters import Session, Step
from benchmarks.graphs import Graph

_DIALECT = codegen.Dialect(
    param=codegen.typed_param, returns=codegen.typed_returns, types=True
)


def versions() -> dict[str, str]:
    """The dishka version."""
    return {"dishka": version("dishka")}


def _container(graph: Graph, ns: dict[str, Any]) -> AsyncContainer:
    provider = Provider()
    for node in graph.nodes:
        scope = Scope.APP if node.app else Scope.REQUEST
        provider.provide(codegen.fn(ns, node), scope=scope)
    return make_async_container(provider)


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Build the container and yield one request container + ``get`` per call."""
    ns = codegen.build(graph, _DIALECT)
    container = _container(graph, ns)
    root_type = ns[f"T_{graph.root.name}"]

    async def call() -> Any:
        async with container() as request:
            return await request.get(root_type)

    try:
        yield call, ns
    finally:
        await container.close()


@asynccontextmanager
async def compile_step(
    impl: str, graph: Graph
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield registration + ``make_async_container`` + the first ``get``."""
    ns = codegen.build(graph, _DIALECT, string_annotations=True)
    root_type = ns[f"T_{graph.root.name}"]
    built: list[AsyncContainer] = []

    async def step() -> object:
        container = _container(graph, ns)
        built.append(container)
        async with container() as request:
            await request.get(root_type)
        return container

    try:
        yield step, ns
    finally:
        for container in built:
            await container.close()
