"""Teardown of ``yield`` dependencies: exit records, closing generators, hosts.

An :class:`Exit` is created the moment a ``yield`` dependency's setup completes, and is
appended to the list of its lifetime (the call, the :class:`Scope` or the
:class:`Container`). :func:`teardown` closes a list exactly once, in reverse order of
setup completion, so every dependency is torn down after everything that depends on it.
The exception being handled is thrown in at each ``yield``; what a teardown raises is
what the next ones see (FastAPI's exit-stack semantics).

An async generator must be torn down in the task that set it up (anyio cancel scopes
and ``ContextVar.reset`` tokens are task-bound). Generators set up in a helper task
have a :class:`Host`: the owner signals it and waits, and the host closes them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any, Final, cast

import anyio
from anyio import CancelScope, CapacityLimiter, to_thread

from ._errors import YieldError
from ._introspect import CallKind
from ._lowlevel import (
    Drive,
    cancel_scope_marker,
    in_cancelled_scope,
    shield_open_scopes,
)

__all__ = ["Exit", "Host", "close_generator", "teardown"]


_HOST_DIED: Final = object()


class Host:
    """A helper task's side of the protocol: generators it must close itself."""

    __slots__ = ("dead", "pending", "wake")

    def __init__(self) -> None:
        self.pending: list[Exit] = []  # signalled, not yet closed
        self.wake: anyio.Event | None = None
        self.dead = False  # the host task is gone: close in the caller instead

    async def serve(self, exits: list[Exit], baseline: object) -> None:
        """Close each of *exits* when signalled (in signal order), then return."""
        remaining = len(exits)
        try:
            while remaining:
                if not self.pending:
                    self.wake = anyio.Event()
                    await self.wake.wait()
                    continue
                record = self.pending[0]
                record.result = await close_generator(record, record.thrown, baseline)
                self.pending.pop(0)
                remaining -= 1
                assert record.done is not None
                record.done.set()
        finally:
            # Interrupted (the container is shutting down): whoever waits closes the
            # generator itself, so nothing hangs and nothing is left open.
            self.dead = True
            for record in self.pending:
                record.result = _HOST_DIED
                assert record.done is not None
                record.done.set()
            self.pending.clear()


