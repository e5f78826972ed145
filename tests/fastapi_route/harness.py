"""Run the same FastAPI app through plain ``APIRoute`` and through ``ConcurrentRoute``.

An app *factory* ``make(route_class) -> FastAPI`` builds a fresh app (and fresh
dependables) per run; :func:`serve` runs one request sequence through httpx's ASGI
transport in the current event loop (asyncio or trio), optionally inside the app's
lifespan. A :class:`Reply` records what the client saw, normalised so the two runs
can be compared: a 422 lists each error once (FastAPI repeats an error for every
dependency that declares the same value; anydepends fills a value once).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from anydepends import Container
from anydepends.fastapi import ConcurrentRoute

RouteClass = type[APIRoute] | None
AppFactory = Callable[[RouteClass], FastAPI]


@dataclass(frozen=True)
class Request:
    """One request to send."""

    method: str = "GET"
    path: str = "/"
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass
class Reply:
    """What the client saw for one request (or the exception the app raised)."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    exc: tuple[str, str] | None = None

    def normalised(self) -> Reply:
        """The reply with a 422's errors listed once each, sorted."""
        body = self.body
        if self.status == 422 and isinstance(body, dict) and "detail" in body:
            unique = {json.dumps(e, sort_keys=True): e for e in body["detail"]}
            body = {"detail": [unique[k] for k in sorted(unique)]}
        return Reply(self.status, body, self.headers, self.exc)


def reply_of(response: httpx.Response, headers: Sequence[str] = ()) -> Reply:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return Reply(
        response.status_code,
        body,
        {h: response.headers[h] for h in headers if h in response.headers},
    )


@asynccontextmanager
async def client(
    app: FastAPI, *, lifespan: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for *app* through the ASGI transport (no server, no thread).

    ``lifespan=True`` runs the app's lifespan around the requests (what
    ``with TestClient(app)`` does); httpx's transport alone never does.
    """
    async with AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://test")
        )


async def send(
    http: httpx.AsyncClient, request: Request, headers: Sequence[str] = ()
) -> Reply:
    """Send *request*; an exception the app raised becomes part of the reply."""
    try:
        response = await http.request(
            request.method,
            request.path,
            params=request.params,
            headers=request.headers,
            json=request.json,
        )
    except Exception as exc:
        return Reply(exc=(type(exc).__name__, str(exc)))
    return reply_of(response, headers)


async def serve(
    make: AppFactory,
    route_class: RouteClass,
    requests: Sequence[Request],
    *,
    lifespan: bool = False,
    headers: Sequence[str] = (),
) -> list[Reply]:
    """Build an app with *route_class* and send *requests* in order."""
    app = make(route_class)
    async with client(app, lifespan=lifespan) as http:
        return [await send(http, r, headers) for r in requests]


def route_classes() -> dict[str, RouteClass]:
    """The route classes a differential test compares: plain FastAPI first."""
    container = Container()
    return {
        "fastapi": None,
        "concurrent": ConcurrentRoute(container),
        "sequential": ConcurrentRoute(container, sequential=True),
    }


def app_with(route_class: RouteClass, **kwargs: Any) -> FastAPI:
    """A FastAPI app whose routes (``app.get`` and friends) use *route_class*."""
    app = FastAPI(**kwargs)
    if route_class is not None:
        app.router.route_class = route_class
    return app
