"""Scope: one request's lifetime, its ``use_cache`` memo and its teardowns."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from ._call import run
from ._errors import UsageError, scope_closed_during_call
from ._lazymemo import Shared, share_lone
from ._plan import Plan
from ._state import CallState
from ._teardown import close_clean, finish_list, teardown

if TYPE_CHECKING:
    from ._container import Container
    from ._plancache import Entry

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
        "_context",
        "_exits",
        "_extra",
        "_memo",
        "_state",
        "container",
        "host",
        "level",
        "lone",
        "owned",
        "stash",
    )
    host: object  # set by __aenter__
    level: object  # set by __aenter__

    def __init__(
        self, container: Container, context: Mapping[type, Any] | None = None
    ) -> None:
        self.container = container
        self._memo: dict[Any, Any] = {}
        self._exits: list[Any] = []
        self._extra = context
        self._context: dict[type, Any] | None = None  # built on first use
        # host, level (set by __aenter__, read only by calls in the open scope):
        # where request-scoped generators may be set up in place (see _invoke), the
        # task that entered the scope, at the cancel-scope level it was entered at.
        self.owned = 0
        # The memo, lazily (_lazymemo): the state of the one call in progress
        # while it has been alone in the scope since it started (None: no call;
        # SHARED: calls overlapped), and what such a call left unwritten (keys,
        # values), written into the memo when another call starts.
        self.lone: CallState | Shared | None = None
        self.stash: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
        self._state = _NEW

    async def __aenter__(self) -> Scope:
        if self._state != _NEW:
            msg = "this scope was already entered; a Scope is entered once"
            raise UsageError(msg, hint="open a new one with container.scope()")
        container = self.container
        rt = container._runtime
        if not rt.open:  # open exactly while the container is
            container._check_open()
        self.host, self.level = rt.task_and_mark()
        self._state = _OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = _CLOSED
        exits = self._exits
        if exits:
            if exc is None and not self.owned:
                outcome = close_clean(exits)
                final = None if outcome is None else await finish_list(exits, outcome)
                outcome = None
            else:
                final = await teardown(exits, exc)
        else:
            final = None
        self._memo.clear()
        self.stash = None
        if final is not None and final is not exc:
            exc = None
            try:
                raise final
            finally:
                # A frame the exception's traceback reaches keeps no reference to
                # it: else the cycle keeps all it reaches alive until a collection.
                final = None

    def context(self) -> dict[type, Any]:
        """The objects injected by type into calls in this scope."""
        found = self._context
        if found is None:
            found = self._context = self.container._scope_context(self, self._extra)
        return found

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
        # _run written out (the common path): a waiting call keeps one coroutine
        # frame fewer.
        state = self._begin(fn, values)
        try:
            return await run(state)
        finally:
            if self.lone is state:
                self.lone = None
            if self._state == _CLOSED:
                await self._closed_during(fn)

    async def call_in(
        self, context: Mapping[type, Any], fn: Callable[..., Any], /, **values: Any
    ) -> Any:
        """Like :meth:`call`, with extra *context* objects for this one call.

        They are added to (and override) the scope's own context objects. Values the
        scope memoises are shared by later calls: a request-scoped dependency that
        took a context object keeps the one of the call that computed it.
        """
        self.container._check_context(context)
        state = self._begin(fn, values, {**self.context(), **context})
        return await self._run(state, fn)

    def _begin(
        self,
        fn: Callable[..., Any] | Plan[Any],
        values: dict[str, Any],
        context: dict[type, Any] | None = None,
        entry: Entry | None = None,
    ) -> CallState:
        """A call of *fn* in this scope, registered with it, not started yet."""
        if self._state != _OPEN or not self.container._runtime.open:
            self._not_open(fn)
        container = self.container
        if entry is None:
            try:
                entry = container._plans.current.get(fn)
            except TypeError:
                entry = None
            if entry is None:
                entry = container._entry_for(fn)
        runner = entry.held or entry.held_runner()
        if context is None:
            context = (
                (self._context or self.context())
                if runner.uses_context
                else _NO_CONTEXT
            )
        if self.stash is not None:
            self._unstash()
        state = CallState(
            runner,
            values,
            context,
            container._runtime,
            self._memo,
            self._exits,
            self,
        )
        if self.lone is None:
            self.lone = state
        else:
            self._overlap()
        return state

    async def _run(self, state: CallState, fn: object) -> Any:
        """Run a call :meth:`_begin` made (:meth:`call`, written out, is the same)."""
        try:
            return await run(state)
        finally:
            if self.lone is state:
                self.lone = None
            if self._state == _CLOSED:
                await self._closed_during(fn)

    def _overlap(self) -> None:
        """Another call is in progress: if it was alone in the scope until now, it
        writes what it computed and claims what it waits in (_lazymemo)."""
        lone = self.lone
        if type(lone) is CallState:
            share_lone(lone)

    def _unstash(self) -> None:
        """Another call starts: write what a call alone in the scope left stashed."""
        stash = self.stash
        assert stash is not None
        self.stash = None
        self._memo.update(zip(*stash, strict=True))

    async def _closed_during(self, fn: object) -> None:
        """Closed by another task while a call ran: what the call set up since is
        torn down now, never left behind, and the call fails."""
        if self._exits:
            final = await teardown(self._exits, None)
            if final is not None:
                raise final
        raise scope_closed_during_call(_name(fn))

    def _not_open(self, fn: object) -> None:
        if self._state == _OPEN:
            msg = "scope.call() on a scope whose container is closed"
        else:
            state = "not entered yet" if self._state == _NEW else "closed"
            msg = f"scope.call() on a scope that is {state}"
        raise UsageError(
            msg,
            callable=_name(fn),
            hint="use `async with container.scope() as scope:` and call inside it",
        )


_NO_CONTEXT: Final[dict[type, Any]] = {}  # for plans that inject nothing by type


def _name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))
