"""A held scope's memo written lazily: one value per key per scope, whatever happens.

A call that has been alone in its scope since it started writes none of the values it
computes while it stays alone, even across suspensions: a call that starts in the
scope meanwhile first writes them from the waiting call's frame and claims the key it
waits in; a call that goes concurrent writes them then; a failure writes them; at its
end they are left to the scope as a stash that the next call in the scope writes into
the memo first (docs/concepts.md, "A request scope's memo"). These tests attack that:
every way another call can come to look at the memo (after the call, from inside one
of its dependencies, while it waits, while it runs concurrently, from another task,
after a failure or a cancellation) must find the values the first call computed, and
wait for the one it is computing, never compute them again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import Container, Depends, Scope

from .helpers import Recorder, prompt


def keep(
    results: dict[str, Any], name: str, fn: Any
) -> Callable[[Scope], Awaitable[None]]:
    """A task body: call *fn* in the scope it gets, keep the result as *name*."""

    async def call(scope: Scope) -> None:
        results[name] = await scope.call(fn)

    return call


class Graph:
    """Request-scoped dependencies that count how often they run.

    ``settings`` and ``repo`` cannot suspend (their values are deferred on the fast
    way); ``conn`` is a yield dependency set up in place; ``waiting`` awaits ``gate``.
    """

    def __init__(self) -> None:
        self.rec = Recorder()
        self.gate = anyio.Event()
        self.entered = anyio.Event()
        rec = self.rec
        gate = self.gate
        entered = self.entered

        async def settings() -> object:
            rec("settings")
            return object()

        async def conn(s: object = Depends(settings)) -> AsyncIterator[object]:
            rec("conn")
            try:
                yield (s, object())
            finally:
                rec("conn closed")

        async def repo(c: object = Depends(conn), s: object = Depends(settings)) -> Any:
            rec("repo")
            return (c, s)

        async def waiting(r: object = Depends(repo)) -> object:
            rec("waiting")
            entered.set()
            await gate.wait()
            return r

        async def handler(
            r: object = Depends(repo), s: object = Depends(settings)
        ) -> Any:
            return (r, s)

        async def slow_handler(
            w: object = Depends(waiting), r: object = Depends(repo)
        ) -> Any:
            return (w, r)

        async def slow_handler_ready(
            c: object = Depends(conn), r: object = Depends(repo)
        ) -> Any:
            return (c, r)

        self.slow_handler_ready = slow_handler_ready
        self.waiting = waiting
        self.settings = settings
        self.conn = conn
        self.repo = repo
        self.handler = handler
        self.slow_handler = slow_handler

    def once_each(self) -> None:
        """Every dependency ran once, and the yield dependency was not torn down."""
        assert self.rec.count("settings") == 1
        assert self.rec.count("conn") == 1
        assert self.rec.count("repo") == 1


async def test_a_later_call_in_the_scope_gets_the_first_calls_values() -> None:
    """Two calls one after the other in one scope share every value (the second
    writes the first one's stash into the memo before it runs)."""
    g = Graph()
    async with Container() as container:
        async with container.scope() as scope:
            first = await scope.call(g.handler)
            second = await scope.call(g.handler)
            third = await scope.call(g.slow_handler_ready)
            g.once_each()
            assert first == second
            assert third[1] is first[0]
        assert g.rec.count("conn closed") == 1


async def test_a_call_from_a_dependency_gets_the_values_computed_before_it() -> None:
    """A dependency that calls into its own scope (it may suspend, so what came
    before it was written) sees the outer call's values; the outer call then sees
    the inner call's values."""
    g = Graph()
    inner_result: list[Any] = []

    async def calls_in(scope: Scope, s: object = Depends(g.settings)) -> object:
        inner_result.append(await scope.call(g.handler))
        return s

    async def outer(x: object = Depends(calls_in), r: object = Depends(g.repo)) -> Any:
        return (x, r)

    async with Container() as container, container.scope() as scope:
        x, r = await scope.call(outer)
        g.once_each()
        assert inner_result[0][0] is r
        assert x is inner_result[0][1]


async def test_the_root_calling_into_its_scope_sees_the_values() -> None:
    """The root runs after the call stashed its values: a call the root makes in
    the same scope finds them."""
    g = Graph()

    async def root(scope: Scope, r: object = Depends(g.repo)) -> Any:
        return r, await scope.call(g.handler)

    async with Container() as container, container.scope() as scope:
        r, inner = await scope.call(root)
        g.once_each()
        assert inner[0] is r


async def test_a_call_that_starts_while_another_waits_sees_its_values() -> None:
    """While the only call of a scope waits in a dependency, the memo holds nothing
    (its values stay in the call); a second call started then (another task) still
    finds them all and computes nothing again, and when the first resumes it sees
    what the second computed."""
    g = Graph()
    results: dict[str, Any] = {}

    slow = keep(results, "slow", g.slow_handler)

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow, scope)
                await g.entered.wait()
                assert scope._memo == {}
                results["fast"] = await scope.call(g.handler)
                g.gate.set()
            g.once_each()
            assert results["slow"][1] is results["fast"][0]


