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
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["Drive", "cancel_scope_marker", "current_task"]


class Drive:
    """Awaitable that finishes *coro*, which already yielded *first* to the loop."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        pending = self.first
        self.first = None
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


def current_task() -> object:
    """The running task (asyncio ``Task`` or trio ``Task``)."""
    if asyncio._get_running_loop() is not None:
        return asyncio.current_task()
    import trio

    return trio.lowlevel.current_task()


def cancel_scope_marker() -> object:
    """An object identifying the innermost cancel scope of the running task."""
    try:
        if asyncio._get_running_loop() is not None:
            from anyio._backends import _asyncio

            states: Any = getattr(_asyncio, "_task_states")  # noqa: B009
            state = states.get(asyncio.current_task())
            return None if state is None else state.cancel_scope
        import trio

        task: Any = trio.lowlevel.current_task()
        return task._cancel_status
    except Exception:  # pragma: no cover - private state changed shape
        return object()
