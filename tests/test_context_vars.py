"""Context variables and helper tasks (docs/concepts.md, "Context variables").

Context variables set before a call are visible to every dependency of the call,
whichever task runs it: a runner task starts with a copy of the *calling* task's
context, never with that of the task that happened to spawn it (the container's
dispatcher decides when a call goes concurrent, in a task of its own). Each call
sees its own caller's values when calls from several tasks overlap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import anyio
import pytest

from anydepends import Container, Depends

pytestmark = pytest.mark.anyio

REQUEST_ID: ContextVar[str] = ContextVar("REQUEST_ID", default="unset")


class Seen:
    """What each dependency saw, and in which task it ran."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.tasks: dict[str, int] = {}
        self.released = anyio.Event()

    def note(self, name: str) -> None:
        self.values[name] = REQUEST_ID.get()
        self.tasks[name] = anyio.get_current_task().id


def overlapping_graph(seen: Seen) -> Any:
    """A root over ``slow``, which waits until ``other`` ran, and ``other``: so
    ``other`` runs while ``slow`` waits, in a runner task; ``after`` depends on
    ``other`` and runs where it becomes ready; ``gen`` is a ``yield`` dependency
    set up beside ``slow`` too; ``quick`` cannot suspend, and runs in the task that
    decides the call goes concurrent."""

    async def slow() -> int:
        seen.note("slow")
        await seen.released.wait()
        return 1

    async def other() -> int:
        await anyio.lowlevel.checkpoint()
        seen.note("other")
        seen.released.set()
        return 2

    async def after(o: int = Depends(other)) -> int:
        seen.note("after")
        return o + 1

    async def quick() -> int:  # cannot suspend: run by the dispatcher itself
        seen.note("quick")
        return 0

    async def gen() -> AsyncIterator[int]:
        await anyio.lowlevel.checkpoint()
        seen.note("gen setup")
        yield 3
        seen.note("gen teardown")

    async def root(
        s: int = Depends(slow),
        a: int = Depends(after),
        g: int = Depends(gen),
        q: int = Depends(quick),
    ) -> int:
        seen.note("root")
        return s + a + g + q

    return root


async def call_with(container: Container, entry: str, root: Any) -> Any:
    if entry == "scope":
        async with container.scope() as scope:
            return await scope.call(root)
    return await container.call(root)


@pytest.mark.parametrize("entry", ["call", "scope"])
async def test_runner_tasks_see_the_callers_context(entry: str) -> None:
    """A dependency that runs in a runner task (beside one that waits in the
    calling task) sees the context variables the caller set before the call, as
    do a ``yield`` dependency's setup and teardown and the root; the container was
    entered in another context, which none of them sees."""
    seen = Seen()
    root = overlapping_graph(seen)
    REQUEST_ID.set("container")
    async with Container() as container:
        result: list[int] = []

        async def request() -> None:
            REQUEST_ID.set("request-1")
            result.append(await call_with(container, entry, root))

        async with anyio.create_task_group() as tg:
            tg.start_soon(request)
    assert result == [7]
    # The test is about runner tasks: other really ran in a task of its own.
    assert seen.tasks["other"] != seen.tasks["slow"]
    assert seen.tasks["quick"] != seen.tasks["slow"]
    assert seen.values == dict.fromkeys(
        ["slow", "other", "after", "gen setup", "gen teardown", "quick", "root"],
        "request-1",
    )


async def test_overlapping_calls_each_see_their_own_caller() -> None:
    """Two calls from two tasks, overlapping, each going concurrent: every
    dependency of each call sees the value its own caller set."""
    seen = {name: Seen() for name in ("a", "b")}
    roots = {name: overlapping_graph(s) for name, s in seen.items()}
    async with Container() as container:

        async def request(name: str) -> None:
            REQUEST_ID.set(f"request-{name}")
            assert await container.call(roots[name]) == 7

        async with anyio.create_task_group() as tg:
            for name in roots:
                tg.start_soon(request, name)
    for name, s in seen.items():
        assert s.tasks["other"] != s.tasks["slow"] != s.tasks["quick"]
        assert set(s.values.values()) == {f"request-{name}"}
