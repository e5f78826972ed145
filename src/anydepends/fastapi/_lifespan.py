"""``lifespan(container)``: the container's lifetime is the FastAPI app's."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from .. import Container, UsageError
from ._lifetime import activate, clone, is_open

__all__ = ["lifespan"]

AppLifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def lifespan(
    container: Container, app_lifespan: Callable[[Any], Any] | None = None
) -> AppLifespan:
    """A FastAPI ``lifespan`` that enters *container* while the app runs.

    ``FastAPI(lifespan=lifespan(container))``; with a lifespan of your own, pass it
    along: ``lifespan(container, my_lifespan)`` enters the container first, so your
    startup code can use it and it closes after your shutdown code. Whatever your
    lifespan yields (FastAPI's lifespan state) is passed on.

    A container is entered once. When the app's lifespan runs again (a second
    ``with TestClient(app)``), the routes are served for that run by a fresh
    container configured like *container* (same settings, context types,
    dependencies and overrides), entered and closed with the lifespan.
    """
    wrapped = _as_context_manager(app_lifespan) if app_lifespan is not None else None

    @asynccontextmanager
    async def run(app: Any) -> AsyncGenerator[Mapping[str, Any] | None]:
        async with AsyncExitStack() as stack:
            await _enter(container, stack)
            if wrapped is None:
                yield None
            else:
                async with wrapped(app) as state:
                    yield state

    return run


async def _enter(container: Container, stack: AsyncExitStack) -> None:
    try:
        await stack.enter_async_context(container)
    except UsageError:  # entered before: open now, or closed after an earlier run
        if await is_open(container):
            return
        replacement = clone(container)
        await stack.enter_async_context(replacement)
        await stack.enter_async_context(activate(container, replacement))


def _as_context_manager(app_lifespan: Callable[[Any], Any]) -> AppLifespan:
    """FastAPI accepts an async generator function as a lifespan too."""
    if inspect.isasyncgenfunction(app_lifespan):
        return asynccontextmanager(app_lifespan)
    return app_lifespan
