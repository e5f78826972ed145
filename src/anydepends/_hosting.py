"""Helper tasks that host async generators whose teardown another task will ask for.

An async generator must be torn down in the task that set it up (its cancel scopes and
``ContextVar`` tokens belong there). When the task that needs the value cannot be the
one that tears it down (an app-scoped dependency; one set up by a runner task, which
ends first; a request-scoped one set up where the scope's own task or cancel-scope level
is not), a *host*, a helper task in the container's task group, sets it up, hands the
value over, waits, and tears it down when asked.

A host sets up inside two cancel scopes of its own: ``interrupt`` (outer), which the
caller cancels if it gives up while the setup runs, and ``protect`` (inner), which is
shielded the moment the setup completes. So an interrupted setup is cancelled exactly
as anyio would cancel it (shields of its own respected), while a setup that completes
anyway, and every teardown, run protected from both the interruption and the
container's task group: nothing ever tears down in a cancelled scope. The caller waits
for the outcome either way, and registers a completed setup for its teardown.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from ._backend import new_cancel_scope
from ._errors import UsageError, container_closed_during_call, no_yield
from ._teardown import Exit, Permit, close_async

if TYPE_CHECKING:
    from ._plan import Node

__all__ = ["HostedExit", "close_hosts", "hosted_setup"]

Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


class HostedExit(Exit):
    """The exit-list entry of a hosted generator: asks its host to tear it down.

    Asked at most once: by the owner's teardown, or by the container for a host whose
    owner never asked (a scope nobody closed), whichever comes first.
    """

    __slots__ = ("asked", "finished", "node", "result", "signal", "thrown")

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self.signal = anyio.Event()
        self.finished = anyio.Event()
        self.thrown: BaseException | None = None
        self.result: BaseException | None = None
        self.asked = False

    async def _close(self, exc: BaseException | None) -> BaseException | None:
        if self.asked:
            return exc  # the container closed it already
        self.asked = True
        self.thrown = exc
        self.signal.set()
        with new_cancel_scope(shield=True):
            await self.finished.wait()
        # Handed over: this entry (kept by the host's box and frames) keeps neither
        # exception, else a cycle through their tracebacks keeps the call alive.
        result, self.result, self.thrown = self.result, None, None
        try:
            return result
        finally:
            result = exc = None


class _Box:
    """What a host and the caller that asked for it share."""

    __slots__ = ("error", "interrupt", "ready", "record", "value")

    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.record: HostedExit | None = None
        self.interrupt: Any = new_cancel_scope()


async def hosted_setup(
    spawn: Spawn,
    live: dict[HostedExit, None],
    node: Node,
    make: Callable[[], AsyncGenerator[Any, None]],
    exits: list[Any],
    permit: Permit | None,
    kept: Callable[[Any], None] | None = None,
) -> Any:
    """Set up the generator *make()* returns in a host task; return its value.

    On success the entry is appended to *exits*. *permit* belongs to the host from now
    on (it hands it to the entry, or releases it). If the caller is cancelled while it
    waits, the setup is interrupted and waited for; a setup that completed anyway is
    still appended, so it is torn down (seeing the call's exception) exactly once,
    and its value goes to *kept*, as it would have had it completed a moment sooner.
    """
    box = _Box()
    if permit is not None:
        permit.give_to(box)
    spawn(lambda: _host(node, make, box, permit, live))
    try:
        await box.ready.wait()
    except BaseException:
        box.interrupt.cancel()
        with new_cancel_scope(shield=True):
            await box.ready.wait()
        if box.record is not None:
            exits.append(box.record)
            if kept is not None:
                kept(box.value)
        raise
    error = box.error
    if error is not None:
        # The box (which the host's frame, in the traceback, keeps) and the frames
        # here let go of it: else a cycle keeps the whole call alive until the
        # collector runs.
        box.error = None
        try:
            if box.record is None and type(error) is UsageError:
                # The container is closing; if this call is being cancelled too (an
                # outer scope around the container), that cancellation wins.
                await checkpoint_if_cancelled()
            raise error
        finally:
            error = None
    record = box.record
    assert record is not None
    exits.append(record)
    return box.value


async def _host(
    node: Node,
    make: Callable[[], AsyncGenerator[Any, None]],
    box: _Box,
    permit: Permit | None,
    live: dict[HostedExit, None],
) -> None:
    """A host task: set up one generator, wait, tear it down when asked.

    Once the setup is complete nothing can cancel the host, not even the container's
    task group: the container asks every host it still has, in order, when it exits
    (:func:`close_hosts`).
    """
    record: HostedExit | None = None
    cancelled = anyio.get_cancelled_exc_class()
    try:
        with box.interrupt, new_cancel_scope() as protect:
            try:
                gen = make()
                try:
                    value = await gen.__anext__()
                except StopAsyncIteration:
                    raise no_yield(node.name, node.path) from None
            except BaseException as exc:
                if isinstance(exc, cancelled) and not box.interrupt.cancel_called:
                    # Not the caller giving up: the container is closing under it.
                    box.error = container_closed_during_call(node.name)
                else:
                    box.error = exc
                raise
            protect.shield = True  # set up: from now on, only asked to end
            record = HostedExit(node)
            if permit is not None:
                permit.give_to(record)
            live[record] = None
            box.record = record
            box.value = value
            box.ready.set()
            await record.signal.wait()
            record.result = await close_async(node, gen, record.thrown)
    except BaseException as exc:
        if isinstance(exc, cancelled):
            raise  # the container is shutting down
        # Anything else was reported through the box: never fail the container.
    finally:
        box.ready.set()
        if permit is not None and permit.owner is not record:
            permit.release()  # the setup failed: the token was never handed over
        if record is not None:
            live.pop(record, None)
            record.finished.set()


async def close_hosts(live: dict[HostedExit, None]) -> None:
    """Ask every host still alive to tear down (the container is exiting and their
    owners never did), each exactly once, the most recent first."""
    while live:
        record = next(reversed(live))
        live.pop(record)
        await record.close(None)
