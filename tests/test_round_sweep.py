"""Cancellation, failure and closing at every loop round of a call's life.

A call decides to go concurrent a fixed number of loop rounds after a dependency
starts waiting (``docs/concepts.md``, "How a call runs"); its runner tasks start one
round later; teardowns follow. These sweeps count rounds with checkpoints (no clocks)
and strike at each round from the first to well past the end, so every strike lands
somewhere different: before the decision, at it, while runners start, while they
wait, during teardown. What must hold at every one is in ``docs/semantics.md``
(failure and cancellation, teardown, closing): each ``yield`` dependency set up is
torn down exactly once, the caller gets its result, the original exception or the
cancellation (never a group mixing them), a permit is never lost, and the container
keeps working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from anydepends import Container, Depends, UsageError

pytestmark = pytest.mark.anyio

ROUNDS = 14  # strikes at rounds 0..13: past the end of every shape below

Root = Callable[..., Coroutine[Any, Any, Any]]


class Boom(Exception):
    """The failure a dependency raises on purpose."""


async def rounds(n: int) -> None:
    """Let the event loop run *n* rounds."""
    for _ in range(n):
        await checkpoint()


def balanced(log: list[str], *names: str, once: bool = True) -> None:
    """Every setup in *log* has exactly one teardown (and, if *once*, there was at
    most one setup)."""
    for name in names:
        ups, downs = log.count(f"{name}+"), log.count(f"{name}-")
        assert ups == downs, f"{name}: {ups} set up, {downs} torn down: {log}"
        assert not once or ups <= 1, f"{name} set up {ups} times: {log}"


def logged(log: list[str], name: str, wait: int) -> Callable[[], AsyncIterator[str]]:
    """A ``yield`` dependency that logs ``name+``, waits *wait* rounds, yields *name*
    and logs ``name-`` when torn down (a new callable each time: its own cache key)."""

    async def dependency() -> AsyncIterator[str]:
        log.append(f"{name}+")
        try:
            await rounds(wait)
            yield name
        finally:
            log.append(f"{name}-")

    return dependency


def waits_then(value: str, wait: int, fail: list[bool]) -> Root:
    """A dependency that waits *wait* rounds, then fails while ``fail[0]``, else
    returns *value*."""

    async def dependency() -> str:
        await rounds(wait)
        if fail[0]:
            raise Boom(value)
        return value

    return dependency


def fan(log: list[str], ka: int, kb: int, kc: int, fail: bool) -> Root:
    """A request-scoped and a function-scoped ``yield`` dependency, dependencies that
    wait *ka*, *kb* and *kc* rounds (the last one failing if *fail*), and a sync one."""

    conn = logged(log, "conn", 0)
    b = logged(log, "b", kb)
    c = waits_then("c", kc, [fail])

    async def a(connection: str = Depends(conn)) -> str:
        await rounds(ka)
        return "a"

    def s() -> str:
        return "s"

    async def root(
        x: str = Depends(a),
        y: str = Depends(b, scope="function"),
        z: str = Depends(c),
        w: str = Depends(s, sync_to_thread=False),
    ) -> tuple[str, ...]:
        return (x, y, z, w)

    return root


FAN_SHAPES = [(6, 3, 4, False), (6, 3, 4, True), (2, 6, 5, True), (4, 4, 0, True)]


async def call_by(container: Container, entry: str, root: Root) -> Any:
    """*root* through ``container.call`` or a scope's ``call``."""
    if entry == "call":
        return await container.call(root)
    async with container.scope() as scope:
        return await scope.call(root)


async def outcome_of(call: Callable[[], Coroutine[Any, Any, Any]]) -> str:
    """Run *call*: ``ok``, ``boom`` or ``usage``; a cancellation propagates."""
    try:
        result = await call()
    except Boom:
        return "boom"
    except UsageError:
        return "usage"
    assert result == ("a", "b", "c", "s"), result
    return "ok"


async def still_works(container: Container) -> None:
    """A fresh call on *container* completes and tears down what it set up."""
    log: list[str] = []
    with anyio.fail_after(10):
        assert await container.call(fan(log, 1, 1, 1, False)) == ("a", "b", "c", "s")
    balanced(log, "conn", "b")
    assert log.count("conn+") == 1


def entries() -> Iterator[Any]:
    """Every entry point, concurrent and sequential."""
    for entry in ("call", "scope"):
        for sequential in (False, True):
            yield pytest.param(entry, sequential, id=f"{entry}-seq{int(sequential)}")


async def cancelled_at(container: Container, entry: str, root: Root, n: int) -> str:
    """Call *root*, cancelling the caller's own scope at round *n*: the outcome."""
    got = "cancelled"
    with anyio.CancelScope() as scope:

        async def strike() -> None:
            await rounds(n)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(strike)
            got = await outcome_of(lambda: call_by(container, entry, root))
    return got


