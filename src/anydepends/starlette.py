"""Starlette with anydepends: one :class:`~anydepends.Scope` per request.

Three pieces (``pip install anydepends[starlette]``)::

    from anydepends.starlette import AnydependsMiddleware, inject, lifespan

    @inject
    async def read_item(item_id: int, user: Annotated[str, Depends(get_user)]):
        return {"item": item_id, "user": user}

    container = Container()
    app = Starlette(
        routes=[Route("/items/{item_id:int}", read_item)],
        middleware=[Middleware(AnydependsMiddleware, container=container)],
        lifespan=lifespan(container),
    )

- :class:`AnydependsMiddleware` opens a scope of the container for each HTTP request
  and WebSocket connection, with the ``Request`` (or ``WebSocket``) injected by
  type, and closes it once the response is sent, like FastAPI's request scope.
- :func:`inject` makes an endpoint out of a handler whose parameters are
  dependencies and path parameters (values by name).
- :func:`lifespan` enters the container for the app's lifetime and checks every
  ``@inject`` endpoint's graph at startup (:func:`check_routes`).

This module imports Starlette; importing ``anydepends`` does not import it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, cast

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope
from starlette.websockets import WebSocket

from ._container import Container
from ._errors import DeclarationError, UsageError
from ._scope import Scope

__all__ = [
    "AnydependsMiddleware",
    "check_routes",
    "inject",
    "lifespan",
    "request_scope",
]

_KEY: Final = "anydepends.request"  # in the ASGI scope: the connection's _Request
_HANDLER: Final = "__anydepends_handler__"  # on an @inject endpoint: its handler


class _Request:
    """What the middleware shares with the endpoint, through the ASGI scope.

    A mutable holder rather than keys of the ASGI scope dict, so it is the same
    object even for code that copies the scope dict on its way to the endpoint.
    """

    __slots__ = ("error", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        # An exception the endpoint raised that Starlette answered (an
        # HTTPException, or one with an exception handler): the middleware does not
        # see it, but the request-scoped teardowns must, as in FastAPI.
        self.error: BaseException | None = None


class AnydependsMiddleware:
    """Open one scope of *container* per HTTP request and WebSocket connection.

    The connection's ``Request`` (or ``WebSocket``) is injected by type into the
    dependables called in it (the middleware registers both as context types). The
    scope closes after the endpoint has returned and the response is sent; if the
    endpoint raised, the exception is thrown into each request-scoped ``yield``
    dependency, even when Starlette turned it into a response. Get the scope with
    :func:`request_scope`, or let :func:`inject` use it.
    """

    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container
        container.add_context_types(Request, WebSocket)

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)  # lifespan, or unknown
            return
        connection: HTTPConnection
        if kind == "http":
            connection = Request(scope, receive, send)
            context: dict[type, Any] = {Request: connection}
        else:
            connection = WebSocket(scope, receive, send)
            context = {WebSocket: connection}
        request_scope = self.container.scope(context=context)
        try:
            await request_scope.__aenter__()
        except UsageError as exc:  # the container is not open
            msg = f"cannot open a scope for this request: {exc.summary}"
            raise UsageError(
                msg,
                hint="enter the container while the app runs:"
                " Starlette(..., lifespan=lifespan(container))",
            ) from exc
        shared = scope[_KEY] = _Request(request_scope)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            await request_scope.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        error = shared.error
        if error is None:
            await request_scope.__aexit__(None, None, None)
        else:  # already answered: only a different error from a teardown escapes
            await request_scope.__aexit__(type(error), error, error.__traceback__)


def _shared(connection: HTTPConnection) -> _Request:
    shared = connection.scope.get(_KEY)
    if not isinstance(shared, _Request):
        msg = "this request has no anydepends scope"
        raise UsageError(
            msg,
            hint="add the middleware to the app:"
            " Starlette(..., middleware=[Middleware(AnydependsMiddleware,"
            " container=container)])",
        )
    return shared


def request_scope(connection: HTTPConnection) -> Scope:
    """The scope :class:`AnydependsMiddleware` opened for this request.

    For endpoints that resolve dependables themselves:
    ``await request_scope(request).call(handler, user_id=7)``.

    Raises:
        UsageError: if the middleware is not installed.
    """
    return _shared(connection).scope


def inject(handler: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
    """Make a Starlette endpoint of *handler*, resolved in the request's scope.

    *handler*'s parameters are dependencies (``Depends``, ``Security``), objects
    injected by type (the ``Request``) and values by name, taken from the path
    parameters (``/items/{item_id:int}`` gives ``item_id``). It returns a
    ``Response``, or anything else, which is sent as JSON.

    When several dependencies fail at once and every failure is an
    ``HTTPException``, the first one raised is re-raised alone, so that Starlette
    answers with it rather than with a 500 for an exception group.
    """

    async def endpoint(request: Request) -> Response:
        shared = _shared(request)
        try:
            result = await shared.scope.call_in(
                {Request: request}, handler, **request.path_params
            )
        except BaseExceptionGroup as group:
            first = _first_http_exception(group)
            shared.error = group if first is None else first
            if first is None:
                raise
            raise first from group
        except Exception as exc:
            shared.error = exc
            raise
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    # Named like the handler (Starlette names routes after endpoints), but without
    # `__wrapped__`: whoever inspects the endpoint must see `endpoint(request)`.
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        value = getattr(handler, attr, None)
        if value is not None:
            setattr(endpoint, attr, value)
    endpoint.__dict__[_HANDLER] = handler  # for check_routes
    return endpoint


def _first_http_exception(group: BaseExceptionGroup[Any]) -> HTTPException | None:
    """The first leaf if every leaf of *group* is an ``HTTPException``, else None."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        current = stack.pop()
        if isinstance(current, BaseExceptionGroup):
            nested = cast("BaseExceptionGroup[BaseException]", current)
            stack.extend(reversed(nested.exceptions))
        else:
            leaves.append(current)
    if all(isinstance(leaf, HTTPException) for leaf in leaves):
        first = leaves[0]
        assert isinstance(first, HTTPException)
        return first
    return None


