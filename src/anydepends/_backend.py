"""What anydepends needs from the event loop beyond anyio's public API, in one place.

The engine runs dependencies inline in the calling task and needs three things anyio
does not offer publicly:

- :func:`drive` finishes a coroutine that was stepped once with ``send(None)`` and
  suspended, in the task that stepped it (its cancel scopes and context belong there).
- A :class:`Supervisor` per call whose dependencies may overlap: when a dependency
  fails in a runner task, the one the calling task is running must be interrupted
  wherever it waits, also inside cancel scopes of its own, and without ever touching
  a cancel scope anydepends does not own.
- A :func:`mark`: the identity of the calling task's innermost cancel scope, so a
  ``yield`` dependency is set up in place only where its teardown will find the
  cancel-scope stack exactly as it left it.
- A :func:`context_reader`: a copy of a waiting task's context variables, taken from
  another task (runner tasks start with the calling task's context).

Each has a private fast path and a public-API-only implementation:

- supervisor on asyncio: the private path cancels the future the calling task waits
  on (``Task._fut_waiter``, what ``Task.cancel`` does), held back while a shield of
  the dependency's own is open (anyio's task state); the public path is a cancel
  scope of ours entered before the first dependency of every plan that may overlap;
- supervisor on trio: that cancel scope of ours, in both modes;
- mark: anyio's task state (asyncio) or trio's cancel status; the public path knows
  no mark, and such generators are set up in a helper task instead;
- a task's context: public on trio and on asyncio from Python 3.12; on 3.11's
  asyncio the private path finds it among the task's references, the public path
  has the calling task copy its context whenever it may go concurrent.

``ANYDEPENDS_PRIVATE_STATE=0`` in the environment selects the public-only paths; every
guarantee holds there too, only speed differs (CI runs the suite both ways). The
private paths check the shape of what they read once, on first use, and fall back to
the public paths for good if anything is not where they expect: they never guess.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from contextvars import Context, ContextVar
from typing import Any, Final, NamedTuple, Protocol, cast

import anyio
from anyio import CancelScope

__all__ = [
    "PRIVATE_STATE",
    "Supervision",
    "TaskFunctions",
    "cancelled_exc_class",
    "context_reader",
    "current_task",
    "drive",
    "frame_values",
    "is_trio",
    "mark",
    "new_cancel_scope",
    "only_of",
    "private_state_available",
    "running_asyncio_loop",
    "supervision",
    "task_and_mark",
    "task_functions",
]

#: Whether the private fast paths may be used (``ANYDEPENDS_PRIVATE_STATE=0``: no).
PRIVATE_STATE: Final = os.environ.get("ANYDEPENDS_PRIVATE_STATE", "1").strip() != "0"

#: What :func:`mark` returns when the private state cannot be read: equal to no mark.
UNKNOWN: Final = object()

_INTERRUPT: Final = "anydepends: a sibling dependency failed"


@types.coroutine
def drive(coro: Coroutine[Any, Any, Any], first: Any) -> Generator[Any, Any, Any]:
    """Finish *coro*, which already yielded *first* to the event loop (await this).

    Everything the loop sends or throws goes to *coro*, so it behaves exactly as if it
    had been awaited from the start in this task. (A generator-based coroutine: one
    object per use, the least a waiting runner can keep.)
    """
    pending = first
    first = None
    try:
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # thrown in by the loop: pass it on
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
    except BaseException:
        # What *coro* raised has this frame in its traceback: the frame keeps no
        # reference to it (*coro* may be a generator's athrow() that holds it; trio
        # sends a cancellation in as an outcome that holds it), else a cycle keeps
        # everything the traceback reaches alive until the collector runs.
        del coro
        sent = None
        raise


def is_trio() -> bool:
    """Whether the running event loop is trio's (anyio runs on asyncio or trio)."""
    return asyncio._get_running_loop() is None


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio event loop, or ``None`` on trio."""
    return asyncio._get_running_loop()


def current_task() -> object:
    """The running task (an ``asyncio.Task`` or a ``trio.lowlevel.Task``)."""
    if asyncio._get_running_loop() is not None:
        return asyncio.current_task()
    import trio

    return trio.lowlevel.current_task()


def cancelled_exc_class() -> type[BaseException]:
    """The running backend's cancellation exception."""
    return anyio.get_cancelled_exc_class()


