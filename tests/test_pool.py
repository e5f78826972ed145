"""The container's pool of worker tasks that run a concurrent call's runners
(docs/concepts.md, "Runner tasks"; ``anydepends._pool``).

What must hold: a call does the same thing whether its runners start new tasks or
reuse idle ones (results, context, failures); a worker keeps nothing of the calls it
ran once it waits; idle workers are capped; a job given to a worker that is cancelled
before it ran is closed and reported, never lost.
"""

from __future__ import annotations

import gc
import weakref
from contextvars import ContextVar, copy_context
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import Container, Depends, _pool

from .helpers import count_workers, prompt, task_id

request_id: ContextVar[object] = ContextVar("request_id", default=None)
held: ContextVar[object] = ContextVar("held", default=None)  # never changed by a job


def overlapping_pair() -> tuple[Any, dict[str, list[object]]]:
    """A root whose two dependencies each wait for the other (so the call goes
    concurrent: one of them runs in a runner), recording what each saw."""
    seen: dict[str, list[object]] = {"a": [], "b": [], "tasks": []}
    box: dict[str, anyio.Event] = {}

    async def a() -> str:
        seen["a"].append(request_id.get())
        seen["tasks"].append(task_id())
        box["a"].set()
        await box["b"].wait()
        request_id.set("changed by a")  # must not leak into a later call
        return "a"

    async def b() -> str:
        seen["b"].append(request_id.get())
        seen["tasks"].append(task_id())
        box["b"].set()
        await box["a"].wait()
        request_id.set("changed by b")
        return "b"

    async def root(x: str = Depends(a), y: str = Depends(b)) -> str:
        return x + y

    def fresh() -> None:
        box["a"], box["b"] = anyio.Event(), anyio.Event()

    seen["fresh"] = [fresh]
    return root, seen


async def test_a_worker_runs_the_runners_of_later_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first concurrent call starts a worker task for its runner; later calls
    give their runners to that worker (no new task), with the same results, in a
    task other than the caller's, one call after the other."""
    root, seen = overlapping_pair()
    started = count_workers(monkeypatch)
    with prompt():
        async with Container() as container:
            for i in range(3):
                seen["fresh"][0]()  # type: ignore[operator]
                token = request_id.set(i)
                try:
                    assert await container.call(root) == "ab"
                finally:
                    request_id.reset(token)
    assert len(started) == 1
    assert seen["a"] == seen["b"] == [0, 1, 2]  # each call's own context
    caller = task_id()
    runner_tasks = [t for t in seen["tasks"] if t != caller]
    assert len(runner_tasks) == 3 and len(set(runner_tasks)) == 1


async def test_context_changes_in_a_job_stay_in_that_job() -> None:
    """A dependency that sets a context variable in a runner changes its own copy of
    the caller's context only: neither the caller nor the next call that the same
    worker runs a job for sees it."""
    root, seen = overlapping_pair()
    with prompt():
        async with Container() as container:
            for i in range(2):
                seen["fresh"][0]()  # type: ignore[operator]
                token = request_id.set(f"call {i}")
                try:
                    assert await container.call(root) == "ab"
                    assert request_id.get() in {f"call {i}", "changed by a"}
                finally:
                    request_id.reset(token)
    # The dependency the caller ran itself may change the caller's context (as a
    # plain await would); the one in the runner never reaches the next call.
    assert seen["a"][1] == "call 1" or seen["b"][1] == "call 1"
    assert "changed by b" not in seen["a"] + seen["b"]


async def test_an_idle_worker_keeps_nothing_of_the_calls_it_ran() -> None:
    """Once a worker waits for its next job, the calls it ran jobs for (their
    context variables, their values) can be collected."""

    class Payload:
        pass

    root, seen = overlapping_pair()
    with prompt():
        async with Container() as container:
            refs: list[weakref.ref[Payload]] = []

            async def one_request() -> None:
                payload = Payload()
                refs.append(weakref.ref(payload))
                held.set(payload)
                assert await container.call(root) == "ab"

            seen["fresh"][0]()  # type: ignore[operator]
            async with anyio.create_task_group() as tg:
                tg.start_soon(one_request)
            seen.clear()
            await anyio.lowlevel.checkpoint()
            gc.collect()
            assert refs[0]() is None
            assert container._runtime.pool.idle  # the worker still waits