class Exit:
    """One completed ``yield`` setup awaiting its teardown (exactly once)."""

    __slots__ = (
        "closed",
        "done",
        "gen",
        "host",
        "kind",
        "name",
        "path",
        "permit",
        "result",
        "thread",
        "thrown",
    )

    def __init__(
        self,
        kind: CallKind,
        gen: AsyncGenerator[Any, None] | Generator[Any, None, None],
        name: str,
        host: Host | None = None,
        permit: tuple[CapacityLimiter, object] | None = None,
        thread: bool = False,
        path: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.path = path
        self.thread = thread
        self.gen = gen
        self.name = name
        self.host = host
        self.permit = permit
        self.closed = False
        self.thrown: BaseException | None = None
        self.result: Any = None
        self.done: anyio.Event | None = None

    async def close(
        self, exc: BaseException | None, baseline: object
    ) -> BaseException | None:
        """Tear down once; return the exception later teardowns must see.

        *baseline* identifies the cancel scope that was innermost in this task before
        any setup ran (see :func:`close_generator`).
        """
        if self.closed:
            return exc
        self.closed = True
        host = self.host
        if host is None or host.dead:
            return await close_generator(self, exc, baseline)
        self.thrown = exc
        self.done = anyio.Event()
        host.pending.append(self)
        if host.wake is not None:
            host.wake.set()
        with CancelScope(shield=True):
            await self.done.wait()
        result = self.result
        if result is _HOST_DIED:
            self.result = None
            return await close_generator(self, exc, baseline)
        return cast("BaseException | None", result)


async def close_generator(
    record: Exit, exc: BaseException | None, baseline: object
) -> BaseException | None:
    """Finish the generator of *record*, throwing *exc* in; return what follows."""
    try:
        if record.kind is CallKind.ASYNC_GEN:
            return await _close_async(record, exc, baseline)
        if record.thread:
            # A fresh limiter per exit, as FastAPI does: teardowns never wait for the
            # shared thread pool, so they cannot deadlock behind setups.
            close: Any = _close_sync
            result: object = None
            with CancelScope(shield=True):  # our own wait: nothing of theirs is open
                result = await to_thread.run_sync(
                    close,
                    record.gen,
                    exc,
                    record.name,
                    limiter=CapacityLimiter(1),
                )
        else:
            gen = cast(Generator[Any, None, None], record.gen)
            result = _close_sync(gen, exc, record.name)
        if result is _SWALLOWED:
            assert exc is not None
            return _swallowed(record.name, exc, record.path)
        if result is _TWICE:
            return _yielded_twice(record.name, record.path)
        return cast("BaseException | None", result)
    finally:
        if record.permit is not None:
            limiter, borrower = record.permit
            limiter.release_on_behalf_of(borrower)


async def _close_async(
    record: Exit, exc: BaseException | None, baseline: object
) -> BaseException | None:
    """Finish an async generator, shielded from outer cancellation.

    *baseline* is the cancel scope that was innermost in this task before any setup.
    At the task's baseline a shield scope of ours nests correctly; above it (a
    generator's scope is open) that scope itself is shielded instead
    (:func:`shield_open_scopes`). Protection is put in place before the first step
    when the task is already cancelled (trio raises at the first checkpoint), else
    only if the teardown really waits: most finish at once and cost no scope at all.
    """
    gen = cast(AsyncGenerator[Any, None], record.gen)
    guard: _Guard | None = None
    if (
        exc is not None and isinstance(exc, anyio.get_cancelled_exc_class())
    ) or in_cancelled_scope():
        guard = _Guard(baseline)
        guard.protect()
    step = gen.__anext__() if exc is None else gen.athrow(exc)
    try:
        pending = step.send(None)
    except StopAsyncIteration:
        result = None if exc is None else _swallowed(record.name, exc, record.path)
    except StopIteration:
        result = await _yielded_again(record)
    except BaseException as raised:
        result = raised
    else:
        return await _finish_close(
            record, exc, step, pending, guard or _Guard(baseline)
        )
    if guard is not None:
        guard.release()
    return result


async def _finish_close(
    record: Exit,
    exc: BaseException | None,
    step: Any,
    pending: Any,
    guard: _Guard,
) -> BaseException | None:
    """Drive a teardown that waits to its end, protected at every wait."""
    try:
        await Drive(step, pending, guard.protect)
    except StopAsyncIteration:
        return None if exc is None else _swallowed(record.name, exc, record.path)
    except BaseException as raised:
        return raised
    finally:
        guard.release()
    return await _yielded_again(record)


async def _yielded_again(record: Exit) -> BaseException:
    gen = cast(AsyncGenerator[Any, None], record.gen)
    with CancelScope(shield=True):
        await gen.aclose()
    return _yielded_twice(record.name, record.path)


class _Guard:
    """Keeps one teardown shielded from outer cancellation wherever it waits."""

    __slots__ = ("baseline", "scope")

    def __init__(self, baseline: object) -> None:
        self.baseline = baseline
        self.scope: CancelScope | None = None

    def protect(self) -> None:
        if self.scope is not None:
            return  # ours is open, and everything the teardown opens is inside it
        if cancel_scope_marker() is self.baseline:
            self.scope = CancelScope(shield=True)
            self.scope.__enter__()
        else:
            shield_open_scopes(self.baseline)

    def release(self) -> None:
        if self.scope is not None:
            scope, self.scope = self.scope, None
            scope.__exit__(None, None, None)


_SWALLOWED: Final = object()
_TWICE: Final = object()


def _close_sync(
    gen: Generator[Any, None, None], exc: BaseException | None, name: str
) -> object:
    """Finish a sync generator (maybe in a worker thread): the exception that
    follows, ``None``, ``_SWALLOWED`` or ``_TWICE``."""
    if exc is None:
        try:
            next(gen)
        except StopIteration:
            return None
        except BaseException as raised:
            return raised
        gen.close()
        return _TWICE
    try:
        gen.throw(exc)
    except StopIteration:
        return _SWALLOWED  # converted on the event loop: it needs the backend
    except BaseException as raised:
        return raised
    gen.close()
    return _TWICE


def _yielded_twice(name: str, path: tuple[str, ...] = ()) -> YieldError:
    msg = f"yield dependency {name} yielded more than once"
    return YieldError(
        msg,
        path=path,
        callable=name,
        hint="a dependency must yield exactly once (use try/finally)",
    )


def _swallowed(
    name: str, exc: BaseException, path: tuple[str, ...] = ()
) -> BaseException:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return exc  # never turn a cancellation into something else
    msg = (
        f"yield dependency {name} caught {type(exc).__name__} at its yield and"
        " neither re-raised it nor raised another exception"
    )
    error = YieldError(
        msg,
        path=path,
        callable=name,
        hint="add a bare `raise` at the end of the except block (FastAPI >= 0.110"
        " requires the same)",
    )
    error.__cause__ = exc
    return error


async def teardown(
    exc: BaseException | None, baseline: object, *lists: list[Exit]
) -> BaseException | None:
    """Close each list in turn, each in reverse order; return the final exception.

    Each teardown is shielded from cancellation where it waits (see
    :func:`close_generator`), so a cancelled call still tears down completely.
    """
    for exits in lists:
        while exits:
            record = exits.pop()
            if record.host is not None or record.permit is not None:
                exc = await record.close(exc, baseline)
            elif record.closed:
                continue
            elif record.kind is not _AGEN:
                exc = await record.close(exc, baseline)
            elif exc is None and not in_cancelled_scope():
                # The common case, stepped here: a clean teardown that does not wait.
                record.closed = True
                step = cast(AsyncGenerator[Any, None], record.gen).__anext__()
                try:
                    pending = step.send(None)
                except StopAsyncIteration:
                    continue
                except StopIteration:
                    exc = await _yielded_again(record)
                except BaseException as raised:
                    exc = raised
                else:
                    exc = await _finish_close(
                        record, None, step, pending, _Guard(baseline)
                    )
            else:
                record.closed = True
                exc = await _close_async(record, exc, baseline)
    return exc


_AGEN: Final = CallKind.ASYNC_GEN
