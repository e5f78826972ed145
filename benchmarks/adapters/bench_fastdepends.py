"""FastDepends 3: ``inject(handler, cast=False)`` called with no arguments.

``cast=False`` on ``inject`` and on every ``Depends`` switches pydantic validation off,
so FastDepends does the same work as the others. It has no app scope; sync dependables
always run in a worker thread when called from async code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fast_depends import Depends, inject

from benchmarks import codegen
from benchmarks.adapters import Session, Step
from benchmarks.graphs import Graph, Node


def versions() -> dict[str, str]:
    """Versions of fast-depends and pydantic."""
    return {"fast-depends": version("fast-depends"), "pydantic": version("pydantic")}


def _param(dep: Node) -> str:
    return f"p_{dep.name}: Annotated[Any, Depends(n_{dep.name}, cast=False)]"


_DIALECT = codegen.Dialect(param=_param)


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Yield the injected handler (each call: fresh memo and AsyncExitStack)."""
    ns = codegen.build(graph, _DIALECT, Depends=Depends)
    yield inject(codegen.root_of(graph, ns), cast=False), ns


@asynccontextmanager
async def compile_step(
    impl: str, graph: Graph
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield ``inject(handler)`` (builds FastDepends' CallModel tree) and its first
    call."""
    ns = codegen.build(graph, _DIALECT, string_annotations=True, Depends=Depends)
    root = codegen.root_of(graph, ns)

    async def step() -> object:
        injected = inject(root, cast=False)
        await injected()
        return injected

    yield step, ns