def frame_values(coro: object, anchor: object, count: int) -> list[Any] | None:
    """The *count* local variables that follow the argument *anchor* in the frame of
    the suspended coroutine *coro*, in their order; ``None`` where they cannot be
    read this way (then read ``cr_frame.f_locals``).

    Private: the order in which the cyclic collector visits a suspended coroutine's
    references (its frame's locals, in order, after its code and names; a local not
    bound is skipped, so the locals asked for must all be bound). It avoids
    ``cr_frame``, which on CPython < 3.13 creates a frame object the size of the
    frame that stays with the coroutine while it waits. Checked once, on a probe.
    """
    if not _frames_readable():
        return None
    refs = gc.get_referents(coro)
    for i, ref in enumerate(refs):
        if ref is anchor:
            found = refs[i + 1 : i + 1 + count]
            return found if len(found) == count else None
    return None


def _frames_readable() -> bool:
    found = _checked.get("frames")
    if found is None:
        found = _checked["frames"] = PRIVATE_STATE and _frame_shape_ok()
    return found


def _frame_shape_ok() -> bool:
    """A probe coroutine, suspended with known locals, reads back as expected."""
    marks = (object(), object(), object())
    anchor = object()

    @types.coroutine
    def suspend() -> Generator[None, None, None]:
        yield None

    async def probe(first: object, second: object) -> tuple[object, ...]:
        a, b, c = marks
        await suspend()
        return (first, second, a, b, c)  # pragma: no cover - never resumed

    coro = probe(object(), anchor)
    try:
        coro.send(None)
        refs = gc.get_referents(coro)
        return any(
            ref is anchor
            and len(refs) >= i + 4
            and all(x is y for x, y in zip(refs[i + 1 : i + 4], marks, strict=True))
            for i, ref in enumerate(refs)
        )
    except Exception:  # anything unexpected: read the frame
        return False
    finally:
        coro.close()


def only_of(exc: BaseException, cls: type[BaseException]) -> bool:
    """Whether *exc* is a *cls*, or a group of nothing else (at any depth)."""
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        return group.split(cls)[1] is None
    return isinstance(exc, cls)


# -- the private state, checked once ----------------------------------------------

_asyncio_states: Any = None  # anyio's WeakKeyDictionary of asyncio task states
# Its underlying dict, keyed by weak references: ``_asyncio_data.get(ref(task))`` is
# the task's state in C calls only (``WeakKeyDictionary.get`` is a Python method, and
# this lookup runs once or twice per call).
_asyncio_data: Any = None


def _task_of_loop() -> Callable[[asyncio.AbstractEventLoop], Any]:
    """``asyncio.current_task`` as one C call taking the loop: on Python 3.11 it is
    a Python function around the dict of current tasks by loop; ``.get`` of that dict
    is the same lookup without the frame (only with the private state enabled, and
    only where the dict is what ``current_task`` itself reads)."""
    found: Any = asyncio.current_task
    if PRIVATE_STATE and not isinstance(found, types.BuiltinFunctionType):
        tasks: Any = getattr(asyncio.tasks, "_current_tasks", None)
        tasks_type: object = type(cast(object, tasks))
        if tasks_type is dict:
            return cast("Callable[[asyncio.AbstractEventLoop], Any]", tasks.get)
    return cast("Callable[[asyncio.AbstractEventLoop], Any]", found)


_checked: dict[str, bool] = {}


def private_state_available(backend: str) -> bool:
    """Whether the private fast path is enabled and its state has the expected shape.

    Checked once per backend and process; a failed check selects the public-only
    implementation for good.
    """
    found = _checked.get(backend)
    if found is None:
        found = _checked[backend] = PRIVATE_STATE and _shape_ok(backend)
    return found


def _shape_ok(backend: str) -> bool:
    global _asyncio_states, _asyncio_data
    try:
        if backend == "asyncio":
            from anyio._backends import _asyncio as anyio_asyncio

            states: Any = vars(anyio_asyncio)["_task_states"]
            # Read through its dict of weak references (see _asyncio_data).
            states_type: object = type(cast(object, states))
            data: Any = getattr(states, "data", None)
            probe = anyio_asyncio.CancelScope()
            loop = asyncio.get_running_loop()
            ok = (
                states_type is weakref.WeakKeyDictionary
                and type(data) is dict
                and _task_of_loop()(loop) is asyncio.current_task()
                and "cancel_scope" in getattr(anyio_asyncio.TaskState, "__slots__", ())
                and hasattr(probe, "_parent_scope")
                and isinstance(getattr(probe, "_shield", None), bool)
                and callable(getattr(asyncio.Task, "uncancel", None))
                and hasattr(asyncio.current_task(), "_fut_waiter")
            )
            if ok:
                _asyncio_states = states
                _asyncio_data = cast(Any, data)
            return bool(ok)
        import trio

        task: Any = trio.lowlevel.current_task()
        status = task._cancel_status
        return (
            hasattr(task, "_abort_func")
            and callable(getattr(task, "_attempt_abort", None))
            and hasattr(status, "_parent")
            and isinstance(status._scope, trio.CancelScope)
            and callable(getattr(trio.Cancelled, "_create", None))
        )
    except Exception:  # anything unexpected: the public implementation
        return False