async def test_values_computed_before_a_failure_are_kept() -> None:
    """A call that fails after computing (and setting up) dependencies leaves them
    in the scope, as an eager write would: a later call does not set them up again."""
    g = Graph()

    async def fails(r: object = Depends(g.repo)) -> object:
        raise LookupError("boom")

    async def after(r: object = Depends(fails)) -> object:
        return r

    async with Container() as container:
        async with container.scope() as scope:
            with pytest.raises(LookupError):
                await scope.call(after)
            await scope.call(g.handler)
            g.once_each()
        assert g.rec.count("conn closed") == 1


async def test_values_computed_before_a_cancellation_are_kept() -> None:
    """A call cancelled while it waits keeps what it computed before in the scope."""
    g = Graph()
    with prompt():
        async with Container() as container, container.scope() as scope:
            with anyio.CancelScope() as cs:

                async def cancel_when_entered() -> None:
                    await g.entered.wait()
                    cs.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_when_entered)
                    await scope.call(g.slow_handler)
            assert cs.cancel_called
            await scope.call(g.handler)
            g.once_each()


@pytest.mark.parametrize("lifetime", ["request", "app"])
@pytest.mark.parametrize("alone", [True, False], ids=["alone", "overlapping"])
async def test_a_hosted_setup_completing_as_its_caller_is_cancelled_is_kept(
    alone: bool, lifetime: str
) -> None:
    """A ``yield`` dependency set up by a helper task (app-scoped, or request-scoped
    in a call from a task other than the scope's) completes in the very round its
    caller is cancelled: the caller gets the cancellation, and the value stays in the
    memo it belongs to, as a setup in place would leave it: a later call does not set
    it up a second time, and it is torn down once."""
    rec = Recorder()
    caller_scope = anyio.CancelScope()

    async def conn() -> AsyncIterator[object]:
        rec("conn")
        caller_scope.cancel()  # the caller gives up as the setup completes
        try:
            yield object()
        finally:
            rec("conn closed")

    dep: Any = Depends(conn, scope="app" if lifetime == "app" else "request")

    async def slow(c: object = dep) -> object:
        await anyio.lowlevel.checkpoint()
        return c

    async def handler(c: object = dep, s: object = Depends(slow)) -> object:
        return c

    async def other(c: object = dep) -> object:
        return c

    gate, waiting = anyio.Event(), anyio.Event()

    async def wait_for_gate() -> None:
        waiting.set()
        await gate.wait()

    async def waiting_in_the_scope(scope: Scope) -> None:
        await scope.call(wait_for_gate)  # overlaps with the cancelled call

    async def cancelled_call(scope: Scope) -> None:
        with caller_scope:
            await scope.call(handler)
        gate.set()

    with prompt():
        async with Container() as container:
            async with container.scope() as scope:
                async with anyio.create_task_group() as tg:
                    if alone:
                        gate.set()
                    else:
                        tg.start_soon(waiting_in_the_scope, scope)
                        await waiting.wait()
                    tg.start_soon(cancelled_call, scope)
                assert caller_scope.cancelled_caught
                first = await scope.call(other)
                assert await scope.call(handler) is first
                assert rec.count("conn") == 1
            if lifetime == "app":
                assert await container.call(other) is first
            assert rec.count("conn closed") == (lifetime == "request")
        assert rec.count("conn") == rec.count("conn closed") == 1


