"""``anydepends.starlette``: one scope per request, ``@inject`` endpoints, lifespan.

Requests go through httpx's ASGI transport, on asyncio and on trio; the app's
lifespan runs around each test's client. Ordering (a teardown after the response is
sent) is proven by a log, never by timing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from anydepends import Container, DeclarationError, Depends, UsageError
from anydepends.starlette import (
    AnydependsMiddleware,
    check_routes,
    inject,
    lifespan,
    request_scope,
)

LOG: list[str] = []


class RecordSends:
    """Inside the anydepends middleware: logs when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                LOG.append(f"sent {message['status']}")
            await send(message)

        await self.app(scope, receive, send=recording)


async def get_db(request: Request) -> AsyncIterator[dict[str, Any]]:
    db = {"path": request.url.path}
    LOG.append("db: open")
    try:
        yield db
    except Exception as exc:
        LOG.append(f"db: rollback {type(exc).__name__}")
        raise
    LOG.append("db: commit")


async def get_user(
    request: Request, db: Annotated[dict[str, Any], Depends(get_db)]
) -> str:
    name = request.headers.get("x-user", "")
    if not name:
        raise HTTPException(401, "who are you?")
    return name


@inject
async def read_item(
    item_id: int,
    user: Annotated[str, Depends(get_user)],
    db: Annotated[dict[str, Any], Depends(get_db)],
) -> dict[str, Any]:
    LOG.append("handler")
    if item_id == 0:
        raise ValueError("item 0 is cursed")
    return {"item": item_id, "user": user, "path": db["path"]}


@inject
def plain_text(request: Request) -> Response:  # sync, returns its own response
    return PlainTextResponse(f"hello {request.query_params['name']}")


async def the_db(db: Annotated[dict[str, Any], Depends(get_db)]) -> dict[str, Any]:
    return db


async def fan_out(request: Request) -> Response:  # not decorated: uses the scope
    scope = request_scope(request)
    first = await scope.call(the_db)
    second = await scope.call(the_db)
    return PlainTextResponse(f"same db: {first is second}")


def make_app(*routes: Any, middleware: bool = True) -> Starlette:
    """An app with the middleware (and the recorder inside it) and the lifespan."""
    container = Container()
    stack = (
        [Middleware(AnydependsMiddleware, container=container)] if middleware else []
    )
    return Starlette(
        routes=list(routes) or [Route("/items/{item_id:int}", read_item)],
        middleware=[*stack, Middleware(RecordSends)],
        lifespan=lifespan(container),
    )


@asynccontextmanager
async def client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client for *app*, with the app's lifespan around it."""
    LOG.clear()
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        yield client


async def test_one_scope_per_request() -> None:
    """Each request gets one scope: one db, torn down after the response is sent.

    Path parameters are values by name (``item_id``, converted by the route), and
    the ``Request`` is injected by type.
    """
    async with client_for(make_app()) as client:
        response = await client.get("/items/7", headers={"x-user": "ada"})
        assert response.json() == {"item": 7, "user": "ada", "path": "/items/7"}
        assert LOG == ["db: open", "handler", "sent 200", "db: commit"]
        LOG.clear()
        await client.get("/items/8", headers={"x-user": "bob"})
        assert LOG == ["db: open", "handler", "sent 200", "db: commit"]


async def test_answered_exception_reaches_teardown() -> None:
    """An ``HTTPException`` that Starlette answers is thrown into the teardown."""
    async with client_for(make_app()) as client:
        response = await client.get("/items/7")
        assert (response.status_code, response.text) == (401, "who are you?")
        assert LOG == ["db: open", "sent 401", "db: rollback HTTPException"]


async def test_unhandled_exception_reaches_teardown() -> None:
    """An error nobody handles: the teardown sees it, then the server does."""
    async with client_for(make_app()) as client:
        with pytest.raises(ValueError, match="item 0 is cursed"):
            await client.get("/items/0", headers={"x-user": "ada"})
        assert LOG[-1] == "db: rollback ValueError"


async def test_responses_and_sync_handlers() -> None:
    """A handler may be sync and may return a ``Response``, sent as it is."""
    app = make_app(Route("/hello", plain_text), Route("/fan-out", fan_out))
    async with client_for(app) as client:
        hello = await client.get("/hello", params={"name": "ada"})
        assert (hello.text, hello.headers["content-type"]) == (
            "hello ada",
            "text/plain; charset=utf-8",
        )
        assert (await client.get("/fan-out")).text == "same db: True"


async def test_mounted_routes_and_their_path_parameters() -> None:
    """Path parameters of an enclosing ``Mount`` are values too."""

    @inject
    async def tenant_item(tenant: str, item_id: int) -> list[Any]:
        return [tenant, item_id]

    mount = Mount("/t/{tenant}", routes=[Route("/items/{item_id:int}", tenant_item)])
    async with client_for(make_app(mount)) as client:
        assert (await client.get("/t/acme/items/3")).json() == ["acme", 3]


