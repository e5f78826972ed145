"""The concurrent tail of a call: what happens once generated ``inline`` suspends.

The calling task drives a suspended ``inline`` itself (:func:`._call.run`: it must
finish there, its cancel scopes and context are that task's) and watches where it
waits. When it waits in a dependency after which other dependencies are ready, the
call registers with the container's dispatcher (:mod:`._dispatch`; the call's state
is the registration, withdrawn as the call moves on); if, two loop rounds later, it
still waits there, the call gets a :class:`Resolution` and goes concurrent:

- ``inline`` returns :data:`~._invoke.HANDED` as soon as that dependency completes;
- the ready dependencies that may suspend start in runners (on asyncio, from the
  loop callback that decided): jobs for the container's worker tasks
  (:mod:`._pool`), each running generated ``n<i>`` functions in its own copy of
  the caller's context, in a cancel scope of its own; those that cannot suspend
  run at once in the dispatcher's task (:meth:`Resolution.run_quick`), except
  where runners start from a loop callback anyway: then the runners run them;
  every further dependency starts the moment its last input completes (a
  per-node count of unfinished inputs, kept up to date incrementally); a runner
  that waits while work is ready starts another runner;
- the calling task, once its own dependency completes, takes ready work too, then
  waits for the runners, then calls the root (:meth:`Resolution.rest`).

Failure: the first exception ends the call. Runners are cancelled through their
cancel scopes (the job ends, its worker waits for the next); the calling task's
dependency is interrupted by the
call's supervisor (:mod:`._backend`); nothing new starts. The caller gets the original
exception object, or an ``ExceptionGroup`` of the failures when several dependencies
really failed at once. A cancellation from outside the call is never a dependency
failure: the runners are stopped and the cancellation itself propagates. Runners
cancelled because the container closed report a :class:`~anydepends.UsageError`.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableSequence
from contextvars import Context
from functools import partial
from types import CoroutineType
from typing import Any, cast

import anyio

from ._backend import (
    drive,
    frame_values,
    new_cancel_scope,
    only_of,
)
from ._codegen import QUICK_UNCLAIMED, SLOW
from ._errors import container_closed_during_call
from ._invoke import MISSING
from ._lazymemo import close_lone
from ._state import CallState

__all__ = ["ContainerLost", "Resolution", "go_concurrent"]


class ContainerLost(Exception):
    """Internal: runner tasks of the call were cancelled by the container's task
    group (the container closed, or a scope around it was cancelled). The call
    protocol turns it into :attr:`error` unless the caller is being cancelled too."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


# The ready heap while nothing is ready (shared, never appended to: see push).
_NO_WORK: list[int] = []


