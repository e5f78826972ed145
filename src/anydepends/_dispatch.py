"""The dispatcher: when a call goes concurrent, decided by how long a dependency waits.

A call runs its dependencies inline, one at a time. When one suspends while others are
ready, the call could hand the ready ones to a runner task at once, but for the most
common wait (a dependency awaiting one loop round trip: a cache hit, a lock, a queue)
overlap buys nothing and a task costs 10-20 µs. So the call only *registers* with the
container's dispatcher, which, for each registration, lets the event loop run two full
rounds and then checks whether the dependency is still waiting in the same place.
Only then does the call go concurrent, and its ready dependencies start in runner
tasks. A dependency waiting for real I/O loses two loop rounds (microseconds) of
overlap; a dependency waiting one round costs a list append.

The decision depends on what the current call does, never on earlier calls.

On asyncio the rounds are counted by one ``loop.call_soon`` callback per round, shared
by every call registered meanwhile (the loop runs its ready callbacks once per round,
in the order they were scheduled), so the common outcome (the dependency is done by
then) costs a list append; a call still waiting goes concurrent right there (the
callback starts its runner tasks and runs no dependency: see
:func:`._resolution.go_concurrent`). The first round's callback can often answer
already: a dependency awaiting an asyncio future that is still not done then resumes
two rounds after it registered at the earliest (the future's callbacks schedule its
task's step, which runs in the round after the one that completes it, and the second
round's callback was scheduled before that step), so the second callback would find
it waiting: the call goes concurrent one round sooner, the decision unchanged. (A
dependency whose future is done already, or that moved on and waits again in the
same dependency, is asked about in the second round.) A dependency that gives the
loop a bare yield (``None``: a checkpoint) resumes in the next round for certain, so
it is not registered at all (:meth:`Dispatcher.lasts`); if it then waits again in
the same dependency, it registers as one round old. Interruptions that had to wait
(a failing sibling's dependency inside a shield of its own, see :mod:`._backend`)
are retried a round later the same way.

trio has no such hook, and its batches of ready tasks run in a random order, so there
the dispatcher's helper task (one per container) waits two checkpoints after a
registration before it asks (one for the registration that woke it: the wake took a
round already), and retries interruptions. (On asyncio the helper task
takes a call concurrent only when no runner task is needed, its ready dependencies
running there, or when tasks cannot be started from a loop callback.)

A registration is the call's state itself in one of the dispatcher's lists, and the
call holds a *ticket* (which list, where): as the calling task moves on (or the call
ends) it withdraws in constant time, so the dispatcher never keeps a call that no
longer waits where it registered (under load, that lifetime would send every call's
state through the collector's older generations), and every registration it still
holds when asked is one that waited its rounds.
"""

from __future__ import annotations

import asyncio
from asyncio import isfuture
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, Final, Protocol

import anyio
from anyio.lowlevel import checkpoint

__all__ = ["NO_TICKET", "Dispatcher", "Interruptible", "Waiting"]

#: A call's ticket while it is not registered.
NO_TICKET: Final = -1

# A ticket is (list serial << _SHIFT) | index in that list.
_SHIFT: Final = 32
_INDEX: Final = (1 << _SHIFT) - 1


class Waiting(Protocol):
    """A call whose calling task waits in a dependency after which others are ready
    (a :class:`~._state.CallState`)."""

    ticket: int  # NO_TICKET, or where the dispatcher keeps its registration
    handed: Any  # true once it went concurrent
    rt: Any  # its container's runtime (``open`` until the container closes)


class Interruptible(Protocol):
    """A concurrent call whose interruption had to wait (a Resolution)."""

    def retry_interrupt(self) -> None:
        """One loop round after an interruption had to wait: try again."""


#: A registration: the call, or the call and a copy of its task's context (where
#: only the calling task can take one), or ``None`` once withdrawn.
Entry = Waiting | tuple[Waiting, Context] | None


class _Batch(list[Entry]):
    """A list of registrations, named by its serial in tickets."""

    __slots__ = ("serial",)

    def __init__(self, serial: int) -> None:
        super().__init__()
        self.serial = serial


