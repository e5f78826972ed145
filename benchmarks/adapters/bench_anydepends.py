"""anydepends: ``container.call(handler)``, a fresh scope per call.

``anydepends`` runs sync dependables inline (``Depends(f, sync_to_thread=False)``),
``anydepends-thread`` keeps the default (a worker thread, FastAPI parity) and
``anydepends-seq`` uses ``Container(sequential=True)``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from anydepends import Container, Depends
from benchmarks import codegen
from benchmarks.adapters import Session
from benchmarks.graphs import Graph, Node


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


def _build(impl: str, graph: Graph) -> tuple[dict[str, Any], Container]:
    ns = codegen.build(graph, _dialect(impl != "anydepends-thread"), Depends=Depends)
    return ns, Container(sequential=impl == "anydepends-seq")


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Enter a container and yield ``container.call(handler)``."""
    ns, container = _build(impl, graph)
    root = codegen.root_of(graph, ns)
    async with container:
        if graph.root.waits:
            # The memory scenario spells the request scope out, as users hold it.
            async def call() -> Any:
                async with container.scope() as scope:
                    return await scope.call(root)

            yield call, ns
        else:
            yield functools.partial(container.call, root), ns


@asynccontextmanager
async def compile_step(impl: str, graph: Graph) -> AsyncIterator[Callable[[], object]]:
    """Yield ``container.compile(handler)`` on a fresh, entered container."""
    ns, container = _build(impl, graph)
    root = codegen.root_of(graph, ns)
    async with container:
        yield functools.partial(container.compile, root)