class Resolution:
    """The readiness bookkeeping, runner tasks and failure of one concurrent call."""

    __slots__ = (
        "at",
        "ctx",
        "done",
        "extra",
        "failure",
        "idle",
        "lost",
        "main_busy",
        "outer",
        "ready",
        "remaining",
        "runners",
        "starting",
        "state",
        "waiting_ready",
        "working",
    )

    ready: list[int]
    remaining: MutableSequence[int]
    working: int
    starting: int
    waiting_ready: int
    idle: anyio.Event | None
    failure: BaseException | None
    extra: list[BaseException] | None
    outer: BaseException | None
    lost: bool
    runners: list[_Runner] | None

    def __init__(self, state: CallState, at: int, ctx: Context | None) -> None:
        self.state = state
        # A copy of the calling task's context variables it took as it registered,
        # where no other task can read them (see context).
        self.ctx = ctx
        # The node inline waits in, which the call went concurrent at.
        self.at = at
        self.done = False
        # The calling task's driver loop (_call.run) is running: it waits in `at`.
        self.main_busy = True
        self.ready = _NO_WORK
        self.remaining = _NO_WORK
        self.working = 0
        self.starting = 0  # runners spawned that have not taken work yet
        self.waiting_ready = 0  # ready nodes that may wait (see Runner.waits)
        self.idle = None
        self.failure = None
        self.extra = None
        self.outer = None
        self.lost = False  # a runner was cancelled by the container's task group
        # Runner tasks still running (None: none, as for most of a call's life).
        self.runners = None

    def driven(self, exc: BaseException | None) -> None:
        """The calling task's driver loop ended: ``inline`` handed over (*exc*
        ``None``) or raised *exc*; :meth:`rest` finishes the call."""
        self.main_busy = False
        if exc is None:
            self.complete(self.at)
        else:
            self.main_failed(exc)

    async def rest(self) -> Any:
        """The calling task's part of a concurrent call's rest, then the root."""
        state = self.state
        try:
            await self.finish()
        except BaseException:
            close_lone(state, failed=True)
            raise
        else:
            close_lone(state, failed=False)
        finally:
            self.done = True
            # Still true for generated code and _lazymemo, but no longer this
            # resolution: the state keeps no cycle through it once the call ends.
            state.handed = True
        return await state.runner.root_fn()(state.rs(), state.values, state)

    # -- going concurrent (in the dispatcher's task) ---------------------------------
    def go_concurrent(
        self,
        remaining: MutableSequence[int],
        ready: list[int],
        waiting: int,
        in_task: bool,
    ) -> None:
        """Node :attr:`at` waits in the calling task: start what is ready elsewhere
        (:func:`go_concurrent` found it: *ready*, in plan order, *waiting* of them
        may wait; *remaining*: per node, its inputs still to come). *in_task*: see
        :func:`go_concurrent`."""
        state = self.state
        position = self.at
        state.handed = self
        # inline keeps results in locals: what ran so far moves to R for the others.
        results = state.rs()
        found = frame_values(state.inline, state, position)
        if found is not None:
            for j, value in enumerate(found):
                if value is not MISSING:  # bound from the start (see _codegen)
                    results[j] = value
        else:
            frame: Any = cast("CoroutineType[Any, Any, Any]", state.inline).cr_frame
            local: dict[str, Any] = {} if frame is None else frame.f_locals
            for j in range(position):
                value = local.get(f"v{j}", MISSING)
                if value is not MISSING:
                    results[j] = value
            if type(local) is dict:
                # CPython < 3.13 keeps this snapshot on the frame while the call
                # waits; it is only a copy (the frame's own locals are untouched).
                local.clear()
        if ready:
            self.ready = ready
        self.remaining = remaining
        self.waiting_ready = waiting
        if in_task and waiting < len(ready):  # some ready node cannot wait
            self.run_quick()
        self.start_runners()

    def complete(self, index: int) -> None:
        """Node *index* has its value: its dependents may be ready now."""
        state = self.state
        remaining = self.remaining
        last = len(remaining)
        need = state.need
        for d in state.runner.plan.dependents[index]:
            if d == last or (need is not None and not need[d]):
                continue
            remaining[d] -= 1
            if not remaining[d]:
                self.push(d)
                self.waiting_ready += state.runner.waits[d]

    def push(self, index: int) -> None:
        """Node *index* is ready. (The ready heap is made when first needed and
        dropped when empty: a waiting call keeps none.)"""
        ready = self.ready
        if ready is _NO_WORK:
            ready = self.ready = []
        heapq.heappush(ready, index)

    def take(self) -> int:
        """The smallest ready node, taken off the heap (which must not be empty)."""
        ready = self.ready
        index = heapq.heappop(ready)
        if not ready:
            self.ready = _NO_WORK
        return index

    # -- the work ---------------------------------------------------------------------
    def context(self) -> Context:
        """A copy of the calling task's context variables, which dependencies that
        run elsewhere run in (the dispatcher's task has the container's own
        context): read from the calling task, waiting or running, or the copy it
        took itself where it cannot be read from outside."""
        ctx = self.ctx
        if ctx is not None:
            return ctx
        state = self.state
        context_of = state.rt.context_of
        assert context_of is not None and state.task is not None
        return context_of(state.task)

    def run_quick(self) -> None:
        """Going concurrent (in the dispatcher's task): the ready dependencies that
        cannot suspend (``Runner.quick``) run here and now, in the caller's context,
        and so do those they make ready; a runner task would cost more than they do.
        The others are left ready for runner tasks."""
        state = self.state
        runner = state.runner
        quick = runner.quick
        ctx: Context | None = None  # taken for the first that runs here
        later: list[int] = []
        memo = state.memo
        claim_keys = runner.claim_keys
        while self.ready and self.failure is None and self.outer is None:
            j = self.take()
            how = quick[j]
            if how == QUICK_UNCLAIMED:
                assert memo is not None and claim_keys is not None
                if type(memo.get(claim_keys[j])) is CallState:
                    how = SLOW  # it would wait for that call: in a runner
            if how == SLOW:
                later.append(j)
                continue
            if ctx is None:
                ctx = self.context()
            coro = runner.node_fns()[j](state.rs(), state.values, state, False)
            try:
                ctx.run(coro.send, None)
            except StopIteration:
                self.complete(j)
                continue
            except BaseException as exc:  # as in a runner task: the call's failure
                self.fail(exc)
                break
            # Unreachable: a quick node's code has no suspension point (_codeinfo).
            coro.close()  # pragma: no cover
            self.fail(AssertionError(f"{runner.plan.nodes[j].name} suspended"))
            break  # pragma: no cover
        for j in later:
            self.push(j)

    def needs_runners(self) -> int:
        """How many more runner tasks what is ready needs (if the dependency being
        run waits): one per ready dependency that may wait (they start in the same
        loop round, as a task group's would), or one for ready work that cannot
        wait; runners already starting count."""
        return (self.waiting_ready or (1 if self.ready else 0)) - self.starting

    def start_runners(self) -> None:
        """Start the runner tasks what is ready needs (:meth:`needs_runners`)."""
        want = self.needs_runners()
        if want > 0:
            ctx = self.context()
            for _ in range(want):
                self.spawn_runner(ctx)

    def spawn_runner(self, ctx: Context) -> None:
        """Start one more runner in a copy of *ctx*, unless the container has closed
        (then the runners already working finish the work, one dependency at a
        time)."""
        rt = self.state.rt
        if not rt.open:
            return
        self.working += 1
        self.starting += 1
        runner = _Runner()
        runners = self.runners
        if runners is None:
            runners = self.runners = []
        runners.append(runner)
        coro = self._runner(runner)
        try:
            rt.start_runner(coro, ctx.copy(), partial(self._never_ran, runner))
        except BaseException:
            # Closed, whatever state it was left in: if an eager task factory had
            # started it, its own `finally` undoes its counts; if it never started,
            # this does (counted first: an eager factory runs it in there). The
            # calling task does its work.
            coro.close()
            if runner in runners:
                self.starting -= 1
                self._runner_done(runner)
            raise

    async def work(self, main: bool) -> None:
        """Run ready nodes, smallest index first (plan order when nothing waits)."""
        state = self.state
        runner = state.runner
        waits = runner.waits
        fns = runner.node_fns()
        results, values = state.rs(), state.values
        while (
            self.ready and self.failure is None and self.outer is None and not self.lost
        ):
            j = self.take()
            self.waiting_ready -= waits[j]
            coro = fns[j](results, values, state, main)
            if main:
                self.main_busy = True
            try:
                if self.needs_runners() > 0:
                    # If this one waits, what is ready needs runners then: step it
                    # once to see (nothing else runs meanwhile: the need is the same).
                    try:
                        pending = coro.send(None)
                    except StopIteration:
                        pass
                    else:
                        self.start_runners()
                        await drive(coro, pending)
                else:
                    await coro  # (as a task group's task would: no driver between)
            finally:
                if main:
                    self.main_busy = False
            self.complete(j)

    async def _runner(self, runner: _Runner) -> None:
        """A runner (a job of the container's pool, :mod:`._pool`): work until
        nothing is ready, or the call stops it by cancelling its scope."""
        self.starting -= 1
        cancelled = self.state.rt.cancelled
        try:
            # (Stopped before it started: nothing to do.)
            if self.failure is None and self.outer is None and not self.lost:
                with new_cancel_scope() as scope:
                    runner.cancels = scope
                    try:
                        await self.work(main=False)
                    except BaseException as exc:
                        self._runner_failed(exc, runner, cancelled)
                        if isinstance(exc, cancelled):
                            raise  # ours ends at this scope; the container's goes on
        finally:
            self._runner_done(runner)

    def _never_ran(self, runner: _Runner) -> None:
        """The worker given *runner* was cancelled before it started it: the
        container's task group is closing under the call (as in
        :meth:`_runner_failed`)."""
        self.starting -= 1
        self._runner_done(runner)
        if not self.lost:
            self.lost = True
            self._stop()

    def _runner_done(self, runner: _Runner) -> None:
        """*runner* ended (or never started): nothing to cancel any more, let it go
        now, not when the call ends (a call may wait long after its runners)."""
        runners = self.runners
        assert runners is not None
        runners.remove(runner)
        if not runners:
            self.runners = None
        # Its cancel scope may keep what it absorbed (a cancellation), whose
        # traceback reaches the job's frame and its `runner`: no cycle back to it.
        runner.cancels = None
        self.working -= 1
        if not self.working and self.idle is not None:
            self.idle.set()

    def _runner_failed(
        self, exc: BaseException, runner: _Runner, cancelled: type[BaseException]
    ) -> None:
        if isinstance(exc, cancelled):
            if not runner.cancelled and not self.lost:
                # Not ours: the container's task group is closing under the call.
                # Whatever it was running is lost; stop the rest.
                self.lost = True
                self._stop()
            return
        if runner.cancelled and only_of(exc, cancelled):
            return  # only our own cancellation, in a group from a task group of theirs
        self.fail(exc)

    # -- failure --------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """Record a failure; the first one stops everything still running."""
        if self.failure is None:
            self.failure = exc
            self._stop()
        elif exc is not self.failure:
            if self.extra is None:
                self.extra = []
            self.extra.append(exc)

    def _stop(self) -> None:
        for runner in self.runners or ():
            runner.cancel()
        if self.main_busy:
            self.retry_interrupt()

    def retry_interrupt(self) -> None:
        """Interrupt the calling task's dependency (again, if it had to wait)."""
        if self.done or not self.main_busy:
            return
        state = self.state
        if state.task is not None and not state.rt.supervision.interrupt(state):
            state.rt.dispatcher.retry(self)

    def main_failed(self, exc: BaseException) -> None:
        """The calling task's dependency raised *exc* while the call was concurrent."""
        state = self.state
        if state.task is not None and state.rt.supervision.owns(state, exc):
            return  # our interruption, because something else failed
        if isinstance(exc, state.rt.cancelled):
            if self.outer is None:
                self.outer = exc  # from outside the call: stop, then re-raise it
                for runner in self.runners or ():
                    runner.cancel()
            return
        self.fail(exc)

    async def finish(self) -> None:
        """The calling task's part: help with ready work, wait for the runners, and
        raise what went wrong."""
        if self.ready and self.failure is None and self.outer is None and not self.lost:
            try:
                await self.work(main=True)
            except BaseException as exc:
                self.main_failed(exc)
        while self.working:
            event = self.idle = anyio.Event()
            if self.failure is not None or self.outer is not None or self.lost:
                with new_cancel_scope(shield=True):
                    await event.wait()
                continue
            try:
                await event.wait()
            except BaseException as exc:
                self.main_failed(exc)
        outer, failure, extra = self.outer, self.failure, self.extra
        # The caller gets these. Their tracebacks reach this resolution (through
        # the frames of its work): neither it nor this frame keeps them, or the
        # cycle would keep the whole call alive until the garbage collector ran.
        self.outer = self.failure = self.extra = None
        try:
            if outer is not None:
                raise outer
            if failure is not None:
                if extra:
                    msg = f"{len(extra) + 1} dependencies failed at once"
                    raise BaseExceptionGroup(msg, [failure, *extra])
                raise failure
        finally:
            outer = failure = extra = None
        if self.lost:
            name = self.state.runner.plan.root_node.name
            raise ContainerLost(container_closed_during_call(name))


