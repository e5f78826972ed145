"""``ConcurrentRoute(container)``: an ``APIRoute`` whose dependencies anydepends runs.

FastAPI analyses the *user's* endpoint as usual, so everything it derives from the
declarations (OpenAPI, the route's ``dependant``, ``body_field``, response model,
name, description, ``route.endpoint``) is FastAPI's own, by construction. Only the
request handler differs: :meth:`get_route_handler` returns FastAPI's handler for a
generated *bridge* endpoint (see ``_bridge``), built by a private, plain ``APIRoute``
with the same response settings, and that handler runs the whole graph through
anydepends: route-level dependencies, those of ``include_router`` and of the app
included, with ``app.dependency_overrides`` read on every request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ClassVar, Final
from weakref import WeakKeyDictionary

import fastapi.routing
from fastapi.routing import APIRoute
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from .. import CallKind, Container
from ._bridge import Variant
from ._declarations import check_fastapi_can_read
from ._held import HeldCall

__all__ = ["ConcurrentRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# Override sets remembered per route (and per inclusion of it); a test suite that
# builds new overrides for every test must not grow memory without bound.
_MAX_VARIANTS: Final = 32

# What FastAPI's handler reads from a route besides the dependant and body field
# (``APIRoute.get_route_handler``): copied from the route (or its inclusion).
_RESPONSE_SETTINGS: Final = (
    "status_code",
    "response_field",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "strict_content_type",
    "stream_item_field",
    "is_json_stream",
)

_CLASSES: WeakKeyDictionary[Container, dict[bool, type[APIRoute]]] = WeakKeyDictionary()


def ConcurrentRoute(
    container: Container, *, sequential: bool = False
) -> type[APIRoute]:
    """An ``APIRoute`` subclass whose dependencies *container* resolves.

    ``APIRouter(route_class=ConcurrentRoute(container))`` (or
    ``app.router.route_class = ...``): FastAPI keeps parsing, validating and
    documenting the request; anydepends runs the endpoint's dependency graph,
    independent dependencies concurrently, in a scope FastAPI closes after the
    response. FastAPI's ``Request``, ``Response``, ``BackgroundTasks``,
    ``HTTPConnection`` and ``SecurityScopes`` are injected by type.

    Args:
        container: The container whose overrides, ``scope="app"`` values and
            settings the routes use. Enter it for the app's lifetime with
            :func:`anydepends.fastapi.lifespan`.
        sequential: Resolve this route's dependencies one at a time, in FastAPI's
            order, in the request's task (for code that relies on a ``ContextVar``
            one dependency sets being visible to its siblings).

    The same arguments return the same class.
    """
    by_mode = _CLASSES.setdefault(container, {})
    cls = by_mode.get(sequential)
    if cls is None:
        container.add_context_types(
            Request, WebSocket, HTTPConnection, Response, BackgroundTasks
        )
        container.add_context_types(HeldCall)
        cls = type(
            "ConcurrentRoute",
            (_ConcurrentRoute,),
            {
                "__module__": "anydepends.fastapi",
                "__qualname__": "ConcurrentRoute",
                "anydepends_container": container,
                "anydepends_sequential": sequential,
            },
        )
        by_mode[sequential] = cls
    return cls


class _ConcurrentRoute(APIRoute):
    """The base of the classes :func:`ConcurrentRoute` returns."""

    anydepends_container: ClassVar[Container]
    anydepends_sequential: ClassVar[bool]

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        check_fastapi_can_read(endpoint, kwargs.get("dependencies") or ())
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        """FastAPI's handler for the bridge of this route (or of its inclusion)."""
        return _dispatcher(self, _including(self), super().get_route_handler)


def _including(route: APIRoute) -> Any:
    """The inclusion of *route* FastAPI is building a handler for, else *route*.

    FastAPI (0.137+) builds one handler per ``include_router`` of a router, with the
    combined prefix, ``dependencies`` and response class, calling
    ``get_route_handler`` with that context set (``fastapi.routing``'s own comment:
    "Integrations may wrap dependant.call while constructing the handler").
    """
    var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = None if var is None else var.get()
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route


def _dispatcher(
    route: _ConcurrentRoute, source: Any, native: Callable[[], Handler]
) -> Handler:
    """The request handler: the bridge for the override set each request sees.

    *native* builds FastAPI's own handler for *source*: an endpoint without a single
    dependency (nothing to resolve, nothing to override) keeps it, at no cost.
    """
    container = route.anydepends_container
    sequential = True if route.anydepends_sequential else None
    provider = source.dependency_overrides_provider

    def variant(overrides: dict[Any, Callable[..., Any]]) -> Variant:
        return Variant(
            container=container,
            endpoint=route.endpoint,
            dependencies=tuple(source.dependencies),
            overrides=overrides,
            sequential=sequential,
            path=source.path,
        )

    def build(overrides: dict[Any, Callable[..., Any]]) -> Handler:
        return _fastapi_handler(route, source, variant(overrides).function)

    # The declared graph (FastAPI's OpenAPI never shows overrides): overrides the
    # container has now are mapped to themselves.
    declared = variant({original: original for original in container.overrides})
    root = declared.plan.root_node
    if len(declared.plan.nodes) == 1 and (
        root.kind is not CallKind.SYNC or root.thread
    ):
        return native()
    base = _fastapi_handler(route, source, declared.function)
    variants: OrderedDict[Any, Handler] = OrderedDict()

    async def handler(request: Request) -> Response:
        app_overrides: dict[Any, Any] | None = (
            None if provider is None else provider.dependency_overrides
        )
        own = container.overrides
        if not app_overrides and not own:
            return await base(request)
        key = (_identity(own), _identity(app_overrides or {}))
        found = variants.get(key)
        if found is None:
            found = build({**own, **(app_overrides or {})})
            variants[key] = found
            if len(variants) > _MAX_VARIANTS:
                variants.popitem(last=False)
        else:
            variants.move_to_end(key)
        return await found(request)

    return handler


def _identity(overrides: Mapping[Any, Any]) -> frozenset[tuple[Any, int]]:
    """An override set by the replacements' identities (they need not be hashable)."""
    return frozenset(
        (original, id(replacement)) for original, replacement in overrides.items()
    )


def _fastapi_handler(
    route: APIRoute, source: Any, bridge: Callable[..., Any]
) -> Handler:
    """FastAPI's request handler for *bridge* with *source*'s response settings."""
    helper = APIRoute(
        source.path,
        bridge,
        methods=list(source.methods),
        name=source.name,
        response_class=source.response_class,
        include_in_schema=False,
        form_limits=route.form_limits,
    )
    for name in _RESPONSE_SETTINGS:
        setattr(helper, name, getattr(source, name))
    # Every dependency runs in the plan, where the overrides are already applied.
    helper.dependency_overrides_provider = None
    return helper.get_route_handler()
