"""Runner tasks kept between calls: a container's pool of idle workers.

A concurrent call runs the dependencies it does not run itself in runner tasks
(:mod:`._resolution`). Starting a task in anyio's task group costs far more than the
work of waking one that waits (measured on CPython 3.11, anyio 4.16: a task started,
run and finished ~20 µs on asyncio and ~25 µs on trio; waking a waiting task and
giving it a cancel scope ~10 µs on asyncio, ~8 µs on trio), and a fan-out of *k*
dependencies starts *k - 1* of them on its critical path. So a runner is a *job*
(a coroutine) given to a worker task: an idle worker of the container if there is
one, else a new one, started in the container's task group. A worker that finishes
its job waits for the next, unless :data:`IDLE_KEPT` workers wait already.

This is the one place where a call's speed depends on what came before it: a call
that needs more runners than there are idle workers starts tasks, as every call did
before there was a pool; what it does and in which task is the same either way.

Each job runs in its own copy of the calling task's context (:func:`in_context`:
every step of it inside ``Context.run``), in a cancel scope of its own that the
call cancels (:meth:`~._resolution.Resolution._runner`), so a worker outlives the
jobs it ran. Workers are the container's tasks: closing the container cancels them,
idle or not; a job given to a worker that is cancelled before the job started is
closed and reported (``abandoned``), never lost silently.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from contextvars import Context
from typing import Any, Final

import anyio

__all__ = ["IDLE_KEPT", "RunnerPool", "in_context"]

#: How many idle workers a container keeps: each holds ~5 KiB on asyncio, ~4 KiB
#: on trio while it waits (tracemalloc, 200 idle workers), so at most ~330 KiB.
IDLE_KEPT: Final = 64


class _Worker:
    """One worker task's mailbox: the job it is given and how to wake it."""

    __slots__ = ("abandoned", "ctx", "job", "wake")

    def __init__(
        self,
        job: Coroutine[Any, Any, None],
        ctx: Context,
        abandoned: Callable[[], None],
    ) -> None:
        self.job: Coroutine[Any, Any, None] | None = job
        self.ctx: Context | None = ctx
        # Called if the job is closed without having started (the worker was
        # cancelled first): what the job would have undone, it must.
        self.abandoned: Callable[[], None] | None = abandoned
        self.wake: anyio.Event | None = None


class RunnerPool:
    """A container's workers that wait for a job (see the module docstring)."""

    __slots__ = ("idle", "start_task")

    def __init__(self, start_task: Callable[[Coroutine[Any, Any, None]], object]):
        # Starts a task in the container's task group (raises once it closed).
        self.start_task = start_task
        self.idle: list[_Worker] = []  # the most recently idle last

    def run(
        self,
        job: Coroutine[Any, Any, None],
        ctx: Context,
        abandoned: Callable[[], None],
    ) -> None:
        """Run *job* in a worker, in *ctx*. If no worker can be started, this raises
        and *job* is left as it was (the caller closes it)."""
        idle = self.idle
        if idle:
            worker = idle.pop()
            worker.job, worker.ctx, worker.abandoned = job, ctx, abandoned
            wake, worker.wake = worker.wake, None
            assert wake is not None
            wake.set()
            return
        worker = _Worker(job, ctx, abandoned)
        task = self._work(worker)
        try:
            self.start_task(task)
        except BaseException:
            # Not started: the job was never handed to it (the caller has it).
            worker.job = worker.ctx = worker.abandoned = None
            task.close()
            raise

    async def _work(self, worker: _Worker) -> None:
        """A worker task: run the job it was given, then wait for the next."""
        idle = self.idle
        try:
            while True:
                job, ctx = worker.job, worker.ctx
                assert job is not None and ctx is not None
                worker.job = worker.ctx = worker.abandoned = None
                await in_context(ctx, job)
                # (No job or context kept while waiting for the next.)
                job = ctx = None
                if len(idle) >= IDLE_KEPT:
                    return
                wake = worker.wake = anyio.Event()
                idle.append(worker)
                await wake.wait()
                del wake
        finally:
            if worker.wake is not None:  # cancelled while idle
                worker.wake = None
                idle.remove(worker)
            left, abandoned = worker.job, worker.abandoned
            if left is not None:  # given a job, cancelled before it started
                worker.job = worker.ctx = worker.abandoned = None
                left.close()
                assert abandoned is not None
                abandoned()


@types.coroutine
def in_context(
    ctx: Context, coro: Coroutine[Any, Any, Any]
) -> Generator[Any, Any, Any]:
    """Run *coro* to the end in this task, every step of it inside *ctx* (await
    this): the task's own context is left alone. (The driver of
    :func:`._backend.drive`, with each step inside ``ctx.run``: kept apart, so that
    a step ``drive`` takes pays for no context it does not need.)"""
    run = ctx.run
    try:
        pending = run(coro.send, None)
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # thrown in by the loop: pass it on
                pending = run(coro.throw, exc)
            else:
                pending = run(coro.send, sent)
    except StopIteration as stop:
        return stop.value
    except BaseException:
        # What *coro* raised has this frame in its traceback: keep no reference to
        # what may hold it (see _backend.drive).
        del coro
        sent = None
        raise