async def test_a_call_from_another_task_hosts_the_generator_and_shares_values() -> None:
    """A call made from a task other than the scope's (the yield dependency is set
    up by a helper task, a branch that may suspend) writes what it computed first:
    a call started meanwhile and every later call see one value per key."""
    g = Graph()
    results: list[Any] = []

    async def in_other_task(scope: Scope) -> None:
        results.append(await scope.call(g.handler))

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(in_other_task, scope)
                tg.start_soon(in_other_task, scope)
            results.append(await scope.call(g.handler))
            g.once_each()
            assert results[0] == results[1] == results[2]


async def test_overlapping_calls_then_a_lone_call() -> None:
    """After calls overlapped, later calls still share the scope's values (the scope
    stays in the mode where every call writes at once)."""
    g = Graph()
    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(scope.call, g.slow_handler)
                await g.entered.wait()
                await scope.call(g.handler)
                g.gate.set()
            await scope.call(g.handler)
            await scope.call(g.slow_handler_ready)
            g.once_each()


async def test_a_fresh_scope_computes_again_and_tears_down() -> None:
    """The stash belongs to its scope: a new scope computes its own values, and
    each scope tears down its own yield dependency once."""
    g = Graph()
    async with Container() as container:
        for _ in range(3):
            async with container.scope() as scope:
                await scope.call(g.handler)
        assert g.rec.count("settings") == 3
        assert g.rec.count("conn") == 3
        assert g.rec.count("conn closed") == 3


@pytest.mark.parametrize("history", ["call-first", "scope-first", "none"])
async def test_same_values_and_teardown_whatever_ran_first(history: str) -> None:
    """Whatever entry point ran the plan first, a scope's calls share one value per
    key and tear the yield dependency down once, after the scope's last call."""
    g = Graph()
    async with Container() as container:
        if history == "call-first":
            await container.call(g.handler)
        elif history == "scope-first":
            async with container.scope() as warm:
                await warm.call(g.handler)
        before = g.rec.count("conn")
        async with container.scope() as scope:
            a = await scope.call(g.handler)
            b = await scope.call(g.handler)
            assert a == b
            assert g.rec.count("conn") == before + 1
            assert g.rec.count("conn closed") == before
        assert g.rec.count("conn closed") == before + 1


async def test_checkpoint_in_a_dependency_with_many_calls() -> None:
    """Many calls in one scope from many tasks, each dependency awaiting a
    checkpoint somewhere: still one value per key."""
    rec = Recorder()

    async def a() -> object:
        rec("a")
        return object()

    async def b(x: object = Depends(a)) -> object:
        rec("b")
        await anyio.lowlevel.checkpoint()
        return x

    async def c(x: object = Depends(a), y: object = Depends(b)) -> object:
        rec("c")
        return (x, y)

    async def root(z: object = Depends(c)) -> object:
        return z

    results: list[Any] = []

    async def one(scope: Scope) -> None:
        results.append(await scope.call(root))

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(one, scope)
            results.append(await scope.call(root))
    assert rec.count("a") == rec.count("b") == rec.count("c") == 1
    assert all(r is results[0] for r in results)