class Dispatcher:
    """One per container: deferred decisions to go concurrent, and retries."""

    __slots__ = (
        "aged",
        "awaiting",
        "direct",
        "fresh",
        "go",
        "lists",
        "loop",
        "pending",
        "retries",
        "running",
        "serial",
        "spawn",
        "ticking",
        "wake",
        "waker",
    )

    def __init__(
        self,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None],
        go: Callable[[Any, Context | None, bool], bool],
    ) -> None:
        self.spawn = spawn
        # What takes a call concurrent (_resolution.go_concurrent), for a call that
        # still waits where it registered; told whether it runs in a task.
        self.go = go
        self.loop: asyncio.AbstractEventLoop | None = None  # set on asyncio
        # The lists that hold registrations, by serial (tickets name them).
        self.serial = 0
        self.lists: dict[int, _Batch] = {}
        # asyncio: registered this round, and the round before.
        self.fresh = self._new_list()
        self.aged = self._new_list()
        # What each call in `fresh` awaited as it registered (same positions).
        self.awaiting: list[object] = []
        self.ticking = False
        # asyncio: a call that waited its rounds goes concurrent in the round
        # callback (False once that failed: then in the helper task).
        self.direct = True
        # Waiting their rounds in the helper task (trio), or waited them (asyncio,
        # when not direct).
        self.pending = self._new_list()
        self.retries: list[Interruptible] = []
        self.running = False
        self.wake: anyio.Event | None = None
        # trio: where in `pending` the registration that woke the helper task is.
        self.waker = -1

    def _new_list(self) -> _Batch:
        """A new list for registrations (withdrawals reach it until retired)."""
        self.serial += 1
        batch = self.lists[self.serial] = _Batch(self.serial)
        return batch

    def lasts(self, awaiting: object) -> bool:
        """Whether a wait for *awaiting* (what a dependency gave the event loop) may
        last two rounds. ``False`` for asyncio's bare yield (``None``: a checkpoint),
        which resumes the task in the next round for certain: registering it could
        never make the call concurrent, only cost."""
        return awaiting is not None or self.loop is None

    def defer(
        self, call: Waiting, ctx: Context | None, awaiting: object, *, waited: bool
    ) -> None:
        """Ask about *call* again in two loop rounds, unless it withdraws first.
        *ctx*: a copy of its task's context, where no other task can read it;
        *awaiting*: what its dependency gave the event loop; *waited*: it waited a
        round there already (asyncio: after a bare yield), so one more is enough."""
        entry: Entry = call if ctx is None else (call, ctx)
        loop = self.loop
        if loop is not None:
            if waited:
                self._enter(self.aged, call, entry)
            else:
                self._enter(self.fresh, call, entry)
                self.awaiting.append(awaiting)
            if not self.ticking:
                self.ticking = True
                loop.call_soon(self._tick)
            return
        if self.wake is not None:
            # It wakes the helper task (idle: nothing else is pending), which runs
            # in the next round: one checkpoint after that is two rounds for it.
            self.waker = len(self.pending)
        self._enter(self.pending, call, entry)
        self._poke()

    def _enter(self, batch: _Batch, call: Waiting, entry: Entry) -> None:
        call.ticket = (batch.serial << _SHIFT) | len(batch)
        batch.append(entry)

    def withdraw(self, call: Waiting) -> None:
        """*call* no longer waits where it registered: forget it."""
        ticket = call.ticket
        call.ticket = NO_TICKET
        lst = self.lists.get(ticket >> _SHIFT)
        if lst is not None:
            lst[ticket & _INDEX] = None

    def _tick(self) -> None:
        """Once per loop round while calls are registered (asyncio): what was
        registered two rounds ago and is still there waits still, and so does what
        was registered last round awaiting a future still not done (see the module
        docstring): such a call goes concurrent."""
        ripe, fresh = self.aged, self.fresh
        self.aged, self.fresh = fresh, self._new_list()
        del self.lists[ripe.serial]  # answered now: no more withdrawals
        for entry in ripe:
            if entry is not None:
                self._ripe(entry)
        awaiting = self.awaiting
        waiting = 0  # registrations left in `fresh` (asked about next round)
        for i, awaited in enumerate(awaiting):
            entry = fresh[i]
            if entry is None:
                continue
            if awaited is not None and isfuture(awaited) and not awaited.done():
                fresh[i] = None
                self._ripe(entry)
            else:
                waiting += 1
        awaiting.clear()
        if not waiting:
            fresh.clear()  # nothing to ask next round (and no ticket names it)
        if self.pending:
            self._poke()
        loop = self.loop
        if (self.aged or self.fresh) and loop is not None:
            loop.call_soon(self._tick)
        else:
            self.ticking = False

    def _ripe(self, entry: Waiting | tuple[Waiting, Context]) -> None:
        """The call of *entry* waited its rounds (asyncio, in the round callback):
        it goes concurrent here, where it gets runner tasks; in the helper task
        where what is ready cannot wait (it runs there, no task started), or if
        tasks cannot be started from a loop callback."""
        if self.direct:
            token = _callback_is_asyncio()
            try:
                if _answer(entry, self.go, in_task=False):
                    return
            except RuntimeError:
                # anyio could not tell the running library outside a task (an
                # anyio release that asks more of it): this call's calling task
                # runs what its runner would have (_resolution.spawn_runner leaves
                # nothing half made), and from now on the helper task starts them.
                self.direct = False
                return
            finally:
                _callback_done(token)
        self._enter(self.pending, _split(entry)[0], entry)

    def retry(self, call: Interruptible) -> None:
        """Ask *call* back in a loop round to retry an interruption."""
        loop = self.loop
        if loop is not None:
            loop.call_soon(loop.call_soon, call.retry_interrupt)
            return
        self.retries.append(call)
        self._poke()

    def start(self) -> None:
        """The container was entered, in a task: start the helper task."""
        self.spawn(self._serve)
        self.running = True

    def _poke(self) -> None:
        if not self.running:
            # The container is closing: nothing more goes concurrent, and calls still
            # running simply go on one dependency at a time.
            _drop(self.pending)
            self.retries.clear()
            return
        wake = self.wake
        if wake is not None:
            self.wake = None
            wake.set()

    async def _serve(self) -> None:
        """The helper task."""
        try:
            while True:
                if not self.pending and not self.retries:
                    wake = self.wake = anyio.Event()
                    await wake.wait()
                    continue
                batch, self.pending = self.pending, self._new_list()
                retries, self.retries = self.retries, []
                waker, self.waker = self.waker, -1
                if self.loop is None:
                    # Two rounds: trio runs each batch of ready tasks in a random
                    # order, so one round may not yet have resumed a dependency
                    # that waited one. (On asyncio the round callback waited them.)
                    # The registration that woke this task was made in the round
                    # before this one: for it, one checkpoint is enough. (Others
                    # may have been made in this round, before this task ran.)
                    await checkpoint()
                    if waker >= 0 and (entry := batch[waker]) is not None:
                        batch[waker] = None
                        _answer(entry, self.go, in_task=True)
                        del entry
                    await checkpoint()
                del self.lists[batch.serial]  # answered now: no more withdrawals
                _answer_all(batch, retries, self.go)
                # Done with them: not kept (with all a call holds) while waiting.
                del batch, retries
        finally:
            self.running = False
            self.wake = None
            _drop(self.pending)


