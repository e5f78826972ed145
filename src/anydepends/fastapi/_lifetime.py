"""Lifetimes: which container serves a request, the request's scope, and the function
scope held open until FastAPI has made the response.

The request scope is opened by a FastAPI ``yield`` dependency of the bridge, so
FastAPI's own request stack enters it, throws the endpoint's exception into it and
closes it after the response is sent and the background tasks ran, exactly as it does
for its own ``yield`` dependencies.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast
from weakref import WeakKeyDictionary

import anyio
from anyio import CancelScope
from anyio.abc import TaskGroup
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .._container import Container
from .._errors import UsageError
from .._plan import Plan
from .._scope import Scope

__all__ = [
    "FunctionLifetime",
    "activate",
    "clone",
    "function_lifetime",
    "is_active_clone",
    "scope_dependency",
]

# Containers entered by ``lifespan()`` in place of the user's one (which a Container
# allows only once), while that lifespan runs: user container -> the entered clone.
_ACTIVE: WeakKeyDictionary[Container, Container] = WeakKeyDictionary()


def clone(container: Container) -> Container:
    """A new container configured like *container*.

    Not its overrides: every plan the route class runs gets the full override set
    explicitly (``compile(overrides=...)``), so they are read at request time.
    """
    own = (Container, Scope)
    return Container(
        sync_to_thread=container.sync_to_thread,
        sequential=container.sequential,
        context_types=[t for t in container.context_types if t not in own],
        dependencies=container.dependencies,
    )


@asynccontextmanager
async def activate(
    container: Container, replacement: Container
) -> AsyncGenerator[None]:
    """Serve *container*'s routes from the entered *replacement* meanwhile."""
    _ACTIVE[container] = replacement
    try:
        yield
    finally:
        if _ACTIVE.get(container) is replacement:
            del _ACTIVE[container]


def is_active_clone(container: Container, target: Container) -> bool:
    """Whether *target* stands in for *container* for a whole lifespan."""
    return _ACTIVE.get(container) is target


@asynccontextmanager
async def request_scope(
    container: Container, context: Mapping[type, Any]
) -> AsyncGenerator[Scope]:
    """One request's scope: in the entered container, else in a fresh one.

    Without the app's lifespan (``TestClient(app)`` without ``with``), the request
    gets a container of its own, entered for this request only; ``scope="app"``
    dependencies are refused there (see the route's bridge).
    """
    active = _ACTIVE.get(container, container)
    scope = active.scope(context=context)
    try:
        await scope.__aenter__()
    except UsageError:  # not entered (or closed): a lifetime for this request only
        shadow = clone(container)
        async with shadow, shadow.scope(context=context) as own:
            yield own
        return
    try:
        yield scope
    except BaseException as exc:
        await scope.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    await scope.__aexit__(None, None, None)


def scope_dependency(
    container: Container, context_types: frozenset[type]
) -> Callable[..., AsyncIterator[Scope]]:
    """The bridge's FastAPI dependency that opens the request's scope.

    It asks FastAPI for the request objects the plan injects (the same ``Response``
    and ``BackgroundTasks`` objects FastAPI merges into the response), and only for
    those: FastAPI creates a ``BackgroundTasks`` only when something asks for one.
    """
    wants_response = Response in context_types
    wants_tasks = BackgroundTasks in context_types
    params = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
    ]
    if wants_response:
        params.append(
            inspect.Parameter(
                "response", inspect.Parameter.KEYWORD_ONLY, annotation=Response
            )
        )
    if wants_tasks:
        params.append(
            inspect.Parameter(
                "background_tasks",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=BackgroundTasks,
            )
        )

    async def open_scope(**objects: Any) -> AsyncIterator[Scope]:
        request = objects["request"]
        context: dict[type, Any] = {Request: request, HTTPConnection: request}
        if wants_response:
            context[Response] = objects["response"]
        if wants_tasks:
            context[BackgroundTasks] = objects["background_tasks"]
        async with request_scope(container, context) as scope:
            yield scope

    open_scope.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return open_scope


class FunctionLifetime:
    """Holds one call's function scope open until FastAPI has made the response.

    FastAPI tears ``Depends(scope="function")`` dependencies down after the endpoint
    returned *and* the response was serialized. anydepends tears them down when the
    call returns. So the call runs in a task of this object's task group (opened by a
    function-scoped FastAPI dependency), its root hands the endpoint's result over and
    waits; when FastAPI leaves its function stack, the root returns (or raises what
    FastAPI saw) and anydepends tears the function scope down.
    """

    __slots__ = (
        "_done",
        "_error",
        "_final",
        "_has_result",
        "_release",
        "_result",
        "_result_ready",
        "_started",
        "_tg",
        "_thrown",
    )

    def __init__(self, tg: TaskGroup) -> None:
        self._tg = tg
        self._started = False
        self._result_ready = anyio.Event()
        self._release = anyio.Event()
        self._done = anyio.Event()
        self._has_result = False
        self._result: Any = None
        self._error: BaseException | None = None  # the call failed before a result
        self._thrown: BaseException | None = None  # what FastAPI saw afterwards
        self._final: BaseException | None = None  # what the call raised at the end

    async def run(self, scope: Scope, plan: Plan[Any], values: dict[str, Any]) -> Any:
        """Start the call; return the endpoint's result once it has one."""
        self._started = True
        self._tg.start_soon(self._call, scope, plan, values)
        await self._result_ready.wait()
        if not self._has_result:
            assert self._error is not None
            raise self._error
        return self._result

    async def _call(
        self, scope: Scope, plan: Plan[Any], values: dict[str, Any]
    ) -> None:
        # call_in runs a plan as call does (its annotation says callable only).
        root = cast("Callable[..., Any]", plan)
        try:
            await scope.call_in({FunctionLifetime: self}, root, **values)
        except BaseException as exc:
            if self._has_result:
                self._final = exc
            else:
                self._error = exc
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
        finally:
            self._result_ready.set()
            self._done.set()

    async def hand_over(self, result: Any) -> None:
        """In the call's root: pass the result on, wait for FastAPI to be done."""
        self._result = result
        self._has_result = True
        self._result_ready.set()
        await self._release.wait()
        if self._thrown is not None:
            raise self._thrown

    async def finish(self, exc: BaseException | None) -> BaseException | None:
        """FastAPI left its function stack (with *exc*): let the call end.

        Returns what the call finally raised (its teardown may replace *exc*).
        """
        if not self._started:
            return None
        self._thrown = exc
        self._release.set()
        with CancelScope(shield=True):
            await self._done.wait()
        return self._final


async def function_lifetime() -> AsyncIterator[FunctionLifetime]:
    """The bridge's function-scoped FastAPI dependency (see :class:`FunctionLifetime`).

    Exceptions are raised after the task group is closed: one propagating through it
    would come out wrapped in an exception group.
    """
    outcome: BaseException | None = None
    async with anyio.create_task_group() as tg:
        lifetime = FunctionLifetime(tg)
        try:
            yield lifetime
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                tg.cancel_scope.cancel()
                await lifetime.finish(exc)
                outcome = exc
            else:
                final = await lifetime.finish(exc)
                outcome = exc if final is None else final
        else:
            outcome = await lifetime.finish(None)
    if outcome is not None:
        raise outcome
