# ruff: noqa: I002  (annotations must be real objects: the apps are built in closures)
"""What the route class changes on purpose: independent dependencies overlap, and
several failures at once still answer as FastAPI would for the first of them."""

import threading
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI, HTTPException, WebSocket

from anydepends import Container, DeclarationError
from anydepends.fastapi import ConcurrentRoute

from ..conformance.harness import TestClient
from .harness import Request, RouteClass, app_with, route_classes, serve


def make_handshake(route_class: RouteClass) -> FastAPI:
    """Two dependencies that each wait for the other's event."""
    app = app_with(route_class)
    a_ready, b_ready = anyio.Event(), anyio.Event()

    async def a() -> str:
        a_ready.set()
        await b_ready.wait()
        return "a"

    async def b() -> str:
        b_ready.set()
        await a_ready.wait()
        return "b"

    @app.get("/")
    async def both(
        x: Annotated[str, Depends(a)], y: Annotated[str, Depends(b)]
    ) -> list[str]:
        return [x, y]

    return app


async def test_independent_dependencies_overlap() -> None:
    """Plain FastAPI resolves one dependency at a time, so two dependencies waiting
    for each other deadlock (the request never answers: asserted, not timed); the
    route class runs them at once and answers."""
    with anyio.move_on_after(0.5) as waited:
        await serve(make_handshake, None, [Request()])
    assert waited.cancelled_caught
    with anyio.fail_after(10):
        replies = await serve(
            make_handshake, route_classes()["concurrent"], [Request()]
        )
    assert replies[0].body == ["a", "b"]


def make_double_failure(route_class: RouteClass, first: int, second: int) -> FastAPI:
    """Two sync dependencies (threads cannot be cancelled) that both raise, after
    meeting at a barrier: both failures happen, in whatever order."""
    app = app_with(route_class)
    barrier = threading.Barrier(2, timeout=10)

    def fail_first() -> None:
        barrier.wait()
        raise HTTPException(first, "first")

    def fail_second() -> None:
        barrier.wait()
        raise HTTPException(second, "second")

    @app.get("/")
    async def endpoint(
        a: Annotated[None, Depends(fail_first)],
        b: Annotated[None, Depends(fail_second)],
    ) -> str:
        return "unreachable"

    return app


@pytest.mark.parametrize(("first", "second"), [(401, 403), (403, 401)])
async def test_failures_at_once_answer_for_the_first_declared(
    first: int, second: int
) -> None:
    """Both dependencies fail at once (anydepends raises an exception group); the
    response is the first declared dependency's ``HTTPException``, as FastAPI (which
    would never have run the second) answers, never a 500."""
    replies = await serve(
        lambda rc: make_double_failure(rc, first, second),
        route_classes()["concurrent"],
        [Request()],
    )
    assert replies[0].status == first, replies
    assert replies[0].body == {"detail": "first"}


def make_own_group(route_class: RouteClass) -> FastAPI:
    app = app_with(route_class)

    async def grouped() -> None:
        raise ExceptionGroup("2 dependencies failed at once", [ValueError("mine")])

    @app.get("/")
    async def endpoint(x: Annotated[None, Depends(grouped)]) -> str:
        return "unreachable"

    return app


async def test_a_dependencys_own_exception_group_is_not_unwrapped() -> None:
    """Only anydepends' own "failed at once" group is replaced by its first member;
    an exception group a dependency raises itself propagates unchanged, as in plain
    FastAPI (even with the same message)."""
    for route_class in route_classes().values():
        replies = await serve(make_own_group, route_class, [Request()])
        assert replies[0].exc is not None
        assert replies[0].exc[0] == "ExceptionGroup"


def test_websocket_routes_stay_fastapis() -> None:
    """FastAPI never builds WebSocket routes through ``route_class``: in an app
    whose routes are ``ConcurrentRoute``s, ``app.websocket`` endpoints keep
    FastAPI's own resolution and work as before."""
    app = app_with(route_classes()["concurrent"])

    async def greeting() -> str:
        return "hello"

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, text: Annotated[str, Depends(greeting)]) -> None:
        await websocket.accept()
        await websocket.send_text(text)
        await websocket.close()

    with TestClient(app) as http, http.websocket_connect("/ws") as socket:
        assert socket.receive_text() == "hello"


def test_conflicting_value_declarations_fail_at_route_creation() -> None:
    """anydepends fills one value per name: two dependencies declaring the same name
    from different places (a query and a header parameter) are refused when the
    route is created, naming both and the fix."""
    from fastapi import Header

    async def from_query(token: str) -> str:
        return token

    async def from_header(token: Annotated[str, Header()]) -> str:
        return token

    app = app_with(ConcurrentRoute(Container()))
    with pytest.raises(DeclarationError, match="'token' is declared differently") as e:

        @app.get("/")
        async def endpoint(
            a: Annotated[str, Depends(from_query)],
            b: Annotated[str, Depends(from_header)],
        ) -> Any:
            return None

    assert "from_query (query str)" in str(e.value)
    assert "from_header (header str)" in str(e.value)


def test_same_arguments_same_class() -> None:
    """``ConcurrentRoute(container)`` returns one class per container and mode, so
    routers built apart compare equal; the class is an ``APIRoute``."""
    from fastapi.routing import APIRoute

    container = Container()
    assert ConcurrentRoute(container) is ConcurrentRoute(container)
    assert ConcurrentRoute(container, sequential=True) is not ConcurrentRoute(container)
    assert ConcurrentRoute(Container()) is not ConcurrentRoute(container)
    assert issubclass(ConcurrentRoute(container), APIRoute)
    assert ConcurrentRoute(container).__name__ == "ConcurrentRoute"