def _split(entry: Waiting | tuple[Waiting, Context]) -> tuple[Waiting, Context | None]:
    """A registration's call, and the context copy it came with (or ``None``)."""
    if isinstance(entry, tuple):
        return entry
    return entry, None


def _drop(lst: _Batch) -> None:
    """Forget every call registered in *lst*."""
    for entry in lst:
        if entry is not None:
            _split(entry)[0].ticket = NO_TICKET
    lst.clear()


def _answer(
    entry: Waiting | tuple[Waiting, Context],
    go: Callable[[Any, Context | None, bool], bool],
    *,
    in_task: bool,
) -> bool:
    """The call of *entry* still waits where it registered, its rounds waited: it
    goes concurrent (unless it is already, or its container closed). ``False``:
    it must be asked again in a task."""
    call, ctx = _split(entry)
    call.ticket = NO_TICKET
    if not call.handed and call.rt.open:
        return go(call, ctx, in_task)
    return True


def _answer_all(
    batch: _Batch,
    retries: list[Interruptible],
    go: Callable[[Any, Context | None, bool], bool],
) -> None:
    """Ask back what waited its rounds (a function: no loop variable outlives it).
    A call still registered in *batch* still waits where it registered."""
    for entry in batch:
        if entry is not None:
            _answer(entry, go, in_task=True)
    for retry in retries:
        retry.retry_interrupt()


def _callback_is_asyncio() -> str | None:
    """In an asyncio loop callback, let anyio tell the running library: it asks
    sniffio (when installed), which finds asyncio only through a current task, and a
    callback has none; ``sniffio.thread_local.name`` is sniffio's documented way for
    whatever runs the loop to say which it is. Returns what to restore."""
    local = _sniffio_local
    if local is None:
        return None  # without sniffio, anyio asks asyncio for the running loop
    previous: str | None = local.name
    local.name = "asyncio"
    return previous


def _callback_done(previous: str | None) -> None:
    local = _sniffio_local
    if local is not None:
        local.name = previous


def _sniffio_thread_local() -> Any:
    """sniffio's ``thread_local``, or ``None`` without sniffio."""
    try:
        from sniffio import thread_local
    except ImportError:  # pragma: no cover - sniffio comes with trio and the tools
        return None
    return thread_local


_sniffio_local: Any = _sniffio_thread_local()
