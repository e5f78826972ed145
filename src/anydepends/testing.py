"""Helpers for testing code that uses anydepends: overrides, spies and resets.

Example::

    async with Container() as container:
        with override_many(container, {get_db: fake_db, get_clock: lambda: FIXED}):
            spy = Spy(send_mail)
            with container.override(send_mail, spy):
                await container.call(handler, user_id=1)
            assert spy.calls == [{"to": "a@example.com"}]
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Annotated, Any

from ._container import Container
from ._introspect import qualname
from ._markers import Depends
from ._scope import Scope

__all__ = ["Spy", "dependency_fixture", "override_many", "reset_app_scope"]


@contextlib.contextmanager
def override_many(
    container: Container, overrides: Mapping[Callable[..., Any], Callable[..., Any]]
) -> Generator[None]:
    """Set several overrides for a ``with`` block; restore the previous ones after.

    Nestable: an inner block's overrides win inside it and the outer ones come back
    on exit.
    """
    with contextlib.ExitStack() as stack:
        for original, replacement in overrides.items():
            stack.enter_context(container.override(original, replacement))
        yield


class Spy:
    """A stand-in that records the keyword arguments of each call and delegates.

    It has the wrapped callable's signature and kind (async, sync, generator), so it
    can be used as an override: ``container.override(send_mail, Spy(send_mail))``.

    Attributes:
        calls: The keyword arguments of each call, in order.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls: list[dict[str, Any]] = []
        self.wrapper: Callable[..., Any] = functools.wraps(fn)(
            _recording(fn, self.calls)
        )

    def __call__(self, **kwargs: Any) -> Any:
        return self.wrapper(**kwargs)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self.wrapper

    @property
    def call_count(self) -> int:
        """How many times it was called."""
        return len(self.calls)


def _recording(
    fn: Callable[..., Any], calls: list[dict[str, Any]]
) -> Callable[..., Any]:
    """A callable of *fn*'s kind that appends its keyword arguments to *calls*."""
    if inspect.isasyncgenfunction(fn):

        async def async_gen(**kwargs: Any) -> AsyncIterator[Any]:
            calls.append(kwargs)
            # The context manager throws our caller's exception into *fn*.
            async with contextlib.asynccontextmanager(fn)(**kwargs) as value:
                yield value

        return async_gen
    if inspect.isgeneratorfunction(fn):

        def sync_gen(**kwargs: Any) -> Iterator[Any]:
            calls.append(kwargs)
            with contextlib.contextmanager(fn)(**kwargs) as value:
                yield value

        return sync_gen
    if inspect.iscoroutinefunction(fn):

        async def coroutine(**kwargs: Any) -> Any:
            calls.append(kwargs)
            return await fn(**kwargs)

        return coroutine

    def function(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return fn(**kwargs)

    return function


async def reset_app_scope(container: Container) -> None:
    """Tear down app-scoped dependencies now and forget their values.

    The next call creates them again, under the overrides in force then: overrides
    do not reach app-scoped values that already exist.
    """
    await container._reset_app()


def dependency_fixture(dependable: Callable[..., Any], /, **values: Any) -> Any:
    """A pytest fixture whose value is *dependable*, resolved in the test's scope.

    Assign it in a test module or ``conftest.py``; the attribute's name is the
    fixture's name: ``db = dependency_fixture(get_db)``. The value comes from the
    ``anydepends_scope`` fixture of the anydepends pytest plugin, as if a
    dependable of the test had ``Depends(dependable)``: the same cached instance
    that the test's own ``anydepends_scope.call(handler)`` receives, set up under
    the test's overrides and torn down when the scope closes, after the test.
    *values* are the values its graph needs, by name.
    """
    import pytest

    async def resolve(value: Any) -> Any:
        return value

    # Set after definition: an annotation naming the local *dependable* cannot be
    # a string (this module's annotations are strings, evaluated in its globals).
    resolve.__annotations__ = {"value": Annotated[Any, Depends(dependable)]}
    # Named for messages: "missing value(s) for dependency_fixture(get_user): ...".
    name = getattr(dependable, "__qualname__", None) or qualname(dependable)
    resolve.__qualname__ = f"dependency_fixture({name})"
    resolve.__module__ = getattr(dependable, "__module__", None) or __name__

    async def fixture(anydepends_scope: Scope) -> Any:
        return await anydepends_scope.call(resolve, **values)

    return pytest.fixture(fixture)
