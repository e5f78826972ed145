"""What a container lends the calls made in it: app memo, exits, limits, tasks.

A :class:`Runtime` is owned by one :class:`~anydepends.Container` and handed down to
the engine, so nothing below the container ever reaches into it: the engine asks the
runtime to spawn a helper task or to run a runner in one of its workers
(:mod:`._pool`), and gets a :class:`~anydepends.UsageError` once the container has
closed; it asks for the limiter of a ``max_concurrency`` declaration, and for
the memo and exit list of the app lifetime.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import Context, copy_context
from typing import Any, Final

from anyio import CapacityLimiter
from anyio.abc import TaskGroup

from ._backend import (
    UNKNOWN,
    ScopeSupervision,
    Supervision,
    cancelled_exc_class,
    context_reader,
    current_task,
    running_asyncio_loop,
    supervision,
    task_functions,
)
from ._dispatch import Dispatcher
from ._errors import UsageError
from ._hosting import HostedExit
from ._pool import RunnerPool
from ._resolution import go_concurrent

__all__ = ["Runtime"]


class Runtime:
    """The application lifetime's state, as the engine sees it."""

    __slots__ = (
        "app_exits",
        "app_memo",
        "cancelled",
        "context_of",
        "current_task",
        "dispatcher",
        "home",
        "hosts",
        "limiters",
        "mark_of",
        "open",
        "pool",
        "sequential",
        "supervision",
        "sync_to_thread",
        "task_and_mark",
        "tg",
    )

    def __init__(self, *, sequential: bool, sync_to_thread: bool) -> None:
        self.app_memo: dict[Any, Any] = {}
        self.app_exits: list[Any] = []
        self.limiters: dict[object, CapacityLimiter] = {}
        self.hosts: dict[HostedExit, None] = {}  # hosts alive, oldest first
        self.tg: TaskGroup | None = None
        self.open = False
        self.sequential = sequential
        self.sync_to_thread = sync_to_thread
        self.dispatcher = Dispatcher(self.spawn, go_concurrent)
        self.pool = RunnerPool(self._start_worker)
        # The context of the task that entered the container (workers run in it).
        self.home: Context | None = None
        self.supervision: Supervision = ScopeSupervision()
        self.current_task: Callable[[], object] = current_task
        self.mark_of: Callable[[object], object] = _no_mark
        self.task_and_mark: Callable[[], tuple[object, object]] = _task_no_mark
        # A copy of a waiting task's context, taken from another task (None: only
        # the task itself can take one, see _resolution).
        self.context_of: Callable[[Any], Context] | None = None
        # The event loop's cancellation exception (known once started in one).
        self.cancelled: type[BaseException] = _NotStarted

    def start(self, tg: TaskGroup) -> None:
        """The container was entered (in the running event loop) with *tg*."""
        self.tg = tg
        self.home = copy_context()
        self.supervision = supervision()
        self.dispatcher.loop = running_asyncio_loop()
        self.current_task, self.mark_of, self.task_and_mark = task_functions()
        self.context_of = context_reader()
        self.cancelled = cancelled_exc_class()
        self.open = True
        self.dispatcher.start()

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Start ``fn(*args)`` (a helper task) in the container's task group."""
        tg = self.tg
        if not self.open or tg is None:
            raise _closed()
        tg.start_soon(fn, *args)

    def start_runner(
        self,
        job: Coroutine[Any, Any, None],
        ctx: Context,
        abandoned: Callable[[], None],
    ) -> None:
        """Run *job* (a call's runner) in *ctx*, in a worker task of the container
        (:mod:`._pool`); *abandoned* is called if the container's task group cancels
        that worker before the job started. Raises (leaving *job* as it was) if
        no worker can be started."""
        if not self.open:
            raise _closed()
        self.pool.run(job, ctx, abandoned)

    def _start_worker(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start a worker of the pool in the container's task group, in the
        container's own context (a worker outlives the calls it runs jobs for: it
        keeps no caller's context variables alive)."""
        tg = self.tg
        if not self.open or tg is None:
            raise _closed()
        tg.create_task(coro, name=_RUNNER_NAME, context=self.home)

    def limiter(self, limit: tuple[object, int]) -> CapacityLimiter:
        """The limiter shared by every use of one ``max_concurrency`` declaration."""
        token, total = limit
        found = self.limiters.get(token)
        if found is None:
            found = self.limiters[token] = CapacityLimiter(total)
        return found


#: The name of every worker task that runs runners (in task dumps and debuggers).
_RUNNER_NAME: Final = "anydepends runner"


def _closed() -> UsageError:
    msg = "the container was closed while a call still needed it"
    return UsageError(
        msg,
        hint="close the container only after the calls made in it have returned",
    )


class _NotStarted(BaseException):
    """Never raised: :attr:`Runtime.cancelled` until the container starts."""


def _no_mark(task: object) -> object:
    return UNKNOWN


def _task_no_mark() -> tuple[object, object]:
    return current_task(), UNKNOWN