async def test_idle_workers_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that needed many runners leaves at most ``IDLE_KEPT`` idle workers;
    the others end."""
    monkeypatch.setattr(_pool, "IDLE_KEPT", 2)
    width = 6
    arrived = 0
    all_in = anyio.Event()

    async def leaf() -> int:
        nonlocal arrived
        arrived += 1
        if arrived == width:
            all_in.set()
        await all_in.wait()  # only returns once every leaf runs at once
        return 1

    leaves = [Depends(leaf, use_cache=False) for _ in range(width)]

    async def root(
        a: int = leaves[0],
        b: int = leaves[1],
        c: int = leaves[2],
        d: int = leaves[3],
        e: int = leaves[4],
        f: int = leaves[5],
    ) -> int:
        return a + b + c + d + e + f

    with prompt():
        async with Container() as container:
            assert await container.call(root) == width
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            assert len(container._runtime.pool.idle) == 2


async def test_a_job_given_to_a_worker_cancelled_before_it_ran_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the worker given a job is cancelled before it started the job (as when
    the container's task group is cancelled in the same round), the job is closed
    without running and ``abandoned`` is called once: the call's counts are undone
    there and it learns that the container went away."""
    ran: list[str] = []
    reported: list[str] = []

    async def job(name: str) -> None:
        ran.append(name)

    with prompt():
        async with anyio.create_task_group() as tg:

            class CancelledOnWake:
                """A wake-up after which the task group is cancelled at once."""

                def __init__(self) -> None:
                    self.inner = anyio.Event()

                def set(self) -> None:
                    self.inner.set()

                async def wait(self) -> None:
                    await self.inner.wait()
                    tg.cancel_scope.cancel()
                    await anyio.lowlevel.checkpoint()

            # The worker waits for its next job on one of these.
            monkeypatch.setattr(_pool, "anyio", SimpleNamespace(Event=CancelledOnWake))
            pool = _pool.RunnerPool(tg.create_task)
            ctx = copy_context()
            pool.run(job("first"), ctx, lambda: reported.append("first"))
            while not pool.idle:
                await anyio.lowlevel.checkpoint()
            second = job("second")
            pool.run(second, ctx, lambda: reported.append("second"))
            await anyio.sleep_forever()  # until the worker cancels the group
    assert ran == ["first"]
    assert reported == ["second"]
    assert pool.idle == []
    assert second.cr_frame is None  # closed, never run (no "never awaited")


async def test_workers_stopped_by_a_failure_or_a_cancellation_run_the_next_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runner stopped because its call failed, or because the caller cancelled
    the call, ends its job, not its worker: the next call's runner is given to the
    same worker (no new task) and runs normally, with no cancellation left over."""
    started = count_workers(monkeypatch)
    mode = "fail"
    events: dict[str, anyio.Event] = {}

    async def a() -> str:
        events["a"].set()
        await events["b"].wait()
        if mode != "ok":
            await anyio.sleep_forever()  # until the call stops it
        return "a"

    async def b() -> str:
        events["b"].set()
        await events["a"].wait()
        if mode == "fail":
            raise LookupError("b failed")
        if mode == "hang":
            await anyio.sleep_forever()
        await anyio.lowlevel.checkpoint()  # a wait after being cancelled elsewhere
        return "b"

    async def root(x: str = Depends(a), y: str = Depends(b)) -> str:
        return x + y

    def fresh() -> None:
        events["a"], events["b"] = anyio.Event(), anyio.Event()

    with prompt():
        async with Container() as container:
            fresh()
            with pytest.raises(LookupError):
                await container.call(root)
            assert len(started) == 1

            mode = "hang"
            fresh()
            async with anyio.create_task_group() as tg:
                with anyio.CancelScope() as cancel:

                    async def cancel_once_both_wait() -> None:
                        await events["a"].wait()
                        await events["b"].wait()
                        await anyio.wait_all_tasks_blocked()
                        cancel.cancel()

                    tg.start_soon(cancel_once_both_wait)
                    await container.call(root)
            assert cancel.cancelled_caught

            mode = "ok"
            for _ in range(2):
                fresh()
                assert await container.call(root) == "ab"
    assert len(started) == 1


async def test_a_closed_container_keeps_nothing_of_the_task_that_entered_it() -> None:
    """Workers run in the context of the task that entered the container; once the
    container is closed, a container object still referenced keeps none of that
    context's values alive."""

    class Payload:
        pass

    kept: list[Container] = []
    refs: list[weakref.ref[Payload]] = []

    async def application() -> None:
        payload = Payload()
        refs.append(weakref.ref(payload))
        held.set(payload)
        async with Container() as container:
            root, seen = overlapping_pair()
            seen["fresh"][0]()  # type: ignore[operator]
            assert await container.call(root) == "ab"  # starts a worker
        kept.append(container)

    with prompt():
        async with anyio.create_task_group() as tg:
            tg.start_soon(application)
    gc.collect()
    assert kept and refs[0]() is None