def _native_cancel_respected() -> bool:
    """Whether anyio's cancel scopes let a native ``Task.cancel()`` through when they
    are cancelled themselves at the same time (anyio >= 4.16 compares
    ``Task.cancelling()`` with what it saw on entry): before that, a task group inside
    a dependency absorbs the interruption, so the call keeps a scope of ours."""
    found = _checked.get("native")
    if found is None:
        from anyio._backends import _asyncio as anyio_asyncio

        probe = anyio_asyncio.CancelScope()
        found = _checked["native"] = hasattr(probe, "_cancelling_at_enter")
    return found


def mark() -> object:
    """The identity of the running task's innermost cancel scope, or :data:`UNKNOWN`.

    Two marks compare equal exactly when the task's cancel-scope stack is the same.
    Public-only mode (or state of an unexpected shape) gives :data:`UNKNOWN`, which
    equals nothing: callers then take their conservative path.
    """
    if asyncio._get_running_loop() is not None:
        if not private_state_available("asyncio"):
            return UNKNOWN
        state = _asyncio_data.get(weakref.ref(asyncio.current_task()))
        return None if state is None else state.cancel_scope
    if not private_state_available("trio"):
        return UNKNOWN
    import trio

    task: Any = trio.lowlevel.current_task()
    return task._cancel_status


def task_and_mark() -> tuple[object, object]:
    """:func:`current_task` and :func:`mark` in one step."""
    if asyncio._get_running_loop() is not None:
        task = asyncio.current_task()
        if not private_state_available("asyncio"):
            return task, UNKNOWN
        state = _asyncio_data.get(weakref.ref(task))
        return task, None if state is None else state.cancel_scope
    import trio

    trio_task: Any = trio.lowlevel.current_task()
    if not private_state_available("trio"):
        return trio_task, UNKNOWN
    return trio_task, trio_task._cancel_status


class TaskFunctions(NamedTuple):
    """What a container asks of the running event loop about tasks, chosen once."""

    #: The running task.
    current_task: Callable[[], object]
    #: The :func:`mark` of a task.
    mark_of: Callable[[object], object]
    #: The running task and its mark, in one step (a scope records both on entry).
    task_and_mark: Callable[[], tuple[object, object]]