async def test_a_call_that_starts_while_another_has_written_nothing() -> None:
    """A call in progress may have written nothing yet (it waits in a dependency
    that is not cached): a call started then is not alone in the scope, so it
    writes what it computes at once, and the first call, resumed, finds it."""
    rec = Recorder()
    gate = anyio.Event()
    entered = anyio.Event()

    async def shared() -> object:
        rec("shared")
        return object()

    async def wait_uncached() -> None:
        entered.set()
        await gate.wait()

    async def first(
        _: None = Depends(wait_uncached, use_cache=False),
        s: object = Depends(shared),
    ) -> object:
        return s

    async def second(s: object = Depends(shared)) -> object:
        return s

    results: list[object] = []

    async def run_first(scope: Scope) -> None:
        results.append(await scope.call(first))

    with prompt():
        async with (
            Container() as container,
            container.scope() as scope,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(run_first, scope)
            await entered.wait()
            results.append(await scope.call(second))
            gate.set()
    assert rec.count("shared") == 1
    assert results[0] is results[1]


@pytest.mark.parametrize("warm", [False, True], ids=["empty-memo", "after-a-call"])
async def test_a_call_needing_what_a_lone_call_waits_in_waits_for_it(
    warm: bool,
) -> None:
    """A call that starts while the scope's only call waits in a dependency, and
    needs that dependency too, waits for the first call's value instead of running
    it again (the newcomer claims the key for the waiting call); also when the first
    call started on a memo an earlier call had filled."""
    g = Graph()
    results: dict[str, Any] = {}

    async def needs_waiting(w: object = Depends(g.waiting)) -> object:
        return w

    slow = keep(results, "slow", g.slow_handler)

    second = keep(results, "second", needs_waiting)

    with prompt():
        async with Container() as container, container.scope() as scope:
            if warm:
                await scope.call(g.handler)
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow, scope)
                await g.entered.wait()
                tg.start_soon(second, scope)
                await anyio.wait_all_tasks_blocked()
                assert "second" not in results
                g.gate.set()
            g.once_each()
            assert g.rec.count("waiting") == 1
            assert results["second"] is results["slow"][0]


async def test_a_lone_call_that_fails_gives_up_the_key_it_was_claimed() -> None:
    """The dependency a lone call waits in fails after a second call started and
    waits for it: the second call is released and computes it itself (the claim
    made for the first call is given up with the first call's other claims)."""
    rec = Recorder()
    gate = anyio.Event()
    entered = anyio.Event()

    async def flaky() -> object:
        rec("flaky")
        if rec.count("flaky") == 1:
            entered.set()
            await gate.wait()
            raise LookupError("first attempt")
        return object()

    async def first(f: object = Depends(flaky)) -> object:
        return f

    async def second(f: object = Depends(flaky)) -> object:
        return f

    results: list[object] = []

    async def run_first(scope: Scope) -> None:
        with pytest.raises(LookupError):
            await scope.call(first)

    async def run_second(scope: Scope) -> None:
        results.append(await scope.call(second))

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_first, scope)
                await entered.wait()
                tg.start_soon(run_second, scope)
                await anyio.wait_all_tasks_blocked()
                assert rec.count("flaky") == 1
                gate.set()
            assert rec.count("flaky") == 2
            assert len(results) == 1


async def test_a_call_that_starts_after_a_lone_call_went_concurrent() -> None:
    """A lone call goes concurrent while it waits in a dependency (a sibling runs
    in a runner task), and that dependency returns; a call that starts while the
    sibling still runs finds every value the first call computed before it went
    concurrent (they were written when it went concurrent: its frame is gone)."""
    g = Graph()
    gate = anyio.Event()
    sibling_ran = anyio.Event()
    sibling_gate = anyio.Event()

    async def waiting_leaf() -> object:
        g.rec("waiting_leaf")
        await gate.wait()
        return object()

    async def sibling() -> object:
        g.rec("sibling")
        await anyio.lowlevel.checkpoint()
        sibling_ran.set()
        await sibling_gate.wait()
        return object()

    async def root(
        r: object = Depends(g.repo),
        w: object = Depends(waiting_leaf),
        s: object = Depends(sibling),
    ) -> Any:
        return (r, w, s)

    results: dict[str, Any] = {}

    run_first = keep(results, "first", root)

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_first, scope)
                await sibling_ran.wait()  # the call is concurrent
                gate.set()
                await anyio.wait_all_tasks_blocked()  # waiting_leaf returned
                results["second"] = await scope.call(g.handler)
                sibling_gate.set()
            g.once_each()
            assert g.rec.count("waiting_leaf") == g.rec.count("sibling") == 1
            assert results["second"][0] is results["first"][0]