@pytest.mark.parametrize(("entry", "sequential"), list(entries()))
async def test_a_caller_cancelled_at_any_round(entry: str, sequential: bool) -> None:
    """Whichever round the caller's own cancel scope is cancelled in (also while its
    dependencies go concurrent, or while one of them fails): what was set up is torn
    down exactly once, the caller gets the cancellation, the failure or the result,
    and the container keeps working. Every outcome occurs over the sweep."""
    seen: set[str] = set()
    async with Container(sequential=sequential) as container:
        for ka, kb, kc, fail in FAN_SHAPES:
            for n in range(ROUNDS):
                log: list[str] = []
                got = await cancelled_at(
                    container, entry, fan(log, ka, kb, kc, fail), n
                )
                where = f"shape {(ka, kb, kc, fail)}, round {n}: {got}"
                assert got in ("ok", "boom", "cancelled"), where
                assert got != "ok" or not fail, where
                balanced(log, "conn", "b")
                seen.add(got)
                await still_works(container)
    assert {"ok", "boom", "cancelled"} <= seen, seen


async def closed_at(entry: str, sequential: bool, root: Root, n: int) -> list[str]:
    """Call *root* in another task and close its container at round *n*: the
    outcomes the caller saw."""
    got: list[str] = []
    container = Container(sequential=sequential)

    async def caller() -> None:
        got.append(await outcome_of(lambda: call_by(container, entry, root)))

    async with anyio.create_task_group() as tg:
        await container.__aenter__()
        tg.start_soon(caller)
        await rounds(n)
        await container.__aexit__(None, None, None)
    return got


@pytest.mark.parametrize(("entry", "sequential"), list(entries()))
async def test_the_container_closed_at_any_round(entry: str, sequential: bool) -> None:
    """Whichever round the container is closed in while another task's call is in
    flight: the call completes (result or its own failure) or gets a ``UsageError``,
    never a cancellation it did not ask for; everything set up is torn down once."""
    seen: set[str] = set()
    for ka, kb, kc, fail in FAN_SHAPES:
        for n in range(ROUNDS):
            log: list[str] = []
            got = await closed_at(entry, sequential, fan(log, ka, kb, kc, fail), n)
            where = f"shape {(ka, kb, kc, fail)}, round {n}: {got}"
            assert len(got) == 1, where
            assert got[0] in ("ok", "boom", "usage"), where
            balanced(log, "conn", "b")
            seen.add(got[0])
    assert {"ok", "usage"} <= seen, seen


def shared_pair(log: list[str], ks: int, kt: int, fail: bool) -> tuple[Root, Root]:
    """Two roots sharing a request-scoped ``yield`` dependency and a slow dependency
    on it (so calls in one scope claim and wait for each other's keys)."""

    shared = logged(log, "shared", ks)
    other = waits_then("other", kt, [fail])

    async def slow(s: str = Depends(shared)) -> str:
        await rounds(ks)
        return "slow"

    async def first(a: str = Depends(slow), b: str = Depends(other)) -> tuple[str, str]:
        return (a, b)

    async def second(
        a: str = Depends(shared), b: str = Depends(slow)
    ) -> tuple[str, str]:
        return (a, b)

    return first, second


async def overlap_once(
    sequential: bool, victim: int, n: int, shape: tuple[int, int, bool]
) -> list[str]:
    """Three calls in one scope, call *victim* cancelled at round *n*; the log."""
    ks, kt, fail = shape
    log: list[str] = []
    first, second = shared_pair(log, ks, kt, fail)
    expected = {first: ("slow", "other"), second: ("shared", "slow")}
    async with Container(sequential=sequential) as container:
        async with container.scope() as scope:
            scopes: list[anyio.CancelScope] = []

            async def caller(fn: Root) -> None:
                with anyio.CancelScope() as mine:
                    scopes.append(mine)
                    try:
                        assert await scope.call(fn) == expected[fn]
                    except Boom:
                        assert fn is first
                        assert fail

            async with anyio.create_task_group() as tg:
                for fn in (first, second, second):
                    tg.start_soon(caller, fn)
                await rounds(n)
                if len(scopes) > victim:
                    scopes[victim].cancel()
            assert await scope.call(second) == ("shared", "slow")
        # Set up again only if the call setting it up was cancelled first.
        assert log.count("shared+") == 1 or "shared-" in log[: log.index("shared+", 1)]
    return log


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("victim", [0, 1])
async def test_overlapping_calls_in_one_scope_one_cancelled_at_any_round(
    sequential: bool, victim: int
) -> None:
    """Three calls overlap in one scope, waiting on each other's claims; one is
    cancelled at any round: the others still get their values, the scope stays
    usable, and every setup of the shared ``yield`` dependency is torn down once
    (it is set up again only after the call setting it up was cancelled)."""
    for shape in [(3, 1, False), (1, 4, True), (2, 6, True), (0, 0, True)]:
        for n in range(ROUNDS - 2):
            log = await overlap_once(sequential, victim, n, shape)
            balanced(log, "shared", once=False)


