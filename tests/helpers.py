"""Tiny dependables of every kind and a recorder, shared by the core unit tests.

This module uses ``from __future__ import annotations`` (as every module here must),
so every annotation below is a string that anydepends resolves against this module's
globals: the dependables here double as the "string annotations" cases.

Nothing here sleeps: tests prove concurrency with events (see :func:`prompt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio

from anydepends import Depends, SecurityScopes

__all__ = [
    "AsyncCallable",
    "AsyncGenCallable",
    "GenCallable",
    "Pager",
    "Recorder",
    "SyncCallable",
    "Thing",
    "async_gen_value",
    "async_value",
    "here",
    "isolated",
    "one_round",
    "prompt",
    "sync_gen_value",
    "sync_value",
    "task_id",
]


class Recorder:
    """An ordered log of events, with counts.

    ``rec("a")`` appends ``"a"``; ``rec.count("a")`` counts it; ``rec.log`` is the
    list. ``rec.index("a")`` is the position of the first ``"a"``.
    """

    def __init__(self) -> None:
        self.log: list[Any] = []
        self._lock = threading.Lock()  # sync dependables log from worker threads

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.log.append(event)

    def count(self, event: Any) -> int:
        return self.log.count(event)

    def index(self, event: Any) -> int:
        return self.log.index(event)

    def before(self, first: Any, second: Any) -> bool:
        """Whether *first* was logged before *second* (both must be logged)."""
        return self.index(first) < self.index(second)

    def __repr__(self) -> str:
        return f"Recorder({self.log!r})"


def task_id() -> int:
    """The id of the running anyio task."""
    return anyio.get_current_task().id


def here() -> tuple[int, int]:
    """``(task id, thread id)`` of the running async code."""
    return task_id(), threading.get_ident()


async def one_round() -> None:
    """Wait one loop round the way a wait on anything does, so that the dispatcher
    registers it: on trio a checkpoint; on asyncio a checkpoint is a bare yield,
    which the dispatcher knows ends next round and does not register, so here the
    task waits on a future that is done already (the loop wakes it next round)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        await anyio.lowlevel.checkpoint()
        return
    future = loop.create_future()
    future.set_result(None)
    await _wait_on(future)


@types.coroutine
def _wait_on(future: asyncio.Future[None]) -> Generator[Any, Any, None]:
    """Give the task *future* to wait on, as ``await future`` would if it were not
    done (asyncio's protocol: a blocking future yielded to the task)."""
    future._asyncio_future_blocking = True
    yield future


@contextlib.contextmanager
def prompt(seconds: float = 5) -> Iterator[anyio.CancelScope]:
    """A safety net against hangs that must never be what ends the body.

    The body gets *seconds* to finish; if the net had to fire (even if the code under
    test then masked the cancellation with another exception), the test fails.
    """
    with anyio.CancelScope(deadline=anyio.current_time() + seconds) as scope:
        yield scope
    assert not scope.cancel_called, "the safety net fired: the code under test hung"


def isolated(
    backend: tuple[str, dict[str, Any]],
    scenario: Callable[[], Awaitable[Any]],
    seconds: float = 3,
) -> Any:
    """Run *scenario* on a fresh event loop of *backend* in a daemon thread.

    For scenarios that could hang in a way no cancellation reaches (a shielded wait
    that never ends): the test fails after *seconds* instead of hanging the suite.
    Returns the scenario's result; re-raises its exception.
    """
    name, options = backend
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = anyio.run(
                scenario, backend=name, backend_options=options
            )
        except BaseException as exc:  # reported to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="isolated scenario")
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the scenario hung for {seconds}s (uncancellable)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# -- one dependable of every kind (module level: string annotations resolve) ---------


async def async_value() -> str:
    """An async function."""
    return "async"


def sync_value() -> str:
    """A sync function."""
    return "sync"


async def async_gen_value() -> AsyncIterator[str]:
    """An async generator (a ``yield`` dependency)."""
    yield "async_gen"


def sync_gen_value() -> Iterator[str]:
    """A sync generator (a ``yield`` dependency)."""
    yield "sync_gen"


class Thing:
    """A class: the constructor is the dependable."""

    def __init__(self, value: Annotated[str, Depends(async_value)]) -> None:
        self.value = value


class Pager:
    """A class used through ``Depends()`` with the class as the annotation."""

    def __init__(self, size: int = 10) -> None:
        self.size = size


@dataclass(frozen=True)
class AsyncCallable:
    """An instance whose ``__call__`` is async (equal instances share a cache key)."""

    tag: str = "a"

    async def __call__(self, dep: str = Depends(sync_value)) -> str:
        return f"{self.tag}:{dep}"


@dataclass(frozen=True)
class SyncCallable:
    """An instance whose ``__call__`` is sync."""

    tag: str = "s"

    def __call__(self) -> str:
        return self.tag


@dataclass(frozen=True)
class GenCallable:
    """An instance whose ``__call__`` is a sync generator."""

    tag: str = "g"

    def __call__(self) -> Iterator[str]:
        yield self.tag


@dataclass(frozen=True)
class AsyncGenCallable:
    """An instance whose ``__call__`` is an async generator."""

    tag: str = "ag"

    async def __call__(self) -> AsyncIterator[str]:
        yield self.tag


def add(a: int, b: int) -> int:
    """A sync function for ``functools.partial``."""
    return a + b


async def async_add(a: int, b: int) -> int:
    """An async function for ``functools.partial``."""
    return a + b


def async_wrapper_of_sync(fn: Any) -> Any:
    """An async ``functools.wraps`` wrapper around a sync function."""

    @functools.wraps(fn)
    async def wrapper(**kwargs: Any) -> Any:
        return fn(**kwargs)

    return wrapper


def sync_wrapper_of_async(fn: Any) -> Any:
    """A sync ``functools.wraps`` wrapper around an async function (returns the
    coroutine, which is awaited because the wrapped function is async)."""

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        return fn(**kwargs)

    return wrapper


def needs_scopes(security_scopes: SecurityScopes) -> list[str]:
    """A dependable that declares ``SecurityScopes`` (injected by type)."""
    return security_scopes.scopes


async def annotated_chain(
    thing: Annotated[Thing, Depends()],
    pager: Pager = Depends(),
) -> tuple[str, int]:
    """String annotations all the way down: ``Annotated`` markers and ``Depends()``."""
    return thing.value, pager.size


def count_workers(monkeypatch: Any) -> list[object]:
    """Record every worker task (of a container's pool) a container's runtime
    starts from now on."""
    from anydepends._runtime import Runtime

    started: list[object] = []
    start_worker = Runtime._start_worker

    def counting(rt: Runtime, coro: Any) -> None:
        started.append(coro)
        start_worker(rt, coro)

    monkeypatch.setattr(Runtime, "_start_worker", counting)
    return started
