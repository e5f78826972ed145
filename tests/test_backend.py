"""The event-loop layer (``anydepends._backend``): the private fast paths, and the
public-API-only implementation every guarantee also holds on.

CI runs the whole suite twice: by default (private fast paths where the state has the
expected shape) and with ``ANYDEPENDS_PRIVATE_STATE=0``. The tests here check the
selection itself: what is chosen, that a changed shape falls back to the public paths
for good, and that the guarantees that depend on the choice hold either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from anydepends import Container, Depends, _backend

from .helpers import prompt, task_id


@pytest.fixture
def public_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The public-API-only implementation, as if the private state changed shape."""
    monkeypatch.setattr(_backend, "_checked", {})
    monkeypatch.setattr(_backend, "_shape_ok", lambda backend: False)
    yield


async def test_drive_finishes_a_suspended_coroutine_in_this_task() -> None:
    """``drive`` finishes a coroutine stepped once elsewhere, passing on what the loop
    sends and throws, and returns its value."""

    async def work() -> tuple[int, int]:
        first = task_id()
        await anyio.lowlevel.checkpoint()
        return first, task_id()

    coro = work()
    pending = coro.send(None)
    first, second = await _backend.drive(coro, pending)
    assert first == second == task_id()


async def test_the_private_state_is_used_when_it_has_the_expected_shape() -> None:
    """With the shape as expected, the private fast paths are selected (unless
    ``ANYDEPENDS_PRIVATE_STATE=0``): the mark of a task is its innermost cancel
    scope, and calls get the fast supervision."""
    backend = "trio" if _backend.is_trio() else "asyncio"
    if not _backend.PRIVATE_STATE:
        assert not _backend.private_state_available(backend)
        assert _backend.mark() is _backend.UNKNOWN
        return
    assert _backend.private_state_available(backend)
    outside = _backend.mark()
    with anyio.CancelScope():  # noqa: ASYNC100 - entered for its identity only
        inside = _backend.mark()
    assert inside is not outside
    assert _backend.mark() is outside
    supervision = _backend.supervision()
    # asyncio's fast supervision needs anyio >= 4.16 (see _native_cancel_respected).
    fast = backend == "trio" or _backend._native_cancel_respected()
    assert isinstance(supervision, _backend.ScopeSupervision) is not fast


async def test_a_changed_shape_selects_the_public_implementation(
    public_only: None,
) -> None:
    """When the private state is not where it is expected, nothing reads it: marks
    are unknown (equal to no mark) and calls are supervised by a scope of ours."""
    assert not _backend.private_state_available("asyncio")
    assert not _backend.private_state_available("trio")
    assert _backend.mark() is _backend.UNKNOWN
    assert isinstance(_backend.supervision(), _backend.ScopeSupervision)
    task, mark = _backend.task_and_mark()
    assert mark is _backend.UNKNOWN and task is _backend.current_task()