def check_routes(routes: Iterable[BaseRoute], container: Container) -> None:
    """Compile the graph of every :func:`inject` endpoint in *routes* (and mounts).

    A broken graph fails here, at startup, not at its first request; so does a
    required value that is not one of the route's path parameters.

    Registers the ``Request`` and ``WebSocket`` context types, as the middleware does
    (which Starlette builds only when the first request or lifespan event arrives).

    Raises:
        DependencyError: for the first endpoint whose graph is broken.
    """
    container.add_context_types(Request, WebSocket)
    _check(routes, container, frozenset())


def _check(
    routes: Iterable[BaseRoute], container: Container, outer: frozenset[str]
) -> None:
    for route in routes:
        if isinstance(route, Mount):
            params = outer | (set(route.param_convertors) - {"path"})
            _check(route.routes, container, params)
        elif isinstance(route, Route):
            handler = getattr(route.endpoint, _HANDLER, None)
            if handler is None:
                continue
            plan = container.compile(handler)
            path_params = outer | set(route.param_convertors)
            for name, where in plan.required_values.items():
                if name not in path_params:
                    msg = (
                        f"the route {route.path!r} has no path parameter {name!r},"
                        f" which {where[0]} needs"
                    )
                    raise DeclarationError(
                        msg,
                        path=where[0].split(" -> "),
                        callable=plan.root_node.name,
                        parameter=name,
                        hint="add it to the route's path, give the parameter a"
                        " default, or read it from the Request",
                    )


def lifespan(
    container: Container,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A Starlette ``lifespan``: *container* is entered while the app runs.

    At startup it checks every :func:`inject` endpoint of the app
    (:func:`check_routes`). With a lifespan of your own, do the same in it:
    ``async with container: check_routes(app.routes, container); yield``.
    """

    @asynccontextmanager
    async def app_lifespan(app: Any) -> AsyncGenerator[None]:
        async with container:
            check_routes(app.routes, container)
            yield

    return app_lifespan
