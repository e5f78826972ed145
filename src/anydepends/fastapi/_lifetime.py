"""Which container serves a route's requests.

The user's container when it is entered; while a ``lifespan()`` run that could not
enter it (a container is entered once) is active, the clone it entered instead; and
when none is (no lifespan ran, as in ``TestClient(app)`` without ``with``), a clone
entered for one request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary

from .. import Container, Scope, UsageError

__all__ = [
    "activate",
    "active",
    "clone",
    "is_active_clone",
    "is_open",
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


def active(container: Container) -> Container:
    """The container serving *container*'s routes now: itself, or the clone a
    running ``lifespan()`` entered in its place."""
    return _ACTIVE.get(container, container)


async def is_open(container: Container) -> bool:
    """Whether *container* is entered (and not closed)."""
    try:
        async with container.scope():
            return True
    except UsageError:
        return False


def is_active_clone(container: Container, target: Container) -> bool:
    """Whether *target* stands in for *container* for a whole lifespan."""
    return _ACTIVE.get(container) is target