@pytest.mark.parametrize("mode", ["private", "public"])
async def test_guarantees_hold_on_both_implementations(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarantees that depend on the implementation hold on both: a failing
    sibling interrupts the calling task's dependency inside scopes of its own; a
    request-scoped generator holding a cancel scope across its ``yield`` is torn down
    in its setup task, shielded when the scope's body is cancelled."""
    if mode == "public":
        monkeypatch.setattr(_backend, "_checked", {})
        monkeypatch.setattr(_backend, "_shape_ok", lambda backend: False)
    error = KeyError("sibling")
    a_in = anyio.Event()
    log: list[Any] = []

    async def waits() -> None:
        a_in.set()
        try:
            with anyio.fail_after(60):
                await anyio.sleep_forever()
        except BaseException:
            log.append("interrupted")
            raise

    async def fails() -> None:
        await a_in.wait()
        raise error

    async def root(a: None = Depends(waits), b: None = Depends(fails)) -> None: ...

    async def held() -> AsyncIterator[int]:
        setup = task_id()
        with anyio.CancelScope():
            try:
                yield setup
            finally:
                await anyio.lowlevel.checkpoint()
                log.append(("torn down", setup == task_id()))

    async def uses(x: int = Depends(held)) -> int:
        return x

    with prompt():
        async with Container() as container:
            with pytest.raises(KeyError):
                await container.call(root)
            with anyio.CancelScope() as outer:
                async with container.scope() as scope:
                    await scope.call(uses)
                    outer.cancel()
                    await anyio.lowlevel.checkpoint()
    assert log == ["interrupted", ("torn down", True)]


@pytest.mark.parametrize("mode", ["private", "public"])
async def test_task_functions_agree_with_mark(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The functions a container keeps (``task_functions()``) give what
    :func:`current_task` and :func:`mark` give, outside and inside a cancel scope,
    on both implementations; ``task_and_mark`` is the two in one step."""
    if mode == "public":
        monkeypatch.setattr(_backend, "_checked", {})
        monkeypatch.setattr(_backend, "_shape_ok", lambda backend: False)
    functions = _backend.task_functions()
    for _ in range(2):
        task = functions.current_task()
        assert task is _backend.current_task()
        assert functions.mark_of(task) is _backend.mark()
        assert functions.task_and_mark() == (task, _backend.mark())
        with anyio.CancelScope():  # noqa: ASYNC100 - entered for its identity only
            assert functions.task_and_mark() == (task, _backend.mark())
            assert functions.mark_of(task) is _backend.mark()


@pytest.mark.parametrize(
    "replacement", [dict, "subclass"], ids=["plain dict", "WeakKeyDictionary subclass"]
)
def test_task_states_of_another_type_are_not_read(
    replacement: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anyio's asyncio task states are read through the dict of weak references
    inside a ``WeakKeyDictionary``: a store of any other type (a plain dict, a
    subclass that may index differently) fails the shape check, so the public paths
    are used."""
    import weakref

    from anyio._backends import _asyncio as anyio_asyncio

    class Subclass(weakref.WeakKeyDictionary[Any, Any]):
        pass

    store = dict() if replacement is dict else Subclass()  # noqa: C408
    monkeypatch.setattr(_backend, "_asyncio_states", None)
    monkeypatch.setattr(_backend, "_asyncio_data", None)
    monkeypatch.setattr(anyio_asyncio, "_task_states", store)

    async def check() -> bool:
        return _backend._shape_ok("asyncio")

    assert anyio.run(check, backend="asyncio") is False
    assert _backend._asyncio_data is None


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_the_current_task_lookup_is_asyncio_s_own(
    private: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-call lookup of asyncio's current task gives what
    ``asyncio.current_task()`` gives, in the main task and in tasks it starts; with
    the private state disabled it is ``asyncio.current_task`` itself."""
    import asyncio

    monkeypatch.setattr(_backend, "PRIVATE_STATE", private)
    task_of = _backend._task_of_loop()
    if not private:
        assert task_of is asyncio.current_task

    async def check() -> None:
        loop = asyncio.get_running_loop()
        seen: list[bool] = [task_of(loop) is asyncio.current_task()]

        async def child() -> None:
            seen.append(task_of(loop) is asyncio.current_task())

        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
        assert seen == [True, True]

    anyio.run(check, backend="asyncio")


def test_frame_values_read_a_suspended_coroutine_s_locals() -> None:
    """``frame_values`` gives the locals after an argument of a suspended coroutine,
    in order (where the private read is available), without materialising its frame
    object; unavailable, it says so (``None``) and callers read ``cr_frame``."""
    import types

    @types.coroutine
    def suspend() -> Any:
        yield None

    anchor, x, y = object(), object(), object()

    async def coro_fn(first: object, second: object) -> object:
        a, b = x, y
        await suspend()
        return (first, second, a, b)

    coro = coro_fn(object(), anchor)
    try:
        coro.send(None)
        found = _backend.frame_values(coro, anchor, 2)
        if not _backend.PRIVATE_STATE:
            assert found is None
        else:
            assert found is not None and found[0] is x and found[1] is y
        assert _backend.frame_values(coro, object(), 2) is None  # no such argument
    finally:
        coro.close()


@pytest.mark.parametrize("readable", [True, False], ids=["referents", "cr_frame"])
async def test_going_concurrent_reads_earlier_results_either_way(
    readable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a call goes concurrent, the dependencies that start elsewhere get the
    results computed before the wait, read from the calling frame by either method."""
    readable = readable and _backend.PRIVATE_STATE
    monkeypatch.setitem(_backend._checked, "frames", readable)
    release = anyio.Event()

    async def base() -> str:
        return "base"

    async def other() -> str:
        return "other"

    async def waits(b: str = Depends(base)) -> str:
        await release.wait()
        return b + "+waited"

    async def sibling(b: str = Depends(base), o: str = Depends(other)) -> str:
        release.set()  # runs while `waits` waits: only if the call went concurrent
        return b + "+" + o

    async def root(w: str = Depends(waits), s: str = Depends(sibling)) -> str:
        return w + "|" + s

    with prompt():
        async with Container() as container:
            assert await container.call(root) == "base+waited|base+other"
            async with container.scope() as scope:
                assert await scope.call(root) == "base+waited|base+other"


async def test_the_context_reader_copies_a_waiting_tasks_context() -> None:
    """The container's way to read a task's context from another task (None only
    with the public paths on Python 3.11's asyncio) gives a copy of the context the
    task runs in, taken while it waits: what the task set before is in it, and
    setting a variable in the copy leaves the task's own context alone."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    reader = _backend.context_reader()
    if reader is None:
        assert not _backend.PRIVATE_STATE and not _backend.is_trio()
        return
    waiting, release = anyio.Event(), anyio.Event()
    tasks: list[object] = []
    seen: list[str] = []

    async def task() -> None:
        var.set("the task's")
        tasks.append(_backend.current_task())
        waiting.set()
        await release.wait()
        seen.append(var.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(task)
        await waiting.wait()
        copy = reader(tasks[0])
        assert copy.get(var) == "the task's"
        copy.run(var.set, "the copy's")
        release.set()
    assert seen == ["the task's"]
    assert var.get() == "unset"


@pytest.mark.parametrize("mode", ["default", "changed shape"])
async def test_runner_tasks_get_the_callers_context_either_way(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the context of a waiting task can be read from another task or the
    call copies its own (the held context not where expected: the public path),
    a dependency that runs in a runner task sees what the caller set."""
    import contextvars

    if mode == "changed shape":
        monkeypatch.setattr(_backend, "_checked", {})
        monkeypatch.setattr(_backend, "_held_context_found", lambda task: False)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    release = anyio.Event()
    seen: list[tuple[str, int]] = []

    async def waits() -> None:
        await release.wait()

    async def sibling() -> None:
        await anyio.lowlevel.checkpoint()
        seen.append((var.get(), task_id()))
        release.set()  # runs while `waits` waits: only if the call went concurrent

    async def root(w: None = Depends(waits), s: None = Depends(sibling)) -> None:
        pass

    with prompt():
        async with Container() as container:
            if mode == "changed shape" and not _backend.is_trio():
                assert container._runtime.context_of is None
            var.set("the caller's")
            await container.call(root)
    assert seen[0][0] == "the caller's"
    assert seen[0][1] != task_id()