class Concurrent:
    """A lone call that goes concurrent: ``waiting_leaf`` waits in the calling task
    (until ``gate``) while ``sibling`` runs in a runner task (until ``sibling_gate``);
    ``later`` depends on both, so it is still to compute meanwhile (``later`` or
    ``sibling`` fails on its first run if asked to)."""

    def __init__(self, g: Graph, fails: str | None = None) -> None:
        self.g = g
        self.gate = anyio.Event()
        self.sibling_ran = anyio.Event()
        self.sibling_gate = anyio.Event()
        rec = g.rec

        async def waiting_leaf() -> object:
            rec("waiting_leaf")
            await self.gate.wait()
            return object()

        async def sibling() -> object:
            rec("sibling")
            await anyio.lowlevel.checkpoint()
            self.sibling_ran.set()
            await self.sibling_gate.wait()
            if fails == "sibling" and rec.count("sibling") == 1:
                raise LookupError("sibling failed")
            return object()

        async def later(
            w: object = Depends(waiting_leaf), s: object = Depends(sibling)
        ) -> object:
            rec("later")
            if fails == "later" and rec.count("later") == 1:
                raise LookupError("later failed")
            return (w, object())

        async def root(
            r: object = Depends(g.repo),
            w: object = Depends(waiting_leaf),
            s: object = Depends(sibling),
            lt: object = Depends(later),
        ) -> Any:
            return (r, w, s, lt)

        self.waiting_leaf, self.sibling, self.later, self.root = (
            waiting_leaf,
            sibling,
            later,
            root,
        )

    def open(self) -> None:
        self.gate.set()
        self.sibling_gate.set()


async def test_a_lone_call_writes_nothing_while_concurrent() -> None:
    """A call alone in its scope that went concurrent writes and claims nothing
    while its dependencies run; its values go to the scope at its end, and a later
    call finds them all."""
    g = Graph()
    c = Concurrent(g)
    results: dict[str, Any] = {}

    first = keep(results, "first", c.root)

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(first, scope)
                await c.sibling_ran.wait()  # concurrent
                assert scope._memo == {}
                c.open()
            assert scope._memo == {} and scope.stash is not None
            results["second"] = await scope.call(g.handler)
            g.once_each()
            assert results["second"][0] is results["first"][0]


@pytest.mark.parametrize("needs", ["sibling", "later"])
async def test_a_call_needing_what_a_lone_concurrent_call_computes_waits(
    needs: str,
) -> None:
    """A call that starts while a lone call runs concurrently, and needs what that
    call is computing (in a runner task) or has still to compute, waits for its
    values: each dependency runs once, and both calls get the same values."""
    g = Graph()
    c = Concurrent(g)
    results: dict[str, Any] = {}
    dep = c.sibling if needs == "sibling" else c.later

    async def second_root(x: object = Depends(dep)) -> object:
        return x

    first = keep(results, "first", c.root)

    second = keep(results, "second", second_root)

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(first, scope)
                await c.sibling_ran.wait()  # concurrent
                tg.start_soon(second, scope)
                await anyio.wait_all_tasks_blocked()
                assert "second" not in results
                c.open()
            for name in ("waiting_leaf", "sibling", "later"):
                assert g.rec.count(name) == 1
            position = 2 if needs == "sibling" else 3
            assert results["second"] is results["first"][position]


@pytest.mark.parametrize("fails", ["later", "sibling"])
async def test_a_lone_concurrent_call_failing_releases_its_claims(fails: str) -> None:
    """A lone concurrent call fails while a newcomer waits for ``later``, claimed
    for the first call when the newcomer came: in ``later`` itself, or in
    ``sibling`` (after the calling task handed over), so that ``later`` never
    starts. Either way the newcomer is released, computes what is missing itself,
    and finds what the first call had computed."""
    g = Graph()
    c = Concurrent(g, fails=fails)
    results: dict[str, Any] = {}

    async def second_root(x: object = Depends(c.later)) -> object:
        return x

    async def first(scope: Scope) -> None:
        with pytest.raises(LookupError):
            await scope.call(c.root)

    second = keep(results, "second", second_root)

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(first, scope)
                await c.sibling_ran.wait()  # concurrent
                tg.start_soon(second, scope)
                await anyio.wait_all_tasks_blocked()
                if fails == "later":
                    c.open()
                else:
                    c.gate.set()  # waiting_leaf returns: the calling task hands over
                    await anyio.wait_all_tasks_blocked()
                    c.sibling_gate.set()  # sibling fails, later never starts
            assert "second" in results
            assert g.rec.count("waiting_leaf") == 1
            assert g.rec.count(fails) == 2
            assert g.rec.count("later") == (2 if fails == "later" else 1)
