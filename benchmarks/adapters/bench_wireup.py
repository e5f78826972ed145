"""wireup: ``@injectable`` factories keyed by return type; ``get`` the root's.

Each request enters a scope (``async with container.enter_scope() as scope``) and gets
the handler's type. App-scoped nodes are ``singleton``s, the rest ``scoped``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import wireup
from wireup import AsyncContainer, injectable

from benchmarks import codegen
from benchmarks.adapters import Session, Step
from benchmarks.graphs import Graph, Node


def _decorator(node: Node) -> str:
    lifetime = "singleton" if node.app else "scoped"
    return f"@injectable(lifetime={lifetime!r})"


_DIALECT = codegen.Dialect(
    param=codegen.typed_param,
    returns=codegen.typed_returns,
    decorator=_decorator,
    types=True,
)


def versions() -> dict[str, str]:
    """The wireup version."""
    return {"wireup": version("wireup")}


def _container(graph: Graph, ns: dict[str, Any]) -> AsyncContainer:
    return wireup.create_async_container(
        injectables=[codegen.fn(ns, n) for n in graph.nodes]
    )


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Create the container and yield one scope + ``get`` per call."""
    ns = codegen.build(graph, _DIALECT, injectable=injectable)
    container = _container(graph, ns)
    root_type = ns[f"T_{graph.root.name}"]

    async def call() -> Any:
        async with container.enter_scope() as scope:
            return await scope.get(root_type)

    try:
        yield call, ns
    finally:
        await container.close()


@asynccontextmanager
async def compile_step(
    impl: str, graph: Graph
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield ``create_async_container`` (registration, validation, code generation)
    and the first ``get`` in a scope."""
    ns = codegen.build(graph, _DIALECT, string_annotations=True, injectable=injectable)
    root_type = ns[f"T_{graph.root.name}"]
    built: list[AsyncContainer] = []

    async def step() -> object:
        container = _container(graph, ns)
        built.append(container)
        async with container.enter_scope() as scope:
            await scope.get(root_type)
        return container

    try:
        yield step, ns
    finally:
        for container in built:
            await container.close()