def throttled(log: list[str], kind: str, kg: int, kf: int, fail: list[bool]) -> Root:
    """A root over a ``max_concurrency=1`` dependency (a ``yield`` one, holding its
    permit until teardown, or a plain one) and a sibling that fails while
    ``fail[0]``."""
    if kind == "agen":
        limited: Callable[..., Any] = logged(log, "g", kg)
    elif kind == "sgen":

        def limited_sync() -> Iterator[str]:
            log.append("g+")
            try:
                yield "g"
            finally:
                log.append("g-")

        limited = limited_sync
    else:

        async def limited_fn() -> str:
            await rounds(kg)
            return "g"

        limited = limited_fn

    sibling = waits_then("o", kf, fail)

    async def root(
        a: str = Depends(limited, max_concurrency=1), b: str = Depends(sibling)
    ) -> tuple[str, str]:
        await rounds(2)
        return (a, b)

    return root


async def throttled_once(
    entry: str, sequential: bool, kind: str, n: int, shape: tuple[int, int, bool]
) -> list[str]:
    """Three callers of one throttled root, one cancelled at round *n*, then one more
    call of the same root (so of the same limiter); the log."""
    kg, kf, failing = shape
    log: list[str] = []
    fail = [failing]
    root = throttled(log, kind, kg, kf, fail)
    async with Container(sequential=sequential) as container:
        scopes: list[anyio.CancelScope] = []

        async def caller() -> None:
            with anyio.CancelScope() as mine:
                scopes.append(mine)
                try:
                    assert await call_by(container, entry, root) == ("g", "o")
                except Boom:
                    assert failing

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(caller)
            await rounds(n)
            if scopes:
                scopes[n % len(scopes)].cancel()
        fail[0] = False
        with anyio.fail_after(10):  # a lost permit would hang here
            assert await container.call(root) == ("g", "o")
    return log


@pytest.mark.parametrize(("entry", "sequential"), list(entries()))
@pytest.mark.parametrize("kind", ["agen", "sgen", "fn"])
async def test_permits_survive_cancellation_at_any_round(
    entry: str, sequential: bool, kind: str
) -> None:
    """Three callers share a ``max_concurrency=1`` dependency; one is cancelled at any
    round while a sibling may fail: every permit comes back (one more call of the
    same declaration gets through), every ``yield`` setup is torn down once."""
    for shape in [(3, 1, True), (1, 3, True), (2, 2, False), (4, 0, True)]:
        for n in range(ROUNDS - 2):
            log = await throttled_once(entry, sequential, kind, n, shape)
            balanced(log, "g", once=False)


def live_peak(log: list[str], name: str) -> int:
    """The most instances of *name* alive at once in *log*."""
    live = peak = 0
    for entry in log:
        if entry == f"{name}+":
            live += 1
            peak = max(peak, live)
        elif entry == f"{name}-":
            live -= 1
    return peak


async def app_callers_once(
    sequential: bool, victims: tuple[int, ...], n: int, shape: tuple[int, int, bool]
) -> list[str]:
    """Three callers of a root over an app-scoped ``yield`` dependency (set up by a
    host task) and a sibling that may fail; *victims* cancelled at round *n*; then
    one more call; the log, once the container has closed."""
    kp, ks, failing = shape
    log: list[str] = []
    fail = [failing]

    pool = logged(log, "pool", kp)
    sibling = waits_then("s", ks, fail)

    async def root(
        p: str = Depends(pool, scope="app"), s: str = Depends(sibling)
    ) -> tuple[str, str]:
        return (p, s)

    async with Container(sequential=sequential) as container:
        scopes: list[anyio.CancelScope] = []

        async def caller() -> None:
            with anyio.CancelScope() as mine:
                scopes.append(mine)
                try:
                    assert await container.call(root) == ("pool", "s")
                except Boom:
                    assert failing

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(caller)
            await rounds(n)
            for victim in victims:
                if victim < len(scopes):
                    scopes[victim].cancel()
        fail[0] = False
        assert await container.call(root) == ("pool", "s")
    return log


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("victims", [(0,), (0, 1, 2)], ids=["one", "all"])
async def test_an_app_value_never_lives_twice_whatever_round_callers_are_cancelled(
    sequential: bool, victims: tuple[int, ...]
) -> None:
    """Three callers race for an app-scoped ``yield`` dependency (set up by a host
    task); some are cancelled at any round: there is never more than one instance
    alive (it is set up again only after an interrupted setup was torn down), each
    setup is torn down once, and later calls share the one that completed."""
    for shape in [(3, 1, True), (1, 3, True), (0, 0, True), (5, 2, False)]:
        for n in range(ROUNDS - 2):
            log = await app_callers_once(sequential, victims, n, shape)
            balanced(log, "pool", once=False)
            assert live_peak(log, "pool") == 1, (shape, n, log)
