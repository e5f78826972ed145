"""Teardown of ``yield`` dependencies: exit lists, closing generators, permits.

A completed ``yield`` setup is appended to the exit list of its lifetime (the call, the
:class:`~anydepends.Scope` or the :class:`~anydepends.Container`) as one entry:

- its node, then the generator itself (two list items), for a generator set up in the
  task that will tear it down (the common case, and the cheapest: no object per setup,
  so nothing more for the collector to look at while a request waits);
- an :class:`Exit` for everything else: a sync generator whose halves run in a worker
  thread, a generator holding a ``max_concurrency`` permit, one hosted by a helper task
  (:mod:`._hosting`), and :class:`ScopeExit`, a cancel scope of ours that generators
  whose teardown can wait were set up inside (see :mod:`._codeinfo`).

:func:`teardown` pops a list to the end, so each entry is closed exactly once, in
reverse order of setup completion: every dependency is torn down after everything that
depends on it, and cancel scopes nest exactly as they were entered. The exception being
handled is thrown in at each ``yield``; what a teardown raises is what the next ones see
(FastAPI's exit-stack semantics). Nothing a teardown does stops the others from running.

Shielding: :func:`teardown` first shields every :class:`ScopeExit` scope of the list.
Those are ours, and every generator whose teardown can wait sits inside one, so outer
cancellation cannot reach a waiting teardown, while the generator's own cancel scopes
keep their deadlines. Teardowns that cannot wait need no protection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Coroutine, Generator
from types import AsyncGeneratorType
from typing import TYPE_CHECKING, Any, Final, cast

import anyio
from anyio import CapacityLimiter, to_thread

from ._backend import drive, new_cancel_scope
from ._errors import swallowed, yielded_twice

if TYPE_CHECKING:
    from ._plan import Node

__all__ = [
    "Exit",
    "Permit",
    "ScopeExit",
    "Started",
    "ThreadExit",
    "close_async",
    "close_clean",
    "close_sync",
    "finish_list",
    "teardown",
]


class Permit:
    """One ``max_concurrency`` token, released exactly once."""

    __slots__ = ("borrower", "held", "limiter", "owner")

    def __init__(self, limiter: CapacityLimiter) -> None:
        self.limiter = limiter
        self.borrower = object()
        self.held = False
        self.owner: object = None  # who releases it (an exit entry: at teardown)

    def give_to(self, owner: object) -> None:
        """Hand the token to *owner*; an exit entry releases it after its teardown."""
        self.owner = owner
        if isinstance(owner, Exit):
            owner.permit = self

    async def acquire(self) -> None:
        await self.limiter.acquire_on_behalf_of(self.borrower)
        self.held = True

    def release(self) -> None:
        """Give the token back, if this permit still holds it."""
        if self.held:
            self.held = False
            self.limiter.release_on_behalf_of(self.borrower)


class Exit:
    """An exit-list entry that needs more than stepping a generator in place."""

    __slots__ = ("permit",)

    def __init__(self) -> None:
        self.permit: Permit | None = None

    async def close(self, exc: BaseException | None) -> BaseException | None:
        """Tear down once; return the exception later teardowns must see."""
        try:
            return await self._close(exc)
        finally:
            if self.permit is not None:
                self.permit.release()

    async def _close(self, exc: BaseException | None) -> BaseException | None:
        raise NotImplementedError


class GenExit(Exit):
    """A generator set up in this task that holds a permit until its teardown."""

    __slots__ = ("gen", "node")

    def __init__(self, node: Node, gen: Any, permit: Permit | None) -> None:
        super().__init__()
        self.node = node
        self.gen = gen
        if permit is not None:
            permit.give_to(self)

    async def _close(self, exc: BaseException | None) -> BaseException | None:
        gen: Any = self.gen
        if isinstance(gen, Generator):
            return close_sync(self.node, cast("Generator[Any]", gen), exc)
        return await close_async(self.node, gen, exc)


class ThreadExit(Exit):
    """A sync generator whose halves run in worker threads."""

    __slots__ = ("gen", "node")

    def __init__(self, node: Node, gen: Generator[Any, None, None]) -> None:
        super().__init__()
        self.node = node
        self.gen = gen

    async def _close(self, exc: BaseException | None) -> BaseException | None:
        # Our own wait, so our own shield: nothing of the generator's is open in this
        # task. A fresh limiter per teardown, as FastAPI does: teardowns never wait
        # for the shared thread pool, so they cannot deadlock behind setups.
        with new_cancel_scope(shield=True):
            result: object = await to_thread.run_sync(
                _close_sync_raw, self.gen, exc, limiter=CapacityLimiter(1)
            )
        return _sync_outcome(self.node, exc, result)


class ScopeExit(Exit):
    """A cancel scope of ours, entered before the setups after it in the list."""

    __slots__ = ("scope",)

    def __init__(self, scope: Any) -> None:
        super().__init__()
        self.scope = scope

    async def _close(self, exc: BaseException | None) -> BaseException | None:
        scope = self.scope
        # Never cancelled and shielded: it swallows nothing and raises nothing.
        scope.__exit__(None, None, None)
        return exc


class Started:
    """An async generator whose clean teardown :func:`close_clean` started and that
    suspended: :func:`teardown` finishes it first."""

    __slots__ = ("gen", "node", "pending", "step")

    def __init__(self, node: Node, gen: Any, step: Any, pending: Any) -> None:
        self.node = node
        self.gen = gen
        self.step = step
        self.pending = pending


def close_clean(exits: list[Any]) -> object:
    """The fast path of a teardown with no exception to throw in: close entries in
    place, last first, while each is a generator set up in this task (a plain
    entry: its node, then the generator).

    Returns ``None`` when the list is empty; else what :func:`teardown` must go on
    from: the exception an entry raised, a :class:`Started` entry that waits, or
    the list itself untouched (its last entry needs :func:`teardown`). Only for lists
    without a :class:`ScopeExit` (their teardowns may wait and need the shield first).
    """
    while exits:
        gen = exits[-1]
        if isinstance(gen, Exit):
            return _MORE
        exits.pop()
        node: Node = exits.pop()
        if type(gen) is _AGEN:
            # Stepped through the iteration protocol: a generator that finishes
            # ends the loop with no exception made at all (its StopAsyncIteration is
            # turned into the default in C), ~0.14 µs less than catching it here.
            # (anext's awaitable is its own iterator: typeshed says Awaitable.)
            step: Any = anext(gen, _DONE)
            try:
                for pending in step:
                    return Started(node, gen, step, pending)  # it waits
            except BaseException as raised:
                return raised
            if gen.ag_frame is not None:  # it yielded again without waiting
                return Started(node, gen, step, _AGAIN)
            continue
        result = close_sync(node, gen, None)
        if result is not None:
            return result
    return None


async def finish_list(exits: list[Any], outcome: object) -> BaseException | None:
    """Go on from where :func:`close_clean` stopped on *exits*."""
    try:
        if type(outcome) is Started:
            return await teardown(exits, None, outcome)
        if isinstance(outcome, BaseException):
            return await teardown(exits, outcome)
        return await teardown(exits, None)
    finally:
        outcome = None  # (a frame the exception's traceback reaches keeps no reference)


async def teardown(
    exits: list[Any],
    exc: BaseException | None,
    started: Started | None = None,
) -> BaseException | None:
    """Close every entry of *exits*, last first; return the exception that follows.

    Each entry is popped before it is closed, so a teardown interrupted half-way (or
    run again) never closes anything twice. *started*: an entry :func:`close_clean`
    began, finished first.
    """
    for item in exits:
        if type(item) is ScopeExit:
            item.scope.shield = True
    if started is not None:
        exc = await _finish_started(started)
    while exits:
        item = exits.pop()
        if isinstance(item, Exit):
            exc = await item.close(exc)
        elif type(item) is _AGEN:
            exc = await close_async(exits.pop(), item, exc)
        else:
            exc = close_sync(exits.pop(), item, exc)
    try:
        return exc
    finally:
        exc = None  # (a frame the exception's traceback reaches keeps no reference)


async def close_async(
    node: Node, gen: AsyncGenerator[Any, None], exc: BaseException | None
) -> BaseException | None:
    """Finish an async generator in place, throwing *exc* in at its ``yield``."""
    step: Coroutine[Any, Any, Any] | None
    step = gen.__anext__() if exc is None else gen.athrow(exc)
    try:
        try:
            pending = step.send(None)
        except StopIteration:
            pass  # it yielded again without waiting
        else:
            await drive(step, pending)
    except StopAsyncIteration:
        return None if exc is None else swallowed_or_cancelled(node, exc)
    except BaseException as raised:
        return raised
    finally:
        # A frame what it raised reaches (through its traceback) keeps no reference
        # to the exception it threw in (nor does the athrow step): else a cycle
        # (see Scope.__aexit__).
        exc = step = None
    return await _yielded_again(node, gen)


async def _finish_started(started: Started) -> BaseException | None:
    if started.pending is not _AGAIN:
        try:
            # The step is close_clean's anext(gen, _DONE): _DONE once it finished,
            # what it yielded if it yielded again.
            if await drive(started.step, started.pending) is _DONE:
                return None
        except BaseException as raised:
            return raised
    return await _yielded_again(started.node, started.gen)


async def _yielded_again(
    node: Node, gen: AsyncGenerator[Any, None]
) -> BaseException | None:
    # It yielded a second time: close it, and report that.
    try:
        with new_cancel_scope(shield=True):
            await gen.aclose()
    except BaseException as raised:  # e.g. it ignored GeneratorExit
        error = yielded_twice(node.name, node.path)
        error.__context__ = raised
        return error
    return yielded_twice(node.name, node.path)


def close_sync(
    node: Node, gen: Generator[Any, None, None], exc: BaseException | None
) -> BaseException | None:
    """Finish a sync generator in place (on the event loop)."""
    return _sync_outcome(node, exc, _close_sync_raw(gen, exc))


_SWALLOWED: Final = object()


class _Twice:
    """A sync generator yielded again; *after*: what closing it raised, if anything."""

    __slots__ = ("after",)

    def __init__(self, after: BaseException | None) -> None:
        self.after = after


_AGAIN: Final = object()  # a generator's step that yielded again without waiting
_DONE: Final = object()  # what close_clean's step of a generator that finished gives
_MORE: Final = object()  # close_clean stopped: the rest needs teardown()


def _close_sync_raw(gen: Generator[Any, None, None], exc: BaseException | None) -> Any:
    """Finish a sync generator (maybe in a worker thread): the exception that follows,
    ``None``, ``_SWALLOWED`` or a ``_Twice`` (converted on the event loop)."""
    try:
        if exc is None:
            next(gen)
        else:
            gen.throw(exc)
    except StopIteration:
        return None if exc is None else _SWALLOWED
    except BaseException as raised:
        return raised
    try:
        gen.close()
    except BaseException as raised:  # it ignored GeneratorExit
        return _Twice(raised)
    return _Twice(None)


def _sync_outcome(
    node: Node, exc: BaseException | None, result: Any
) -> BaseException | None:
    if result is _SWALLOWED:
        assert exc is not None
        return swallowed_or_cancelled(node, exc)
    if type(result) is _Twice:
        error = yielded_twice(node.name, node.path)
        if result.after is not None:
            error.__context__ = result.after
        return error
    return cast("BaseException | None", result)


def swallowed_or_cancelled(node: Node, exc: BaseException) -> BaseException:
    """What follows a generator that caught *exc* and finished: a cancellation stays
    itself (never turned into something else), anything else is a ``YieldError``."""
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return exc
    return swallowed(node.name, exc, node.path)


_AGEN: Final[type[AsyncGeneratorType[Any, Any]]] = AsyncGeneratorType
