"""Scope: one request lifetime, its ``use_cache`` memo and its context (§3, §4, §6).

Every ``scope.call`` in one scope shares one memo; request-scoped teardown runs when
the scope exits; context objects are injected by type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import (
    Container,
    Depends,
    MissingContextError,
    MissingValuesError,
    Scope,
    UsageError,
)

from .helpers import Recorder, prompt, task_id


class Request:
    """A context object injected by type (like FastAPI's ``Request``)."""

    def __init__(self, path: str) -> None:
        self.path = path


class AdminRequest(Request):
    """A subclass of a context type: also injected from the ``Request`` entry."""


class Unregistered:
    """A type that is not one of the container's context types."""


# -- the memo (docs/semantics.md §3) ---------------------------------------------------


async def test_calls_in_one_scope_share_the_memo() -> None:
    """A cached dependency runs once per scope, whatever the number of calls; a new
    scope (or ``container.call``) computes it again."""
    rec = Recorder()

    async def dep() -> int:
        rec("dep")
        return len(rec.log)

    async def root(x: int = Depends(dep)) -> int:
        return x

    async with Container() as container:
        async with container.scope() as scope:
            assert await scope.call(root) == 1
            assert await scope.call(root) == 1
        async with container.scope() as scope:
            assert await scope.call(root) == 2
        assert await container.call(root) == 3
        assert await container.call(root) == 4
    assert rec.count("dep") == 4


async def test_a_cache_hit_never_reruns_its_subtree() -> None:
    """When a cached dependency is already in the scope's memo, its own dependencies
    are not resolved again, not even ``use_cache=False`` ones (a deviation: FastAPI
    re-runs them)."""
    rec = Recorder()

    async def uncached() -> None:
        rec("uncached")

    async def gen() -> AsyncIterator[None]:
        rec("gen+")
        yield
        rec("gen-")

    async def parent(
        a: None = Depends(uncached, use_cache=False), b: None = Depends(gen)
    ) -> str:
        rec("parent")
        return "p"

    async def root(p: str = Depends(parent)) -> str:
        return p

    async def other(
        p: str = Depends(parent), q: None = Depends(uncached, use_cache=False)
    ) -> str:
        return p

    async with Container() as container, container.scope() as scope:
        await scope.call(root)
        await scope.call(root)
        await scope.call(other)
    assert rec.log == ["uncached", "gen+", "parent", "uncached", "gen-"]


@pytest.mark.parametrize("value", [None, 0, "", False, []], ids=repr)
async def test_falsy_values_are_cached_too(value: Any) -> None:
    """A dependency whose value is None or falsy is still a cache hit."""
    calls = 0

    async def dep() -> Any:
        nonlocal calls
        calls += 1
        return value

    async def root(a: Any = Depends(dep), b: Any = Depends(dep)) -> Any:
        return a

    async with Container() as container, container.scope() as scope:
        assert await scope.call(root) == value
        assert await scope.call(root) == value
    assert calls == 1


@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "concurrent"])
async def test_a_hit_on_a_seeded_key_never_reruns_its_subtree(sequential: bool) -> None:
    """A cached declaration whose key a ``use_cache=False`` twin seeded reads the
    seeded value without resolving its own dependencies again, in one call and in
    later calls of the scope."""
    rec = Recorder()

    async def child() -> None:
        rec("child")

    async def parent(c: None = Depends(child, use_cache=False)) -> int:
        rec("parent")
        return len(rec.log)

    async def root(
        a: int = Depends(parent, use_cache=False), b: int = Depends(parent)
    ) -> tuple[int, int]:
        return a, b

    async def later(b: int = Depends(parent)) -> int:
        return b

    async with (
        Container(sequential=sequential) as container,
        container.scope() as scope,
    ):
        assert await scope.call(root) == (2, 2)
        assert await scope.call(later) == 2
    assert rec.log == ["child", "parent"]


async def test_use_cache_false_seeds_an_absent_key() -> None:
    """``[nocache, cached, cached]``: the uncached call seeds the memo, so the cached
    declarations read its value: one call in all (FastAPI)."""
    calls = 0

    async def counter() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def root(
        a: int = Depends(counter, use_cache=False),
        b: int = Depends(counter),
        c: int = Depends(counter),
    ) -> list[int]:
        return [a, b, c]

    async with Container() as container:
        assert await container.call(root) == [1, 1, 1]


