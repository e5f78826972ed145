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
from typing import Any

from ._container import Container

__all__ = ["Spy", "override_many", "reset_app_scope"]


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
