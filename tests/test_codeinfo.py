"""What the engine reads from a dependable's bytecode (``_codeinfo``), and that the
engine stays correct where that reading lets generated code skip its checks.

``may_suspend`` must never say "no" for code that can suspend: a coroutine suspends
only at a ``YIELD_VALUE`` of its own frame, so the answer is "no" only for a plain
coroutine function without one. Everything it cannot read counts as "may".
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from anydepends import Container, Depends
from anydepends._codeinfo import UNKNOWN, gen_info, may_suspend

from .helpers import prompt

# -- may_suspend -----------------------------------------------------------------------


async def returns() -> int:
    return 1


async def awaits() -> int:
    await anyio.lowlevel.checkpoint()
    return 1


async def async_with() -> int:
    async with anyio.Lock():
        return 1


async def async_for(source: Any) -> list[Any]:
    return [x async for x in source]


async def only_sync_comprehension() -> list[int]:
    return [x * 2 for x in range(3)]


async def awaits_only_in_a_nested_function() -> Callable[[], Awaitable[None]]:
    async def inner() -> None:
        await anyio.lowlevel.checkpoint()

    return inner


def sync_returning_a_coroutine() -> Awaitable[int]:
    return awaits()


@types.coroutine
def generator_based() -> Any:
    yield


class AsyncCallable:
    async def __call__(self) -> int:
        return 1


class AwaitingCallable:
    async def __call__(self) -> int:
        await anyio.lowlevel.checkpoint()
        return 1


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (returns, False),
        (awaits, True),
        (async_with, True),
        (async_for, True),
        (only_sync_comprehension, False),
        (awaits_only_in_a_nested_function, False),
        (sync_returning_a_coroutine, True),
        (generator_based, True),
        (AsyncCallable(), False),
        (AwaitingCallable(), True),
        (AsyncCallable().__call__, False),
        (functools.partial(returns), False),
        (functools.partial(awaits), True),
        (asyncio.sleep, True),
        (len, True),
    ],
)
def test_may_suspend(call: Any, expected: bool) -> None:
    """A coroutine function may suspend iff its own code awaits (``await``, ``async
    with``, ``async for``); a nested function's awaits are not its own. Partials,
    bound methods and callable instances are read through; anything that is not a
    plain coroutine function (a sync function returning an awaitable, a generator
    based coroutine, a builtin) may suspend."""
    assert may_suspend(call) is expected


# -- gen_info --------------------------------------------------------------------------


async def gen_plain() -> AsyncIterator[int]:
    yield 1


async def gen_waits_after_yield() -> AsyncIterator[int]:
    try:
        yield 1
    finally:
        await anyio.lowlevel.checkpoint()


async def gen_waits_before_yield_only() -> AsyncIterator[int]:
    await anyio.lowlevel.checkpoint()
    yield 1


async def gen_holds_a_scope() -> AsyncIterator[int]:
    with anyio.CancelScope():
        yield 1


async def gen_in_a_loop() -> AsyncIterator[int]:
    for i in range(2):
        await anyio.lowlevel.checkpoint()  # before the yield, but also after it
        yield i


@pytest.mark.parametrize(
    ("call", "waits", "holds"),
    [
        (gen_plain, False, False),
        (gen_waits_after_yield, True, False),
        (gen_waits_before_yield_only, False, False),
        (gen_holds_a_scope, False, True),
        (gen_in_a_loop, True, False),
    ],
)
def test_gen_info(call: Any, waits: bool, holds: bool) -> None:
    """An async generator's teardown "waits" iff code after its first yield (or in
    a loop around it) can suspend; it "may hold a scope" if it has a ``with`` block."""
    info = gen_info(call)
    assert (info.teardown_waits, info.may_hold_scope) == (waits, holds)


async def gen_waits_in_a_handler_before_yield() -> AsyncIterator[int]:
    try:
        value = int("x")
    except ValueError:
        await anyio.lowlevel.checkpoint()  # before the yield, whatever the layout
        value = 0
    yield value


async def gen_waits_in_async_with() -> AsyncIterator[int]:
    async with anyio.Lock():
        yield 1


async def gen_waits_in_async_for() -> AsyncIterator[int]:
    async for i in _numbers():
        yield i


async def _numbers() -> AsyncIterator[int]:
    yield 1


async def gen_loop_waits_after_yield_only() -> AsyncIterator[int]:
    for i in range(2):
        yield i
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    ("call", "setup_waits"),
    [
        (gen_plain, False),
        (gen_waits_after_yield, True),  # a failure before the yield runs the finally
        (gen_waits_before_yield_only, True),
        (gen_holds_a_scope, False),
        (gen_in_a_loop, True),
        (gen_waits_in_a_handler_before_yield, True),
        (gen_waits_in_async_with, True),
        (gen_waits_in_async_for, True),
        (gen_loop_waits_after_yield_only, False),
    ],
)
def test_gen_info_setup_waits(call: Any, setup_waits: bool) -> None:
    """An async generator's setup "waits" iff a suspension point can be reached
    from its start without passing its first yield, following jumps and exception
    handlers (never "no" for a setup that can suspend)."""
    assert gen_info(call).setup_waits is setup_waits


def test_gen_info_of_what_it_cannot_read_is_the_worst_case() -> None:
    """A callable that is not an async generator function reads as UNKNOWN: waits
    and holds."""
    assert gen_info(returns) is UNKNOWN
    assert gen_info(lambda: gen_plain()) is UNKNOWN
    assert UNKNOWN.setup_waits


# -- the engine where checks are skipped -------------------------------------------


async def test_a_dependency_that_cannot_wait_between_two_that_do() -> None:
    """A coroutine with no await of its own, placed between two that wait for each
    other, changes nothing: the waiting pair still overlaps (so the call went
    concurrent while or after the non-suspending one ran), every value arrives where
    it belongs, and each dependency runs once."""
    a_started, b_started = anyio.Event(), anyio.Event()
    runs: list[str] = []

    async def a() -> str:
        runs.append("a")
        a_started.set()
        await b_started.wait()
        return "a"

    async def plain(x: str = Depends(a)) -> str:
        runs.append("plain")
        return x + "+plain"

    async def b() -> str:
        runs.append("b")
        b_started.set()
        await a_started.wait()
        return "b"

    async def after(p: str = Depends(plain), y: str = Depends(b)) -> str:
        runs.append("after")
        return p + y

    async def root(z: str = Depends(after), p: str = Depends(plain)) -> str:
        return z + "|" + p

    with prompt():
        async with Container() as container:
            assert await container.call(root) == "a+plainb|a+plain"
            async with container.scope() as scope:
                assert await scope.call(root) == "a+plainb|a+plain"
    assert sorted(runs) == sorted(["a", "plain", "b", "after"] * 2)


async def test_a_failure_while_others_cannot_wait() -> None:
    """A sibling that waits and then fails still ends the call with its error when
    everything else cannot wait; nothing runs twice."""
    runs: list[str] = []

    async def plain1() -> int:
        runs.append("plain1")
        return 1

    async def failing() -> int:
        await anyio.lowlevel.checkpoint()
        raise LookupError("boom")

    async def plain2(x: int = Depends(plain1)) -> int:
        runs.append("plain2")
        return x + 1

    async def root(a: int = Depends(plain2), b: int = Depends(failing)) -> int:
        return a + b

    async with Container() as container:
        with pytest.raises(LookupError, match="boom"):
            await container.call(root)
    assert runs == ["plain1", "plain2"]
