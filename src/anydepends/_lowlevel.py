"""Low-level helpers the scheduler needs from the event loop, kept in one place.

- :class:`Drive` finishes a coroutine that was stepped once with ``send(None)`` and
  suspended, *in the task that stepped it*: the scheduler runs dependencies inline and
  only learns that one suspends when it does; finishing it in another task would break
  anyio cancel scopes and trio.
- :func:`current_task` is a cheap identity for the running task.
- :func:`cancel_scope_marker` reports which cancel scope is innermost in the running
  task, so the scheduler can tell whether a suspended dependency left a cancel scope
  open (then a scope of ours cannot be nested under it). It reads anyio's and trio's
  private state; if that ever changes shape it returns a fresh object, which reads as
  "changed", and the scheduler falls back to the conservative path.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = [
    "Drive",
    "cancel_scope_marker",
    "current_task",
    "in_cancelled_scope",
    "shield_open_scopes",
]


class Drive:
    """Awaitable that finishes *coro*, which already yielded *first* to the loop.

    *before_wait*, if given, runs each time *coro* is about to wait (teardowns use it
    to keep themselves shielded).
    """

    __slots__ = ("before_wait", "coro", "first")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        first: Any,
        before_wait: Callable[[], None] | None = None,
    ) -> None:
        self.coro = coro
        self.first = first
        self.before_wait = before_wait

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        pending = self.first
        before_wait = self.before_wait
        self.first = None
        while True:
            if before_wait is not None:
                before_wait()
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


def current_task() -> object:
    """The running task (asyncio ``Task`` or trio ``Task``)."""
    if asyncio._get_running_loop() is not None:
        return asyncio.current_task()
    import trio

    return trio.lowlevel.current_task()


_task_states: Any = None  # anyio's asyncio task states, looked up once
# The last asyncio task asked about, and its anyio state: a worker task asks again and
# again, and the weak-keyed lookup costs more than the rest of a small call.
_last_task: Any = None
_last_state: Any = None


def cancel_scope_marker() -> object:
    """An object identifying the innermost cancel scope of the running task."""
    global _task_states, _last_task, _last_state
    try:
        if asyncio._get_running_loop() is not None:
            task = asyncio.current_task()
            if _last_task is not None and _last_task() is task:
                state = _last_state
            else:
                if _task_states is None:
                    from anyio._backends import _asyncio

                    _task_states = getattr(_asyncio, "_task_states")  # noqa: B009
                state = _task_states.get(task)
                if state is not None:  # anyio creates it at the task's first scope
                    _last_task = weakref.ref(task)
                    _last_state = state
            return None if state is None else state.cancel_scope
        import trio

        trio_task: Any = trio.lowlevel.current_task()
        return trio_task._cancel_status
    except Exception:  # pragma: no cover - private state changed shape
        return object()


def in_cancelled_scope() -> bool:
    """Whether the running task would be cancelled at its next checkpoint (trio).

    asyncio delivers cancellation only to a task that waits, so there a shield
    entered just before the first wait is in time; trio raises at the checkpoint
    itself. Cheap on asyncio (always ``False``).
    """
    if asyncio._get_running_loop() is not None:
        return False
    import trio

    try:
        task: Any = trio.lowlevel.current_task()
        return bool(task._cancel_status.effectively_cancelled)
    except AttributeError:  # pragma: no cover - private state changed shape
        import math

        return trio.current_effective_deadline() == -math.inf


def shield_open_scopes(baseline: object) -> bool:
    """Shield the outermost cancel scope opened above *baseline* in this task.

    A teardown must not be cancelled from outside; when a generator's own cancel
    scope is open (held across its ``yield``, or opened by the teardown), no scope of
    ours can nest inside it, so the scope itself is shielded: its own deadline still
    applies, only outer cancellation is blocked. Returns ``False`` when no scope is
    open above *baseline* (then the caller can enter a shield scope of its own).
    """
    try:
        if asyncio._get_running_loop() is not None:
            scope: Any = cancel_scope_marker()
            if scope is None or scope is baseline:
                return False
            while scope._parent_scope is not baseline:
                scope = scope._parent_scope
                if scope is None:
                    return False
            scope.shield = True
            return True
        import trio

        status: Any = trio.lowlevel.current_task()
        status = status._cancel_status
        if status is baseline:
            return False
        while status.parent is not baseline:
            status = status.parent
            if status is None:
                return False
        status._scope.shield = True
        return True
    except Exception:  # pragma: no cover - private state changed shape
        return False
