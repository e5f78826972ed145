"""Where a call's supervision opens (docs/concepts.md, "Supervision").

A plan whose dependencies may overlap is supervised: a sibling's failure interrupts
whatever the calling task runs. Supervision opens where the call may first suspend
(before that no sibling can be running, and nothing has changed the calling task's
cancel-scope stack, so the level it records is the call's start): a call that never
suspends never opens it; one that suspends opens it exactly once, before the first
suspension, also where that is the helper branch of a yield dependency set up by
another task; every opened supervision is closed once. On every supervision
implementation (CI runs the suite with ``ANYDEPENDS_PRIVATE_STATE=0`` too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import Container, Depends, Scope
from anydepends._backend import ScopeSupervision, Supervision

from .helpers import Recorder, prompt


class Counting(Supervision):
    """Wraps the container's supervision, counting opens and closes."""

    def __init__(self, inner: Supervision) -> None:
        self.inner = inner
        self.opens = 0
        self.closes = 0

    def open(self, call: Any) -> None:
        self.opens += 1
        self.inner.open(call)

    def interrupt(self, call: Any) -> bool:
        return self.inner.interrupt(call)

    def owns(self, call: Any, exc: BaseException) -> bool:
        return self.inner.owns(call, exc)

    def close(self, call: Any) -> None:
        self.closes += 1
        self.inner.close(call)


def counting(container: Container) -> Counting:
    """Install a counting supervision on an open container."""
    rt = container._runtime
    wrapper = Counting(rt.supervision)
    rt.supervision = wrapper
    return wrapper


async def settings() -> object:
    return object()


async def conn(s: object = Depends(settings)) -> AsyncIterator[object]:
    try:
        yield ("conn", s)
    finally:
        pass


async def left(c: object = Depends(conn)) -> object:
    return ("left", c)


async def right(s: object = Depends(settings)) -> object:
    return ("right", s)


async def never_waits(a: object = Depends(left), b: object = Depends(right)) -> Any:
    return (a, b)


async def right_waits(s: object = Depends(settings)) -> object:
    await anyio.lowlevel.checkpoint()
    return ("right", s)


async def waits(a: object = Depends(left), b: object = Depends(right_waits)) -> Any:
    return (a, b)


async def test_a_call_that_cannot_suspend_opens_no_supervision() -> None:
    """A fan-out plan whose dependencies never suspend (an in-place yield dependency
    included) is never supervised: container.call and scope.call alike."""
    async with Container() as container:
        sup = counting(container)
        await container.call(never_waits)
        async with container.scope() as scope:
            await scope.call(never_waits)
            await scope.call(never_waits)  # with lookups now
        assert (sup.opens, sup.closes) == (0, 0)


async def test_a_call_that_may_suspend_opens_it_once() -> None:
    """A dependency that may suspend: supervision opens once per call, before it."""
    async with Container() as container:
        sup = counting(container)
        await container.call(waits)
        async with container.scope() as scope:
            await scope.call(waits)
        assert sup.opens == 2


async def test_the_helper_branch_of_a_yield_dependency_opens_it() -> None:
    """A scope called from a task other than its own: the yield dependency is set
    up by a helper task (the only suspension), and supervision opens right before."""
    results: list[Any] = []
    async with Container() as container, container.scope() as scope:
        sup = counting(container)

        async def other(scope: Scope) -> None:
            results.append(await scope.call(never_waits))

        async with anyio.create_task_group() as tg:
            tg.start_soon(other, scope)
        assert sup.opens == 1
        assert results[0][0][1] == ("conn", results[0][1][1])


@pytest.mark.parametrize("where", ["container", "scope", "other task"])
async def test_a_failure_interrupts_the_calling_task_after_a_late_open(
    where: str,
) -> None:
    """Supervision opened late still interrupts the calling task: a sibling fails
    while the calling task waits (in a dependency, or while a helper task sets up a
    yield dependency), the call raises the failure at once, and everything set up
    is torn down once."""
    rec = Recorder()
    forever = anyio.Event()

    async def gen(s: object = Depends(settings)) -> AsyncIterator[object]:
        rec("set up")
        try:
            yield s
        finally:
            rec("torn down")

    async def blocks(g: object = Depends(gen)) -> object:
        await forever.wait()
        return g

    async def fails(s: object = Depends(settings)) -> object:
        await anyio.lowlevel.checkpoint()
        raise LookupError("sibling")

    async def root(a: object = Depends(blocks), b: object = Depends(fails)) -> Any:
        return (a, b)

    with prompt():
        async with Container() as container:
            if where == "container":
                with pytest.raises(LookupError):
                    await container.call(root)
            else:
                async with container.scope() as scope:
                    if where == "scope":
                        with pytest.raises(LookupError):
                            await scope.call(root)
                    else:
                        caught: list[BaseException] = []

                        async def other() -> None:
                            try:
                                await scope.call(root)
                            except LookupError as exc:
                                caught.append(exc)

                        async with anyio.create_task_group() as tg:
                            tg.start_soon(other)
                        assert len(caught) == 1
    assert rec.log == ["set up", "torn down"]


async def test_every_opened_cancel_scope_is_closed_once() -> None:
    """With the public-only supervision (a cancel scope of ours per call), every
    scope opened, late or not, is closed once, whether the call returns or fails."""

    async def fails_late(
        a: object = Depends(left), b: object = Depends(right_waits)
    ) -> Any:
        raise LookupError("root")

    async with Container() as container:
        sup = Counting(ScopeSupervision())
        container._runtime.supervision = sup
        await container.call(waits)
        await container.call(never_waits)
        with pytest.raises(LookupError):
            await container.call(fails_late)
        async with container.scope() as scope:
            await scope.call(waits)
            await scope.call(never_waits)
            with pytest.raises(LookupError):
                await scope.call(fails_late)
        assert sup.opens == 4
        assert sup.closes == sup.opens
