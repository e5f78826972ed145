"""The ``fastapi_route`` scenario: one FastAPI app per batch, served through ASGI.

Every row serves the same endpoint at ``GET /`` of an ordinary ``FastAPI()`` app,
built from the same generated dependables declared with ``fastapi.Depends``; only
the route class differs (plain ``APIRoute``, or anydepends' ``ConcurrentRoute``
chosen by the anydepends adapter), or, for the hand-written floors, the endpoint has
no ``Depends`` and awaits the same functions itself. The app's lifespan runs around
the batch (``ConcurrentRoute`` needs its container entered), and each request goes
through the whole app: Starlette's middleware and router, FastAPI's request handler,
validation, the endpoint, serialisation, ``yield`` teardown.

Two clients send the request:

- ``httpx``: ``httpx.AsyncClient`` over ``httpx.ASGITransport``, what FastAPI's and
  anydepends' tests use; it builds an ``httpx.Request`` and ``Response`` per call;
- ``asgi``: a direct ``await app(scope, receive, send)`` with a prepared scope (the
  one httpx's transport would build) and minimal ``receive``/``send``. The app does
  the same work, the client's own (identical for every row) is left out, so less
  of the time is shared noise and the rows' differences show more clearly.

A call returns ``(status, content type, body bytes)``; the worker checks the first
one of every batch against :func:`benchmarks.graphs.expected_json`.

This module imports FastAPI: only the workers of the libraries that serve the
scenario import it, and httpx only when that client is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from benchmarks import codegen
from benchmarks.adapters import Call
from benchmarks.adapters import bench_handwritten as hand
from benchmarks.graphs import Graph, Node

Reply = tuple[int | None, str | None, bytes]
"""What one call returns: the status, the content type and the body."""

CLIENTS = ("httpx", "asgi")


def _param(dep: Node) -> str:
    return f"p_{dep.name}: Annotated[Any, Depends(n_{dep.name})]"


_DIALECT = codegen.Dialect(param=_param)


def namespace(graph: Graph) -> dict[str, Any]:
    """The generated dependables, their parameters declared with ``fastapi.Depends``
    (what ``ConcurrentRoute`` reads too: it refuses ``anydepends.Depends``)."""
    return codegen.build(graph, _DIALECT, Depends=Depends)


def by_hand(impl: str, graph: Graph, ns: dict[str, Any]) -> Callable[..., Any]:
    """An endpoint without ``Depends`` that awaits the graph's functions itself:
    ``hand-route-seq`` in order, ``hand-route-tg`` with an anyio task group."""
    match impl:
        case "hand-route-seq":
            run = hand.runner("hand-seq", graph, ns)
        case "hand-route-tg":
            run = hand.runner("hand-tg", graph, ns)
        case _:
            raise KeyError(impl)

    async def endpoint() -> Any:
        return await run()

    return endpoint


def app(
    endpoint: Callable[..., Any],
    *,
    route_class: type[APIRoute] | None = None,
    lifespan: Callable[[Any], Any] | None = None,
) -> FastAPI:
    """A default ``FastAPI()`` app serving *endpoint* at ``GET /``."""
    application = FastAPI(lifespan=lifespan)
    if route_class is not None:
        application.router.route_class = route_class
    application.get("/")(endpoint)
    return application


@asynccontextmanager
async def client(application: FastAPI, kind: str) -> AsyncIterator[Call]:
    """Run the app's lifespan and yield one ``GET /`` through client *kind*."""
    async with application.router.lifespan_context(application):
        if kind == "httpx":
            import httpx

            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench"
            ) as http:

                async def get() -> Reply:
                    response = await http.get("/")
                    return (
                        response.status_code,
                        response.headers.get("content-type"),
                        response.content,
                    )

                yield get
        elif kind == "asgi":

            async def call() -> Reply:
                return await asgi_get(application)

            yield call
        else:
            raise ValueError(f"unknown client {kind!r}; expected one of {CLIENTS}")


# The scope httpx's ASGITransport builds for `GET http://bench/` (its headers
# trimmed to the host): copied per request, since the app writes into its scope.
_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "headers": [(b"host", b"bench")],
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "server": ("bench", 80),
    "client": ("127.0.0.1", 123),
    "root_path": "",
}


class _Exchange:
    """``receive`` and ``send`` of one direct ASGI request, as httpx's transport
    behaves: the (empty) body once, then ``http.disconnect`` after the response."""

    __slots__ = ("body", "complete", "content_type", "requested", "status", "waiter")

    def __init__(self) -> None:
        self.status: int | None = None
        self.content_type: str | None = None
        self.body = b""
        self.requested = False
        self.complete = False
        self.waiter: anyio.Event | None = None

    async def receive(self) -> dict[str, Any]:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if not self.complete:
            self.waiter = anyio.Event()
            await self.waiter.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name == b"content-type":
                    self.content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True
                if self.waiter is not None:
                    self.waiter.set()


async def asgi_get(application: Any) -> Reply:
    """``GET /`` as one direct ASGI call; an incomplete response has no status."""
    exchange = _Exchange()
    await application(dict(_SCOPE), exchange.receive, exchange.send)
    status = exchange.status if exchange.complete else None
    return status, exchange.content_type, exchange.body