def go_concurrent(state: CallState, ctx: Context | None, in_task: bool) -> bool:
    """The dispatcher's answer: *state*'s calling task still waits, two loop rounds
    after it registered, in a dependency after which others are ready (``state.at``):
    the call goes concurrent. *ctx*: the context the calling task copied then.

    *in_task*: this runs in a task (the dispatcher's), where ready dependencies that
    cannot suspend run at once (:meth:`Resolution.run_quick`). Otherwise it runs in
    a loop callback (asyncio's round callback), where no dependency may run (no
    task: no cancel scope or task-bound call would work there): it starts runner
    tasks, which run those too, if some ready dependency may wait; if none may, it
    makes and changes nothing and returns ``False`` (ask again in a task: a runner
    task would cost more than they do).
    """
    position = state.at
    runner = state.runner
    nodes = runner.plan.nodes
    last = len(nodes) - 1
    need = state.need
    # Counts of a node's inputs still to come: bytes where they fit (they cannot
    # exceed the node count), as a waiting call keeps them.
    remaining: MutableSequence[int] = bytearray(last) if last < 256 else [0] * last
    ready: list[int] = []
    waits = runner.waits
    waiting = 0
    for j in range(position + 1, last):
        if need is not None and not need[j]:
            continue
        count = 0
        for d in nodes[j].deps:
            if d >= position and (need is None or need[d]):
                count += 1
        remaining[j] = count
        if not count:
            ready.append(j)  # ascending: already a heap
            waiting += waits[j]
    if not in_task and not waiting:
        return False
    Resolution(state, position, ctx).go_concurrent(remaining, ready, waiting, in_task)
    return True


class _Runner:
    """One runner of a call, as the call cancels it."""

    __slots__ = ("cancelled", "cancels")

    def __init__(self) -> None:
        # The cancel scope its job runs in (None until the job started).
        self.cancels: Any = None
        self.cancelled = False  # the call cancelled it

    def cancel(self) -> None:
        self.cancelled = True
        cancels = self.cancels
        if cancels is not None:
            cancels.cancel()