def task_functions() -> TaskFunctions:
    """The :class:`TaskFunctions` of the running event loop (a container keeps them)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        if not private_state_available("asyncio"):

            def asyncio_task() -> object:
                return asyncio.current_task(loop)

            def asyncio_unknown() -> tuple[object, object]:
                return asyncio.current_task(loop), UNKNOWN

            return TaskFunctions(asyncio_task, _unknown_mark, asyncio_unknown)
        data = _asyncio_data
        ref = weakref.ref
        task_of = _task_of_loop()
        # One C call chain, no frame of ours (the calling task is asked for often).
        task_now: Callable[[], object] = functools.partial(task_of, loop)

        def asyncio_mark(task: object) -> object:
            state = data.get(ref(task))
            return None if state is None else state.cancel_scope

        def asyncio_both() -> tuple[object, object]:
            task = task_of(loop)
            state = data.get(ref(task))
            return task, None if state is None else state.cancel_scope

        return TaskFunctions(task_now, asyncio_mark, asyncio_both)
    import trio

    trio_task = trio.lowlevel.current_task
    if not private_state_available("trio"):

        def trio_unknown() -> tuple[object, object]:
            return trio_task(), UNKNOWN

        return TaskFunctions(trio_task, _unknown_mark, trio_unknown)

    def trio_mark(task: Any) -> object:
        return task._cancel_status

    def trio_both() -> tuple[object, object]:
        task: Any = trio_task()
        return task, task._cancel_status

    return TaskFunctions(trio_task, trio_mark, trio_both)


def context_reader() -> Callable[[Any], Context] | None:
    """How to copy a task's context variables from another task while it waits:
    trio's ``Task.context``, asyncio's ``Task.get_context()`` (Python >= 3.12), or on
    Python 3.11's asyncio (private) the context a task holds, the first of the
    objects it refers to. ``None``: there is no way, and a call copies its context in
    its own task whenever it may go concurrent. Called in a task, once per container.
    """
    if asyncio._get_running_loop() is None:
        return _trio_context
    task = asyncio.current_task()
    if hasattr(task, "get_context"):  # pragma: no cover - Python >= 3.12
        return _asyncio_context
    found = _checked.get("context")
    if found is None:
        found = _checked["context"] = PRIVATE_STATE and _held_context_found(task)
    return _held_context if found else None


def _trio_context(task: Any) -> Context:
    context: Context = task.context
    return context.copy()


def _asyncio_context(task: Any) -> Context:  # pragma: no cover - Python >= 3.12
    context: Context = task.get_context()
    return context.copy()


def _held_context(task: object) -> Context:
    context = gc.get_referents(task)[0]
    assert type(context) is Context
    return context.copy()


_PROBE: Final[ContextVar[object]] = ContextVar("anydepends_probe")


def _held_context_found(task: object) -> bool:
    """The running *task*'s first reference is the context it runs in: a variable
    set now reads back from it."""
    probe = object()
    token = _PROBE.set(probe)
    try:
        first = gc.get_referents(task)[:1]
        held = first[0] if first else None
        return type(held) is Context and held.get(_PROBE) is probe
    except Exception:  # anything unexpected: copy in the calling task
        return False
    finally:
        _PROBE.reset(token)


def _unknown_mark(task: object) -> object:
    return UNKNOWN


# -- supervision: interrupting the calling task's dependency ------------------------


class Supervised(Protocol):
    """What a supervision keeps per call (a call's state has these attributes)."""

    task: Any  # the calling task, once supervision opened (None: not opened)
    level0: Any  # the task's cancel-scope mark when the call started
    here: Any  # the mark now, while the call knows it (private paths only)
    sup: Any  # the supervision's own per-call data (None: nothing to close)


class Supervision:
    """Interrupts the dependency a call's calling task runs when a sibling fails.

    One object per container (chosen once per event loop); per-call data lives on
    the call's state, so a call that never goes concurrent allocates nothing for it.
    :meth:`open` runs, in a call of a plan whose dependencies may overlap, where the
    call may first suspend (generated code: before that no sibling runs, and the
    calling task's cancel-scope stack is as the call found it);
    :meth:`interrupt` asks for the interruption (from any task); :meth:`owns` tells
    whether an exception that reached the calling task is that interruption;
    :meth:`close` runs after the call's own teardown.
    """

    __slots__ = ()

    def open(self, call: Supervised) -> None:
        """Prepare, in the calling task, before the call may first suspend."""
        raise NotImplementedError

    def interrupt(self, call: Supervised) -> bool:
        """Interrupt the calling task's current wait; ``False``: ask again later."""
        raise NotImplementedError

    def owns(self, call: Supervised, exc: BaseException) -> bool:
        """Whether *exc*, caught in the calling task, is this interruption."""
        raise NotImplementedError

    def close(self, call: Supervised) -> None:
        """Undo :meth:`open`, in the calling task, after the call's teardown.

        Called only where the call's ``sup`` is set: a supervision that keeps
        nothing per call until it interrupts has nothing to undo before that.
        """


class ScopeSupervision(Supervision):
    """Public API only: a cancel scope of ours around the whole call.

    Opened before the call may first suspend (nothing before changed the cancel-
    scope stack), so everything the calling task runs after (and every cancel scope
    a dependency opens) nests inside it; cancelling it interrupts the calling task's
    dependency wherever it waits, exactly as a task group would.
    """

    __slots__ = ()

    def open(self, call: Supervised) -> None:
        scope = new_cancel_scope()
        scope.__enter__()
        call.task = current_task()
        call.sup = scope

    def interrupt(self, call: Supervised) -> bool:
        call.sup.cancel()
        return True

    def owns(self, call: Supervised, exc: BaseException) -> bool:
        return bool(call.sup.cancel_called) and isinstance(exc, cancelled_exc_class())

    def close(self, call: Supervised) -> None:
        # Never raises: the call converted our own cancellation already, and nothing
        # inside is still running.
        call.sup.__exit__(None, None, None)


class _Issued:
    """The interruptions one call issued (asyncio's fast path)."""

    __slots__ = ("issued", "seen", "waiter")

    def __init__(self) -> None:
        self.issued = 0
        self.seen = 0
        self.waiter: object = None


class TaskCancelSupervision(Supervision):
    """asyncio fast path: ``Task.cancel()``, no scope of ours at all.

    A native cancellation, which anyio's cancel scopes and task groups let through
    (anyio >= 4.16 compares ``Task.cancelling()`` with what it saw on entry) and which
    :meth:`owns` takes back with ``Task.uncancel()``, so nobody else's bookkeeping
    sees it. Private: the check that keeps anyio's semantics (while a shielded cancel
    scope opened inside the call, above the level :meth:`open` records, is open, the
    interruption waits, as anyio's own cancellation would), and the future the task
    waits on, to tell an interruption the dependency swallowed (it waits on something
    else now: interrupt again) from one on its way.
    """

    __slots__ = ("loop", "states", "task_of")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.states = _asyncio_data
        self.task_of = _task_of_loop()

    def open(self, call: Supervised) -> None:
        task = call.task = self.task_of(self.loop)
        state = self.states.get(weakref.ref(task))
        call.level0 = call.here = None if state is None else state.cancel_scope

    def interrupt(self, call: Supervised) -> bool:
        task: Any = call.task
        if task.done():
            return True
        waiter = task._fut_waiter
        if waiter is None or waiter.done():
            return False  # about to run: ask again
        issued: _Issued | None = call.sup
        if issued is None:
            issued = call.sup = _Issued()
        elif issued.issued > issued.seen:
            if waiter is issued.waiter:
                return False  # ours is on its way
            # It swallowed ours and waits on something else: take that one back.
            issued.seen += 1
            task.uncancel()
        state = self.states.get(weakref.ref(task))
        scope = None if state is None else state.cancel_scope
        level = call.level0
        while scope is not None and scope is not level:
            if scope._shield:
                return False  # the dependency shields itself: not now
            scope = scope._parent_scope
        issued.issued += 1
        issued.waiter = waiter
        task.cancel(_INTERRUPT)
        return False  # and look again: it may swallow it and wait on

    def owns(self, call: Supervised, exc: BaseException) -> bool:
        issued: _Issued | None = call.sup
        if issued is None or issued.issued == issued.seen:
            return False
        if not isinstance(exc, asyncio.CancelledError):
            return False
        # Ours (asyncio may have folded another cancellation into it: that one's
        # owner still counts its own request, and cancels again if it must).
        issued.seen += 1
        call.task.uncancel()
        return True

    def close(self, call: Supervised) -> None:
        issued: _Issued | None = call.sup
        if issued is not None:
            while issued.issued > issued.seen:  # one it swallowed, never taken back
                issued.seen += 1
                call.task.uncancel()


class TrioAbortSupervision(Supervision):
    """trio fast path: abort the calling task's blocking call, no scope at all.

    What trio itself does to deliver a cancellation (``Task._attempt_abort`` with a
    ``trio.Cancelled``), held back while a shielded cancel scope opened inside the
    call (below the level :meth:`open` records) is open. trio's cancellation is
    level-triggered (every checkpoint in a cancelled scope raises); this one is
    delivered once per blocking call, so the engine asks again every loop round while
    the dependency still runs: a ``Cancelled`` it swallowed, or that a cancelled scope
    of its own absorbed (a nursery's, say), does not stop it for good.
    """

    __slots__ = ()

    def open(self, call: Supervised) -> None:
        import trio

        task: Any = trio.lowlevel.current_task()
        call.task = task
        call.level0 = call.here = task._cancel_status

    def interrupt(self, call: Supervised) -> bool:
        import trio

        task = call.task
        if task._abort_func is None:
            return False  # running, or about to: ask again
        status = task._cancel_status
        level = call.level0
        while status is not None and status is not level:
            if status._scope.shield:
                return False  # the dependency shields itself: not now
            status = status._parent
        call.sup = True  # interrupted at least once

        def raise_cancel() -> None:
            raise trio.Cancelled._create()

        task._attempt_abort(raise_cancel)
        return False  # and look again: it may swallow it and block again

    def owns(self, call: Supervised, exc: BaseException) -> bool:
        # trio cannot tell one Cancelled from another: once we interrupted, a
        # cancellation reaching the call is ours (if another one came at the same
        # moment, the caller getting the dependency's failure instead is allowed).
        if call.sup is None:
            return False
        import trio

        return only_of(exc, trio.Cancelled)

    def close(self, call: Supervised) -> None:
        return None


def new_cancel_scope(*, shield: bool = False) -> Any:
    """A cancel scope of ours: trio's own on trio (cheaper than anyio's wrapper, and
    the same stack), anyio's on asyncio."""
    if asyncio._get_running_loop() is not None:
        return CancelScope(shield=shield)
    import trio

    return trio.CancelScope(shield=shield)


def supervision() -> Supervision:
    """The supervision of calls in the running event loop (chosen once per loop: a
    container keeps it)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        if private_state_available("asyncio") and _native_cancel_respected():
            return TaskCancelSupervision(loop)
    elif private_state_available("trio"):
        return TrioAbortSupervision()
    return ScopeSupervision()
