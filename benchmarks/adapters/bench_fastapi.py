"""FastAPI's own resolver, without HTTP: ``solve_dependencies`` on a fake request.

The ``Dependant`` is built once with ``get_dependant`` (as FastAPI does per route).
Each call reproduces what ``fastapi.routing.request_response`` and the route handler do
around dependency resolution: a ``Request`` over a minimal ASGI scope, the request and
function ``AsyncExitStack`` s stored in that scope, ``solve_dependencies``, then the
endpoint called with the solved values. No body, no response serialisation.

``open_route`` serves the ``fastapi_route`` scenario instead: a whole FastAPI app
with plain ``APIRoute`` s (``fastapi-route``), or an endpoint without ``Depends`` that
awaits the same functions by hand (``hand-route-seq``, ``hand-route-tg``), requested
through an ASGI client (see ``benchmarks.routes``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, solve_dependencies
from starlette.requests import Request

from benchmarks import codegen
from benchmarks.adapters import Call, Session, Step
from benchmarks.graphs import Graph, Node

_ASGI_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [],
    "server": ("bench", 80),
    "client": ("bench", 1234),
}


def versions() -> dict[str, str]:
    """Versions of FastAPI and Starlette."""
    return {"fastapi": version("fastapi"), "starlette": version("starlette")}


def _param(dep: Node) -> str:
    return f"p_{dep.name}: Annotated[Any, Depends(n_{dep.name})]"


_DIALECT = codegen.Dialect(param=_param)


def _request(dependant: Dependant, root: Callable[..., Any]) -> Call:
    """One request: FastAPI's work around ``solve_dependencies``, then the endpoint."""

    async def call() -> Any:
        scope = dict(_ASGI_SCOPE)  # FastAPI keeps the exit stacks in the ASGI scope
        request = Request(scope)
        async with AsyncExitStack() as request_stack:
            scope["fastapi_inner_astack"] = request_stack
            async with AsyncExitStack() as function_stack:
                scope["fastapi_function_astack"] = function_stack
                solved = await solve_dependencies(
                    request=request,
                    dependant=dependant,
                    async_exit_stack=request_stack,
                    embed_body_fields=False,
                )
                if solved.errors:
                    raise RuntimeError(solved.errors)
                return await root(**solved.values)

    return call


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Yield one request through ``solve_dependencies`` and the endpoint."""
    ns = codegen.build(graph, _DIALECT, Depends=Depends)
    root = codegen.root_of(graph, ns)
    yield _request(get_dependant(path="/", call=root), root), ns


@asynccontextmanager
async def open_route(impl: str, graph: Graph, client: str) -> AsyncIterator[Session]:
    """Serve ``graph``'s root from a plain FastAPI app; yield one ``GET /``."""
    from benchmarks import routes

    ns = routes.namespace(graph)
    if impl == "fastapi-route":
        endpoint = codegen.root_of(graph, ns)
    else:
        endpoint = routes.by_hand(impl, graph, ns)
    async with routes.client(routes.app(endpoint), client) as call:
        yield call, ns


@asynccontextmanager
async def compile_step(
    impl: str, graph: Graph
) -> AsyncIterator[tuple[Step, dict[str, Any]]]:
    """Yield ``get_dependant(path="/", call=handler)`` (FastAPI's per-route
    analysis) and the first request through ``solve_dependencies``."""
    ns = codegen.build(graph, _DIALECT, string_annotations=True, Depends=Depends)
    root = codegen.root_of(graph, ns)

    async def step() -> object:
        dependant = get_dependant(path="/", call=root)
        await _request(dependant, root)()
        return dependant

    yield step, ns