async def test_the_first_stored_value_wins() -> None:
    """``[cached, nocache, cached]`` gives ``[1, 2, 1]``; a later ``use_cache=False``
    value never replaces a stored one, also across calls in one scope."""
    calls = 0

    async def counter() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def root(
        a: int = Depends(counter),
        b: int = Depends(counter, use_cache=False),
        c: int = Depends(counter),
    ) -> list[int]:
        return [a, b, c]

    async def again(
        b: int = Depends(counter, use_cache=False), c: int = Depends(counter)
    ) -> list[int]:
        return [b, c]

    for sequential in (True, False):
        calls = 0
        async with (
            Container(sequential=sequential) as container,
            container.scope() as scope,
        ):
            assert await scope.call(root) == [1, 2, 1]
            assert await scope.call(again) == [3, 1]


async def test_concurrent_calls_in_one_scope_compute_a_key_once() -> None:
    """Several ``scope.call``s running at once in one scope need the same key: it is
    computed once. The first call's dependency blocks until the second call has
    started (and reached the key); both get the one value."""
    rec = Recorder()
    second_started = anyio.Event()

    async def shared() -> object:
        rec("shared")
        await second_started.wait()
        await anyio.lowlevel.checkpoint()
        return object()

    async def first(x: object = Depends(shared)) -> object:
        return x

    async def arrive() -> None:
        second_started.set()

    async def second(a: None = Depends(arrive), x: object = Depends(shared)) -> object:
        return x

    results: dict[str, object] = {}

    async def run(name: str, fn: Any, scope: Scope) -> None:
        results[name] = await scope.call(fn)

    with prompt():
        async with (
            Container() as container,
            container.scope() as scope,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(run, "first", first, scope)
            tg.start_soon(run, "second", second, scope)
            tg.start_soon(run, "third", second, scope)
    assert rec.log == ["shared"]
    assert results["first"] is results["second"] is results["third"]


async def test_concurrent_calls_share_a_yield_dependency_with_one_teardown() -> None:
    """A request-scoped ``yield`` dependency needed by concurrent calls in one scope
    is set up once and torn down once, at scope exit."""
    rec = Recorder()
    second_started = anyio.Event()

    async def gen() -> AsyncIterator[str]:
        rec("gen+")
        await second_started.wait()
        yield "g"
        rec("gen-")

    async def arrive() -> None:
        second_started.set()

    async def first(x: str = Depends(gen)) -> str:
        return x

    async def second(a: None = Depends(arrive), x: str = Depends(gen)) -> str:
        return x

    with prompt():
        async with Container() as container:
            async with container.scope() as scope, anyio.create_task_group() as tg:
                tg.start_soon(scope.call, first)
                tg.start_soon(scope.call, second)
            assert rec.log == ["gen+", "gen-"]


async def test_a_failed_computation_is_not_cached() -> None:
    """A dependency that raised leaves no value in the memo: the next call in the
    scope tries again."""
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("first time")
        return attempts

    async def root(x: int = Depends(flaky)) -> int:
        return x

    async with Container() as container, container.scope() as scope:
        with pytest.raises(ConnectionError):
            await scope.call(root)
        assert await scope.call(root) == 2
        assert await scope.call(root) == 2


async def test_a_waiter_recomputes_when_the_computing_call_fails() -> None:
    """If the call computing a shared key fails while another call waits for that
    key, the waiter does not get a stale or missing value: it computes the key.
    (Two symmetric calls: whichever claims the key first fails.)"""
    attempts = 0
    arrived = 0
    both_arrived = anyio.Event()

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await both_arrived.wait()
            await anyio.lowlevel.checkpoint()
            raise ConnectionError("first time")
        return attempts

    async def arrive() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both_arrived.set()

    async def root(
        a: None = Depends(arrive, use_cache=False), x: int = Depends(flaky)
    ) -> int:
        return x

    outcomes: list[Any] = []

    async def run(scope: Scope) -> None:
        try:
            outcomes.append(await scope.call(root))
        except ConnectionError as exc:
            outcomes.append(exc)

    with prompt():
        async with (
            Container() as container,
            container.scope() as scope,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(run, scope)
            tg.start_soon(run, scope)
    assert sorted(map(repr, outcomes)) == ["2", "ConnectionError('first time')"]
    assert attempts == 2


async def test_waiting_for_a_claim_lets_ready_siblings_run() -> None:
    """A call that waits for another call's claim on a key whose own computation
    cannot wait (a ``max_concurrency`` use of the same dependable is what made the
    other call wait) still goes concurrent: a ready sibling runs meanwhile, and the
    key is computed once for both calls."""
    computed = 0
    sibling_ran = anyio.Event()

    async def shared() -> object:  # no await: cannot suspend by itself
        nonlocal computed
        computed += 1
        return object()

    async def sibling() -> str:
        sibling_ran.set()
        return "sibling"

    limited = Depends(shared, max_concurrency=1)

    async def holder(x: object = limited) -> object:
        return x

    async def waiter(x: object = Depends(shared), y: str = Depends(sibling)) -> object:
        return x

    results: dict[str, object] = {}

    async def run(name: str, scope: Scope, fn: Any) -> None:
        results[name] = await scope.call(fn)

    with prompt():
        async with Container() as container:
            async with container.scope() as warm:
                await warm.call(holder)  # the declaration's limiter exists now
            computed = 0
            (limiter,) = container._runtime.limiters.values()
            async with (
                container.scope() as scope,
                anyio.create_task_group() as tg,
                limiter,  # the holder's call waits for the permit...
            ):
                tg.start_soon(run, "holder", scope, holder)
                await anyio.wait_all_tasks_blocked()  # ...holding the claim
                tg.start_soon(run, "waiter", scope, waiter)
                await sibling_ran.wait()  # ran while the waiter waited
                assert "waiter" not in results
    assert computed == 1
    assert results["holder"] is results["waiter"]


@pytest.mark.parametrize("entry", ["scope.call", "container.call"])
async def test_a_nested_call_that_computed_a_key_is_seen_by_the_outer_call(
    entry: str,
) -> None:
    """A dependency that makes a nested call in its own scope (without suspending)
    computes a key the outer call needs later: the outer call takes that value, it
    does not compute the key a second time (the memo was empty when the outer call
    started, and the outer call never suspended)."""
    computed = 0

    async def shared() -> object:
        nonlocal computed
        computed += 1
        return object()

    async def needs_shared(x: object = Depends(shared)) -> object:
        return x

    async def nested(scope: Scope) -> object:
        return await scope.call(needs_shared)

    async def root(
        a: object = Depends(nested), b: object = Depends(shared)
    ) -> tuple[object, object]:
        return a, b

    async with Container() as container:
        if entry == "scope.call":
            async with container.scope() as scope:
                a, b = await scope.call(root)
        else:
            a, b = await container.call(root)
    assert computed == 1
    assert a is b


# -- context injection by type ---------------------------------------------------------


async def test_context_objects_are_injected_by_type() -> None:
    """A parameter annotated with a registered context type (or a subclass) receives
    the scope's object for that type, at any depth; the name does not matter."""
    request = Request("/items")

    async def dep(anything: Request) -> str:
        return anything.path

    def sync_dep(req: AdminRequest) -> Request:
        return req

    async def root(
        r: Request, d: str = Depends(dep), s: Request = Depends(sync_dep)
    ) -> tuple[Any, ...]:
        return r, d, s

    async with (
        Container(context_types=[Request]) as container,
        container.scope(context={Request: request}) as scope,
    ):
        assert await scope.call(root) == (request, "/items", request)


async def test_the_scope_and_the_container_are_injected_by_type() -> None:
    """``Scope`` and ``Container`` parameters get the current scope and container; a
    handler can fan out more calls in its own scope, sharing the memo."""
    calls = 0

    async def dep() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def child(x: int = Depends(dep)) -> int:
        return x

    async def root(scope: Scope, container: Container, x: int = Depends(dep)) -> Any:
        more = [await scope.call(child) for _ in range(3)]
        return scope, container, x, more

    async with Container() as container, container.scope() as scope:
        got_scope, got_container, x, more = await scope.call(root)
        assert got_scope is scope
        assert got_container is container
        assert (x, more) == (1, [1, 1, 1])


async def test_missing_context_is_an_error_before_anything_runs() -> None:
    """A call that needs a context object its scope lacks raises MissingContextError
    naming the type, before any dependency runs."""
    rec = Recorder()

    async def first() -> None:
        rec("first")

    async def needs(req: Request) -> None:
        rec("needs")

    async def root(a: None = Depends(first), b: None = Depends(needs)) -> None: ...

    async with Container(context_types=[Request]) as container:
        with pytest.raises(MissingContextError) as info:
            await container.call(root)
        assert "Request" in str(info.value)
        async with container.scope() as scope:
            with pytest.raises(MissingContextError):
                await scope.call(root)
    assert rec.log == []


async def test_unregistered_context_type_is_a_usage_error() -> None:
    """``container.scope(context={T: obj})`` with T not a context type is refused."""
    async with Container(context_types=[Request]) as container:
        with pytest.raises(UsageError) as info:
            container.scope(context={Unregistered: Unregistered()})
        assert info.value.hint


async def test_values_are_per_call() -> None:
    """Values belong to one call: two calls in one scope each see their own, and an
    uncached dependable re-reads them."""

    async def dep(token: str) -> str:
        return token

    async def root(t: str = Depends(dep, use_cache=False)) -> str:
        return t

    async with Container() as container, container.scope() as scope:
        assert await scope.call(root, token="a") == "a"
        assert await scope.call(root, token="b") == "b"
        with pytest.raises(MissingValuesError):
            await scope.call(root)


# -- lifetime of the scope object ------------------------------------------------------


async def test_scope_must_be_entered() -> None:
    """``scope.call`` on a scope not entered yet, or already closed, is a UsageError."""

    async def root() -> int:
        return 1

    async with Container() as container:
        scope = container.scope()
        with pytest.raises(UsageError) as info:
            await scope.call(root)
        assert info.value.hint
        async with scope:
            assert await scope.call(root) == 1
        with pytest.raises(UsageError):
            await scope.call(root)


async def test_a_scope_is_entered_once() -> None:
    """Re-entering a scope (while open or after closing) is a UsageError."""
    async with Container() as container:
        scope = container.scope()
        async with scope:
            with pytest.raises(UsageError):
                await scope.__aenter__()
        with pytest.raises(UsageError):
            async with scope:
                pass


async def test_a_scope_of_a_closed_or_unentered_container_cannot_open() -> None:
    """Opening a scope needs an open container."""
    container = Container()
    with pytest.raises(UsageError):
        async with container.scope():
            pass
    async with container:
        pass
    with pytest.raises(UsageError):
        async with container.scope():
            pass


async def test_scope_exit_clears_the_memo() -> None:
    """After a scope exits its values are gone (a closed scope holds nothing)."""

    async def dep() -> object:
        return object()

    async def root(x: object = Depends(dep)) -> object:
        return x

    async with Container() as container:
        async with container.scope() as scope:
            await scope.call(root)
            # A call alone in its scope leaves its values stashed (written into
            # the memo when another call comes).
            assert scope._memo or scope.stash
        assert not scope._memo
        assert scope.stash is None


async def test_scope_call_with_a_sync_root() -> None:
    """``scope.call`` accepts a sync root and returns its result."""

    def root(x: int = Depends(lambda: 41)) -> int:
        return x + 1

    async with Container() as container, container.scope() as scope:
        assert await scope.call(root) == 42


# -- where request-scoped generators run ---------------------------------------------


@pytest.mark.parametrize("sequential", [False, True])
async def test_plain_request_generators_run_in_the_scope_task(sequential: bool) -> None:
    """A request-scoped ``yield`` dependency that leaves nothing on the cancel-scope
    stack (no ``with`` block, a teardown that cannot wait) is set up in the scope's own
    task even when the call runs inside a cancel scope entered after the scope, and
    torn down in that task; with ``sequential=True`` the ``ContextVar`` it sets is
    seen by a later dependency and by the root (FastAPI's behaviour). This holds with
    the private fast paths and without them."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    tasks: list[tuple[str, int]] = []

    async def setter() -> AsyncIterator[str]:
        tasks.append(("setup", task_id()))
        token = var.set("set")
        yield "value"
        var.reset(token)
        tasks.append(("teardown", task_id()))

    async def reader() -> str:
        await anyio.lowlevel.checkpoint()
        return var.get()

    async def root(
        v: str = Depends(setter), seen: str = Depends(reader)
    ) -> tuple[str, str, str]:
        return v, seen, var.get()

    container = Container(sequential=sequential)
    async with container, container.scope() as scope:
        with anyio.CancelScope():
            result = await scope.call(root)
        me = task_id()
    assert tasks == [("setup", me), ("teardown", me)]
    if sequential:
        assert result == ("value", "set", "set")
    else:
        assert result[0] == "value"