def failing_pair(second: type[Exception]) -> Any:
    """A handler whose two dependencies both fail, the 403 one first.

    The 403 one raises once the other is running, in a shield that cancellation
    cannot stop; that one raises when the first has: both really fail at once.
    """
    entered, raised = anyio.Event(), anyio.Event()

    async def forbidden() -> None:
        await entered.wait()
        raised.set()
        raise HTTPException(403, "forbidden")

    async def also_failing() -> None:
        with anyio.CancelScope(shield=True):
            entered.set()
            await raised.wait()
        raise second(401, "unauthorized")

    @inject  # defaults, not Annotated: these annotations could not be evaluated
    async def handler(a: None = Depends(forbidden), b: None = Depends(also_failing)):
        raise AssertionError("not reached")

    return handler


async def test_several_http_exceptions_answer_the_first() -> None:
    """Concurrent ``HTTPException`` failures: Starlette answers the first one."""
    app = make_app(Route("/both", failing_pair(HTTPException)))
    async with client_for(app) as client:
        response = await client.get("/both")
        assert (response.status_code, response.text) == (403, "forbidden")


async def test_mixed_failures_stay_a_group() -> None:
    """When one failure is not an ``HTTPException``, nothing is hidden."""

    class Oops(Exception):
        pass

    app = make_app(Route("/both", failing_pair(Oops)))
    async with client_for(app) as client:
        with pytest.raises(ExceptionGroup) as group:
            await client.get("/both")
        kinds = {type(exc) for exc in group.value.exceptions}
        assert kinds == {HTTPException, Oops}


async def test_without_the_middleware() -> None:
    """An ``@inject`` endpoint without the middleware says what to add."""
    async with client_for(make_app(middleware=False)) as client:
        with pytest.raises(UsageError, match="this request has no anydepends scope"):
            await client.get("/items/1")


async def test_container_not_entered() -> None:
    """The middleware without the lifespan says how to enter the container."""
    app = make_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        with pytest.raises(UsageError, match=r"lifespan=lifespan\(container\)") as e:
            await client.get("/items/1")
    assert "cannot open a scope for this request" in str(e.value)


async def test_lifespan_checks_graphs_at_startup() -> None:
    """A broken graph, or a value that no path parameter gives, fails at startup."""

    @inject
    async def needs_user_id(user_id: int) -> None:
        pass

    app = make_app(Route("/users/{id}", needs_user_id))
    with pytest.raises(DeclarationError) as error:
        async with app.router.lifespan_context(app):
            pass
    message = str(error.value)
    assert message.startswith(
        "the route '/users/{id}' has no path parameter 'user_id', which"
    )
    assert "  parameter: user_id\n" in message
    assert "read it from the Request" in message

    @inject
    async def broken(x: Annotated[int, Depends("nope")]) -> None:
        pass

    app = make_app(Route("/broken", broken))
    with pytest.raises(DeclarationError, match="'nope' is not callable"):
        async with app.router.lifespan_context(app):
            pass


async def test_check_routes_ignores_other_routes() -> None:
    """Plain endpoints and WebSocket routes are not anydepends' business."""
    async with Container() as container:
        check_routes([Route("/plain", fan_out), WebSocketRoute("/ws", talk)], container)


async def talk(websocket: WebSocket) -> None:
    """A WebSocket endpoint that resolves a dependable in its connection's scope."""

    def greeting(ws: WebSocket) -> str:
        return f"hello {ws.query_params['name']}"

    await websocket.accept()
    await websocket.send_text(await request_scope(websocket).call(greeting))
    await websocket.close()


async def test_websocket_connection_scope() -> None:
    """A WebSocket connection gets a scope too, with the ``WebSocket`` by type."""
    app = make_app(WebSocketRoute("/ws", talk))
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("not reached")

    async def send(message: Message) -> None:
        sent.append(message)

    connection: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "server": ("app", 80),
        "path": "/ws",
        "root_path": "",
        "query_string": b"name=ada",
        "headers": [],
        "subprotocols": [],
    }
    async with app.router.lifespan_context(app):
        await app(connection, receive, send)
    assert [m["type"] for m in sent] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert sent[1]["text"] == "hello ada"


def test_importing_anydepends_does_not_import_starlette() -> None:
    """Starlette is an optional extra: only ``anydepends.starlette`` imports it."""
    code = (
        "import sys, anydepends, anydepends.testing\n"
        "print('starlette' in sys.modules)\n"
        "import anydepends.starlette\n"
        "print('starlette' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True"]
