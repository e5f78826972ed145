"""The dispatcher: when a call goes concurrent, decided by how long a dependency waits.

A call runs its dependencies inline, one at a time. When one suspends while others are
ready, the call could hand the ready ones to a runner task at once, but for the most
common wait (a dependency awaiting one loop round trip: a cache hit, a lock, a queue)
overlap buys nothing and a task costs 10-20 µs. So the call only *registers* with the
container's dispatcher: one helper task per container that, for each registration,
lets the event loop run two full rounds and then checks whether the dependency is
still waiting in the same place. Only then does the call go concurrent, and its ready
dependencies start in a runner task. A dependency waiting for real I/O loses two loop
rounds (microseconds) of overlap; a dependency waiting one round costs a list append.

The decision depends on what the current call does, never on earlier calls. The same
task retries interruptions that had to wait (a failing sibling's dependency inside a
shield of its own, see :mod:`._backend`).

On asyncio the rounds are counted by one ``loop.call_soon`` callback per round, shared
by every call registered meanwhile (the loop runs its ready callbacks once per round),
so the common outcome (the dependency is done by then) costs a list append; only a
call still waiting is handed to the helper task, which starts its runner. trio has no
such hook, and its batches of ready tasks run in a random order, so there the helper
task waits two checkpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import anyio
from anyio.lowlevel import checkpoint

__all__ = ["Deferred", "Dispatcher"]


class Deferred(Protocol):
    """What registers with the dispatcher (a call's concurrent resolution)."""

    registered: int  # the position it registered at last

    def still_waiting(self, position: int) -> bool:
        """Whether the call still waits at *position* (and could go concurrent)."""
        ...

    def deferred(self, position: int) -> None:
        """Two loop rounds after registering at *position*: go concurrent if still
        waiting there (called in the helper task)."""

    def retry_interrupt(self) -> None:
        """One loop round after an interruption had to wait: try again."""


class Dispatcher:
    """One per container: a helper task serving deferred decisions and retries."""

    __slots__ = (
        "aged",
        "fresh",
        "loop",
        "loop_ready",
        "pending",
        "retries",
        "running",
        "spawn",
        "ticking",
        "wake",
    )

    def __init__(
        self, spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None]
    ) -> None:
        self.spawn = spawn
        self.loop: asyncio.AbstractEventLoop | None = None  # set on asyncio
        self.loop_ready = False  # pending entries waited their rounds already
        # asyncio: registered this round, and the round before (each remembers
        # where it registered: see Deferred.still_waiting).
        self.fresh: list[Deferred] = []
        self.aged: list[Deferred] = []
        self.ticking = False
        self.pending: list[tuple[Deferred, int]] = []
        self.retries: list[Deferred] = []
        self.running = False
        self.wake: anyio.Event | None = None

    def defer(self, call: Deferred, position: int) -> None:
        """Ask *call* back in two loop rounds about *position*."""
        loop = self.loop
        if loop is not None:
            self.fresh.append(call)
            if not self.ticking:
                self.ticking = True
                loop.call_soon(self._tick)
            return
        self.pending.append((call, position))
        self._poke()

    def _tick(self) -> None:
        """Once per loop round while calls are registered (asyncio): what was
        registered two rounds ago is checked; only a call still waiting needs the
        helper task."""
        ripe, self.aged, self.fresh = self.aged, self.fresh, []
        for call in ripe:
            position = call.registered
            if call.still_waiting(position):
                self.pending.append((call, position))
                self.loop_ready = True
        if self.pending:
            self._poke()
        loop = self.loop
        if (self.aged or self.fresh) and loop is not None:
            loop.call_soon(self._tick)
        else:
            self.ticking = False

    def retry(self, call: Deferred) -> None:
        """Ask *call* back in a loop round to retry an interruption."""
        loop = self.loop
        if loop is not None:
            loop.call_soon(loop.call_soon, call.retry_interrupt)
            return
        self.retries.append(call)
        self._poke()

    def start(self) -> None:
        """Start the helper task (the container was entered, in a task)."""
        self.spawn(self._serve)
        self.running = True

    def _poke(self) -> None:
        if not self.running:
            # The container is closing: nothing more goes concurrent, and calls still
            # running simply go on one dependency at a time.
            self.pending.clear()
            self.retries.clear()
            return
        wake = self.wake
        if wake is not None:
            self.wake = None
            wake.set()

    async def _serve(self) -> None:
        try:
            while True:
                if not self.pending and not self.retries:
                    wake = self.wake = anyio.Event()
                    await wake.wait()
                    continue
                batch, self.pending = self.pending, []
                retries, self.retries = self.retries, []
                if self.loop_ready:
                    self.loop_ready = False  # asyncio: the rounds were waited already
                else:
                    # Two rounds: trio runs each batch of ready tasks in a random
                    # order, so one round may not yet have resumed a dependency that
                    # waited one.
                    await checkpoint()
                    await checkpoint()
                _answer(batch, retries)
                # Done with them: not kept (with all a call holds) while waiting.
                del batch, retries
        finally:
            self.running = False
            self.wake = None


def _answer(batch: list[tuple[Deferred, int]], retries: list[Deferred]) -> None:
    """Ask back what waited its rounds (a function: no loop variable outlives it)."""
    for call, position in batch:
        call.deferred(position)
    for call in retries:
        call.retry_interrupt()
