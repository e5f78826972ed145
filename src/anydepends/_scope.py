"""Scope: one request's lifetime, its ``use_cache`` memo and its teardowns."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from ._errors import UsageError
from ._lowlevel import cancel_scope_marker, current_task
from ._plan import Plan
from ._scheduler import Run, check_inputs
from ._teardown import Exit, teardown

if TYPE_CHECKING:
    from ._container import Container

__all__ = ["Scope"]

T = TypeVar("T")

_NEW: Final = 0
_OPEN: Final = 1
_CLOSED: Final = 2


class Scope:
    """One request lifetime: the ``use_cache`` memo and request-scoped teardowns.

    Get one from :meth:`Container.scope` and enter it with ``async with``; every
    :meth:`call` made in it shares one memo, and request-scoped ``yield`` dependencies
    are torn down, in reverse order, when it exits. A :class:`Scope` parameter is
    injected by type (so a handler can fan out more calls in its own scope).
    """

    __slots__ = (
        "__weakref__",
        "_baseline",
        "_context",
        "_exits",
        "_host",
        "_memo",
        "_state",
        "container",
    )

    def __init__(
        self, container: Container, context: Mapping[type, Any] | None = None
    ) -> None:
        self.container = container
        self._memo: dict[Any, Any] = {}
        self._exits: list[Exit] = []
        self._context: dict[type, Any] = {type(container): container, Scope: self}
        if context:
            self._context.update(context)
        self._host: object = None
        self._baseline: object = None
        self._state = _NEW

    async def __aenter__(self) -> Scope:
        if self._state != _NEW:
            msg = "this scope was already entered; a Scope is entered once"
            raise UsageError(msg, hint="open a new one with container.scope()")
        self.container._check_open()
        self._host = current_task()
        self._baseline = cancel_scope_marker()
        self._state = _OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = _CLOSED
        final = await teardown(exc, self._baseline, self._exits)
        self._memo.clear()
        if final is not None and final is not exc:
            raise final

    @overload
    async def call(self, fn: Plan[T], /, **values: Any) -> T: ...
    @overload
    async def call(
        self, fn: Callable[..., Coroutine[Any, Any, T]], /, **values: Any
    ) -> T: ...
    @overload
    async def call(self, fn: Callable[..., T], /, **values: Any) -> T: ...
    async def call(self, fn: Callable[..., Any] | Plan[Any], /, **values: Any) -> Any:
        """Resolve *fn*'s dependencies in this scope, call it and return its result.

        Function-scoped ``yield`` dependencies are torn down before this returns;
        request-scoped ones when the scope exits.

        Raises:
            MissingValuesError: before anything runs, if required values are missing.
            UsageError: if the scope is not open.
        """
        return await self._call(fn, values, self._context)

    async def _call(
        self,
        fn: Callable[..., Any] | Plan[Any],
        values: dict[str, Any],
        context: dict[type, Any],
    ) -> Any:
        if self._state != _OPEN or self.container._state != _OPEN:
            if self._state == _OPEN:
                msg = "scope.call() on a scope whose container is closed"
            else:
                state = "not entered yet" if self._state == _NEW else "closed"
                msg = f"scope.call() on a scope that is {state}"
            raise UsageError(
                msg,
                callable=getattr(fn, "__qualname__", repr(fn)),
                hint="use `async with container.scope() as scope:` and call inside it",
            )
        plan = self.container._plan_for(fn)
        check_inputs(plan, values, context)
        run = Run(plan, self, values, current_task() is self._host)
        run.context = context
        try:
            result = await _run_and_teardown(run, run.exits)
        finally:
            if self._closed() and self._exits:
                await self._late_teardown(run)
        if self._closed():
            msg = "the scope was closed while this call was running"
            raise UsageError(
                msg,
                callable=getattr(fn, "__qualname__", repr(fn)),
                hint="close a scope only after the calls made in it have returned",
            )
        return result

    async def call_in(
        self, context: Mapping[type, Any], fn: Callable[..., Any], /, **values: Any
    ) -> Any:
        """Like :meth:`call`, with extra *context* objects for this one call.

        They are added to (and override) the scope's own context objects. Values the
        scope memoises are shared by later calls: a request-scoped dependency that
        took a context object keeps the one of the call that computed it.
        """
        self.container._check_context(context)
        return await self._call(fn, values, {**self._context, **context})

    def _closed(self) -> bool:
        """Whether the scope has exited (another task may close it during a call)."""
        return self._state == _CLOSED

    async def _late_teardown(self, run: Run) -> None:
        """Tear down what a call set up in this scope after the scope had closed."""
        final = await teardown(None, run.start_marker, self._exits)
        if final is not None:
            raise final


async def _run_and_teardown(run: Run, *exits: list[Exit]) -> Any:
    """Execute *run*, then tear down each of *exits* in turn, each in reverse."""
    try:
        result = await run.execute()
    except BaseException as exc:
        final = await teardown(exc, run.start_marker, *exits)
        run.leave(final)
        if final is exc or final is None:
            raise
        raise final from exc
    final = await teardown(None, run.start_marker, *exits)
    run.leave(final)
    if final is not None:
        raise final
    return result
