"""The scheduler: concurrency, readiness, threads, failure, cancellation (§2, §4, §5).

Concurrency is proven with events, never with sleeps: a test that needs two
dependencies to overlap makes each wait for the other, so it can only finish if they
really do. :func:`helpers.prompt` is a safety net against hangs, never the mechanism.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import Container, Depends

from .helpers import Recorder, one_round, prompt, task_id

# -- concurrency (docs/semantics.md §4) ------------------------------------------------


async def test_independent_dependencies_overlap() -> None:
    """Two independent async dependencies that each wait for the other's event both
    complete: they run at the same time."""
    a_started, b_started = anyio.Event(), anyio.Event()

    async def a() -> str:
        a_started.set()
        await b_started.wait()
        return "a"

    async def b() -> str:
        b_started.set()
        await a_started.wait()
        return "b"

    async def root(x: str = Depends(a), y: str = Depends(b)) -> str:
        return x + y

    with prompt():
        async with Container() as container:
            assert await container.call(root) == "ab"


async def test_readiness_not_levels() -> None:
    """C depends only on the fast B; the slow A (a sibling of B, so on the same
    "level") waits for an event that C sets. This finishes only if C starts as soon as
    B is ready, not after the whole level of A and B."""
    c_ran = anyio.Event()
    rec = Recorder()

    async def a() -> str:
        rec("a start")
        await c_ran.wait()
        rec("a end")
        return "a"

    async def b() -> str:
        rec("b")
        return "b"

    async def c(x: str = Depends(b)) -> str:
        rec("c")
        c_ran.set()
        return x + "c"

    async def root(x: str = Depends(a), y: str = Depends(c)) -> str:
        return x + y

    with prompt():
        async with Container() as container:
            assert await container.call(root) == "abc"
    assert rec.log == ["a start", "b", "c", "a end"]


async def test_readiness_through_a_chain_of_suspending_dependencies() -> None:
    """A dependent starts the moment its inputs are ready, even when those inputs were
    produced by other suspending dependencies on other tasks: D (needs B and C, both
    of which suspend) unblocks A, which is still waiting."""
    d_ran = anyio.Event()

    async def a() -> str:
        await d_ran.wait()
        return "a"

    async def b() -> str:
        await anyio.lowlevel.checkpoint()
        return "b"

    async def c(x: str = Depends(b)) -> str:
        await anyio.lowlevel.checkpoint()
        return x + "c"

    async def d(x: str = Depends(b), y: str = Depends(c)) -> str:
        d_ran.set()
        return x + y

    async def root(x: str = Depends(a), y: str = Depends(d)) -> str:
        return x + y

    with prompt():
        async with Container() as container:
            assert await container.call(root) == "abbc"


async def test_nothing_suspends_no_tasks() -> None:
    """When no dependency suspends, every dependency runs in the calling task (the
    run costs no task), also with sync dependables run inline."""
    ids: list[int] = []

    async def a() -> int:
        ids.append(task_id())
        return 1

    def s() -> int:
        ids.append(task_id())
        return 2

    async def b(x: int = Depends(a), y: int = Depends(s)) -> int:
        ids.append(task_id())
        return x + y

    async def root(x: int = Depends(b), y: int = Depends(a)) -> int:
        ids.append(task_id())
        return x + y

    async with Container(sync_to_thread=False) as container:
        assert await container.call(root) == 4
    assert ids == [task_id()] * 4


async def test_a_suspending_chain_needs_no_task() -> None:
    """Dependencies that suspend one after the other (a chain: nothing else is ready
    meanwhile) still run in the calling task: tasks exist only to buy overlap."""
    ids: list[int] = []

    async def a() -> int:
        await anyio.lowlevel.checkpoint()
        ids.append(task_id())
        return 1

    async def b(x: int = Depends(a)) -> int:
        await anyio.lowlevel.checkpoint()
        ids.append(task_id())
        return x + 1

    async def root(x: int = Depends(b)) -> int:
        ids.append(task_id())
        return x

    async with Container() as container:
        assert await container.call(root) == 2
    assert ids == [task_id()] * 3


async def test_overlap_uses_one_extra_task() -> None:
    """Two overlapping dependencies need one extra task, not one per dependency: the
    one that suspended first stays in the calling task, and a dependent of the other
    (ready only once it finished) needs no further task."""
    a_started, b_started = anyio.Event(), anyio.Event()
    ids: dict[str, int] = {}

    async def a() -> None:
        ids["a"] = task_id()
        a_started.set()
        await b_started.wait()

    async def b() -> None:
        ids["b"] = task_id()
        b_started.set()
        await a_started.wait()

    async def c(x: None = Depends(b)) -> None:
        ids["c"] = task_id()

    async def root(
        x: None = Depends(a), y: None = Depends(b), z: None = Depends(c)
    ) -> None:
        ids["root"] = task_id()

    with prompt():
        async with Container() as container:
            await container.call(root)
    assert ids["a"] == ids["root"] == task_id()
    assert ids["b"] != task_id()
    assert len(set(ids.values())) == 2


def count_spawns(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every runner a container's runtime starts from now on (each a job
    for a worker task of its pool)."""
    from anydepends._runtime import Runtime

    spawned: list[object] = []
    start_runner = Runtime.start_runner

    def counting(rt: Runtime, coro: Any, ctx: Any, abandoned: Any) -> None:
        spawned.append(coro)
        start_runner(rt, coro, ctx, abandoned)

    monkeypatch.setattr(Runtime, "start_runner", counting)
    return spawned


@pytest.mark.parametrize("entry", ["call", "scope"])
async def test_dependencies_that_cannot_suspend_start_no_task(
    entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a call goes concurrent and nothing ready may wait, the ready
    dependencies that cannot suspend (no ``await`` of their own, a sync one run
    inline) run at once in the dispatcher's task, and so do those they make ready:
    no runner task, yet they overlap with the dependency that waits (it waits for
    them). When a ready one may suspend, it gets a runner, which runs them too
    (one task in all)."""
    release = anyio.Event()
    ids: dict[str, int] = {}

    async def waits() -> str:
        ids["waits"] = task_id()
        await release.wait()
        return "w"

    async def cheap() -> str:
        ids["cheap"] = task_id()
        return "c"

    def cheap_sync(c: str = Depends(cheap)) -> str:
        ids["cheap_sync"] = task_id()
        release.set()
        return c + "s"

    async def may_wait() -> str:
        await anyio.lowlevel.checkpoint()
        return "m"

    async def root(
        w: str = Depends(waits), s: str = Depends(cheap_sync, sync_to_thread=False)
    ) -> str:
        return w + s

    async def root_with_more(r: str = Depends(root), m: str = Depends(may_wait)) -> str:
        return r + m

    with prompt():
        async with Container() as container:
            spawned = count_spawns(monkeypatch)
            if entry == "call":
                assert await container.call(root) == "wcs"
            else:
                async with container.scope() as scope:
                    assert await scope.call(root) == "wcs"
            assert ids["cheap"] == ids["cheap_sync"] != ids["waits"] == task_id()
            assert spawned == []
            release = anyio.Event()
            assert await container.call(root_with_more) == "wcsm"
            assert len(spawned) == 1


async def test_a_dependency_that_cannot_suspend_failing_when_going_concurrent() -> None:
    """A dependency run at once when the call goes concurrent fails: the caller gets
    that exception object, and the dependency waiting in the calling task is
    interrupted; nothing after the failure starts."""
    error = LookupError("boom")
    interrupted: list[str] = []
    started: list[str] = []

    async def waits() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            interrupted.append("waits")
            raise

    async def fails() -> None:
        raise error

    async def after(f: None = Depends(fails)) -> None:
        started.append("after")

    async def root(w: None = Depends(waits), a: None = Depends(after)) -> None:
        pass

    with prompt():
        async with Container() as container:
            with pytest.raises(LookupError) as info:
                await container.call(root)
    assert info.value is error
    assert interrupted == ["waits"]
    assert started == []


async def test_a_claimed_key_is_left_to_a_runner_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A held scope's cached dependency that cannot suspend is run at once when the
    call goes concurrent only while no other call claims its key: claimed, it is
    left to a runner task, which waits for that call (the task deciding never
    waits). The claim here is planted, as no real call holds one on such a key at
    that moment."""
    from anydepends._state import CallState

    release = anyio.Event()
    runs: list[str] = []

    async def waits() -> str:
        await release.wait()
        return "w"

    async def cheap() -> str:
        runs.append("cheap")
        release.set()
        return "c"

    async def root(w: str = Depends(waits), c: str = Depends(cheap)) -> str:
        return w + c

    with prompt():
        async with Container() as container, container.scope() as scope:
            plan = container.compile(root)
            key = next(n.key for n in plan.nodes if n.name.endswith("cheap"))
            other = CallState(
                container._entry_for(root).held_runner(), {}, {}, container._runtime
            )
            scope._memo[key] = other  # another call computing cheap
            spawned = count_spawns(monkeypatch)
            async with anyio.create_task_group() as tg:
                tg.start_soon(scope.call, root)
                while not other.waiters:  # the call goes concurrent in two rounds
                    await anyio.lowlevel.checkpoint()
                await anyio.wait_all_tasks_blocked()
                assert runs == [] and len(spawned) == 1  # a runner waits for it
                scope._memo[key] = "c"  # that call stored it
                other.wake(key)
                await anyio.wait_all_tasks_blocked()
                release.set()
            assert runs == []


async def test_a_call_that_went_concurrent_is_not_kept_alive() -> None:
    """Once a call that went concurrent returned, nothing of the engine keeps its
    values alive (the dispatcher lets go of the calls it decided on), while the
    container stays open and idle."""
    import gc
    import weakref

    class Value:
        pass

    probes: list[weakref.ref[Value]] = []
    a_started, b_started = anyio.Event(), anyio.Event()

    async def a() -> Value:
        a_started.set()
        await b_started.wait()
        return Value()

    async def b() -> Value:
        b_started.set()
        await a_started.wait()
        value = Value()
        probes.append(weakref.ref(value))
        return value

    async def root(x: Value = Depends(a), y: Value = Depends(b)) -> None:
        pass

    with prompt():
        async with Container() as container:
            await container.call(root)
            await anyio.wait_all_tasks_blocked()
            gc.collect()
            assert len(probes) == 1
            assert probes[0]() is None


async def test_a_call_that_registered_to_go_concurrent_is_freed_as_it_returns() -> None:
    """A call whose dependency waited one loop round beside a ready sibling registered
    with the dispatcher, which looks at it again only rounds later: once the call
    returned, that registration keeps nothing of the call (its values, its state)
    alive, with the collector off (under load, that lifetime sent every call through
    the collector's older generations)."""
    import gc
    import weakref

    class Value:
        pass

    async def waits_a_round() -> int:
        await one_round()
        return 1

    async def ready() -> int:
        return 2

    async def root(
        given: Value, x: int = Depends(waits_a_round), y: int = Depends(ready)
    ) -> int:
        return x + y

    async with Container() as container:
        assert await container.call(root, given=Value()) == 3  # compiled, warm
        value = Value()
        probe = weakref.ref(value)
        gc.disable()
        try:
            assert await container.call(root, given=value) == 3
            del value
            assert probe() is None
        finally:
            gc.enable()


@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_registering_to_go_concurrent_makes_nothing_until_the_call_does(
    entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls whose dependencies wait a loop round, one after the other, beside a
    ready sibling (the common wait under load) register with the dispatcher at each
    such wait and withdraw as they move on: none of them allocates the concurrent
    machinery (a resolution) unless it really goes concurrent, and a call that does
    still gets exactly one."""
    from anydepends import _resolution

    made: list[int] = []
    init = _resolution.Resolution.__init__

    def counting(self: Any, *args: Any) -> None:
        made.append(1)
        init(self, *args)

    monkeypatch.setattr(_resolution.Resolution, "__init__", counting)
    release = anyio.Event()

    async def first() -> int:
        await one_round()
        return 1

    async def then_one_more(x: int = Depends(first)) -> int:
        # A second wait of one round: registered again, withdrawn again. (Two
        # rounds in one wait may go concurrent on trio, whose order in a round is
        # random: the rule is "still waiting after two rounds".)
        await one_round()
        return x + 1

    async def ready() -> int:
        return 10

    async def root(y: int = Depends(then_one_more), z: int = Depends(ready)) -> int:
        return y + z

    async def long_wait() -> int:
        await release.wait()
        return 1

    async def also_waits() -> int:
        await anyio.lowlevel.checkpoint()
        return 10

    async def slow_root(
        w: int = Depends(long_wait), z: int = Depends(also_waits)
    ) -> int:
        return w + z

    async def call(fn: Any) -> Any:
        if entry == "container":
            return await container.call(fn)
        async with container.scope() as scope:
            return await scope.call(fn)

    with prompt():
        async with Container() as container:
            results: list[int] = []

            async def one() -> None:
                results.append(await call(root))

            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(one)
            assert results == [12] * 50
            assert made == []

            async def slow() -> None:
                results.append(await call(slow_root))

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow)
                while not made:  # it waits on: a few loop rounds, and it goes
                    await anyio.lowlevel.checkpoint()
                release.set()
            assert results[-1] == 11
            assert made == [1]


@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_overlapping_calls_that_register_move_on_and_are_cancelled_all_free(
    entry: str,
) -> None:
    """Sixty overlapping calls, each waiting 0-5 loop rounds in one dependency beside
    a sibling waiting 0-3 (so each registers with the dispatcher, moves on, withdraws,
    re-registers, and some go concurrent), a third of them cancelled by their caller
    after 0-5 rounds: every result is right or the cancellation, and once the calls
    are over and the dispatcher had its turns, nothing of any call is kept (each
    call's value object is freed with the garbage collector off)."""
    import gc
    import random
    import weakref

    class Value:
        pass

    rng = random.Random(20261201)
    plans = [
        (rng.randrange(6), rng.randrange(4), rng.randrange(6) if i % 3 == 0 else None)
        for i in range(60)
    ]
    probes: list[weakref.ref[Value]] = []
    outcomes: list[str] = []

    async def rounds(n: int) -> None:
        for _ in range(n):
            await one_round()

    async def waits(value: Value, w: int) -> int:
        await rounds(w)
        return w

    async def sibling(s: int) -> int:
        await rounds(s)
        return 10 * s

    async def root(x: int = Depends(waits), y: int = Depends(sibling)) -> int:
        return x + y

    async def one(container: Container, w: int, s: int, cancel: int | None) -> None:
        value = Value()
        probes.append(weakref.ref(value))
        with anyio.CancelScope() as own:

            async def canceller() -> None:
                assert cancel is not None
                for _ in range(cancel):
                    await anyio.lowlevel.checkpoint()
                own.cancel()

            async with anyio.create_task_group() as tg:
                if cancel is not None:
                    tg.start_soon(canceller)
                if entry == "container":
                    got = await container.call(root, value=value, w=w, s=s)
                else:
                    async with container.scope() as scope:
                        got = await scope.call(root, value=value, w=w, s=s)
                assert got == w + 10 * s
                outcomes.append("ok")
                tg.cancel_scope.cancel()  # the canceller, if any, is not needed
        if own.cancelled_caught:
            outcomes.append("cancelled")
        del value

    with prompt():
        async with Container() as container:
            await container.call(root, value=Value(), w=0, s=0)  # compiled, warm
            gc.collect()
            gc.disable()
            try:
                async with anyio.create_task_group() as tg:
                    for w, s, cancel in plans:
                        tg.start_soon(one, container, w, s, cancel)
                await rounds(8)  # the dispatcher's turns
                await anyio.wait_all_tasks_blocked()
                assert len(outcomes) == len(plans)
                assert set(outcomes) <= {"ok", "cancelled"}
                assert "ok" in outcomes
                assert [p for p in probes if p() is not None] == []
            finally:
                gc.enable()


@pytest.mark.parametrize(
    "how", ["teardown waits, then re-raises", "app-scoped setup fails"]
)
@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_a_failed_call_is_freed_without_the_collector_whatever_tears_it_down(
    how: str, entry: str
) -> None:
    """A call that failed is freed once the caller let go of the exception, with the
    garbage collector off, also when a ``yield`` dependency's teardown waited and then
    re-raised the exception thrown into it (the step that threw it in keeps it), and
    when an app-scoped dependency's setup failed in the container's helper task (the
    task's record of it keeps it): nothing that keeps the exception is reachable from
    a frame its traceback reaches."""
    import gc
    import weakref

    class Value:
        pass

    async def waits_then_reraises() -> AsyncIterator[int]:
        try:
            yield 1
        finally:
            await anyio.lowlevel.checkpoint()

    async def pool() -> AsyncIterator[int]:
        await anyio.lowlevel.checkpoint()
        raise ValueError("no pool")
        yield 2  # pragma: no cover - never reached

    if how == "app-scoped setup fails":

        async def root(value: Value, p: int = Depends(pool, scope="app")) -> int:
            return p  # pragma: no cover - never reached

    else:

        async def root(value: Value, g: int = Depends(waits_then_reraises)) -> int:
            await anyio.lowlevel.checkpoint()
            raise ValueError("handler failed")

    async def one(container: Container, value: Value) -> None:
        if entry == "container":
            await container.call(root, value=value)
        else:
            async with container.scope() as scope:
                await scope.call(root, value=value)

    with prompt():
        async with Container() as container:
            gc.collect()
            gc.disable()
            try:
                value = Value()
                probe = weakref.ref(value)
                failed = False
                try:
                    await one(container, value)
                except ValueError:
                    failed = True
                assert failed
                del value
                await anyio.wait_all_tasks_blocked()
                assert probe() is None
            finally:
                gc.enable()


@pytest.mark.parametrize("how", ["fails", "fails beside", "cancelled"])
@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_a_call_that_waited_and_failed_is_freed_without_the_collector(
    how: str, entry: str
) -> None:
    """A call that waited in a dependency and then failed (in the calling task, or
    in a sibling while it waits, after going concurrent) or was cancelled is freed
    once the caller let go of the exception and the container's dispatcher had its
    turn, with the garbage collector off: nothing the exception's traceback reaches
    keeps a reference to it (such a cycle would keep the call's state and values
    alive until a collection)."""
    import gc
    import weakref

    class Value:
        pass

    probes: list[weakref.ref[Value]] = []
    gate = anyio.Event()

    async def waits(value: Value) -> Value:
        probes.append(weakref.ref(value))
        await gate.wait()
        if how == "fails":
            raise ValueError("boom")
        return value

    async def sibling() -> None:
        await anyio.lowlevel.checkpoint()
        if how == "fails beside":
            raise ValueError("boom")

    async def root(w: Value = Depends(waits), s: None = Depends(sibling)) -> None:
        await anyio.sleep_forever()  # pragma: no cover - never reached

    async def one(container: Container) -> None:
        if entry == "container":
            await container.call(root, value=Value())
        else:
            async with container.scope() as scope:
                await scope.call(root, value=Value())

    with prompt():
        async with Container() as container:
            gc.collect()
            gc.disable()
            try:
                if how == "cancelled":
                    with anyio.CancelScope() as outer:
                        outer.cancel()
                        await one(container)
                else:
                    if how == "fails":
                        gate.set()  # else it waits until the sibling's failure
                    failed = False
                    try:
                        await one(container)
                    except ValueError:
                        failed = True
                    assert failed
                await anyio.wait_all_tasks_blocked()  # the dispatcher's turn,
                await anyio.lowlevel.checkpoint()  # and its callbacks'
                assert len(probes) == 1
                assert probes[0]() is None
            finally:
                gc.enable()


@pytest.mark.parametrize("where", ["function", "request"])
@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_a_call_whose_teardown_failed_is_freed_without_the_collector(
    where: str, entry: str
) -> None:
    """A ``yield`` dependency's teardown raises (after the call succeeded, or while
    the call's own failure is thrown in): the call is freed once the caller let go
    of the exception, with the garbage collector off; no frame of the teardown path
    (the call's end, the scope's exit, closing a generator) keeps the exception its
    traceback reaches."""
    import gc
    import weakref

    class Value:
        pass

    probes: list[weakref.ref[Value]] = []

    async def gen(value: Value) -> AsyncIterator[Value]:
        probes.append(weakref.ref(value))
        try:
            yield value
        finally:
            raise RuntimeError("teardown")  # also over what is thrown in

    async def waits() -> None:
        await anyio.lowlevel.checkpoint()

    async def ok(g: Value = Depends(gen, scope=where)) -> None:
        pass

    async def fails(
        g: Value = Depends(gen, scope=where), w: None = Depends(waits)
    ) -> None:
        raise ValueError("root")

    with prompt():
        async with Container() as container:
            for root in (ok, fails):
                gc.collect()
                gc.disable()
                try:
                    raised: list[str] = []
                    try:
                        if entry == "container":
                            await container.call(root, value=Value())
                        else:
                            async with container.scope() as scope:
                                await scope.call(root, value=Value())
                    except Exception as exc:  # what it is, is not the point
                        raised.append(type(exc).__name__)
                    assert raised == ["RuntimeError"]
                    await anyio.wait_all_tasks_blocked()
                    await anyio.lowlevel.checkpoint()
                    assert probes[-1]() is None, root.__name__
                finally:
                    gc.enable()


async def test_a_concurrent_call_of_more_than_255_dependencies() -> None:
    """A call of 300 dependencies, one waiting for the last: it goes concurrent as
    any call does (a node's count of inputs still to come no longer fits a byte, so
    the counts are kept in a list), every dependency runs once, and the node over
    all of them runs after each of them."""
    from . import synthetic

    count = 300
    gate = anyio.Event()
    ran: list[int] = []

    def leaf(i: int) -> Any:
        async def dep() -> int:
            if i == 0:
                await gate.wait()  # until the last one ran elsewhere
            elif i == count - 1:
                gate.set()
            ran.append(i)
            return i

        dep.__qualname__ = f"leaf{i}"
        return dep

    over_all = synthetic.make("over_all", [leaf(i) for i in range(count)])

    async def root(x: int = Depends(over_all)) -> int:
        assert sorted(ran) == list(range(count))
        return x

    with prompt():
        async with Container() as container:
            assert await container.call(root) == 0
    assert sorted(ran) == list(range(count))
    assert ran[-1] == 0  # it waited for the last one


async def test_sequential_mode_is_fastapis_depth_first_order() -> None:
    """``Container(sequential=True)`` resolves one dependency at a time, depth first in
    declaration order, each subtree finished before the next sibling starts; the
    concurrent default runs the same dependencies, each after its inputs."""

    def make(rec: Recorder) -> Any:
        async def b() -> None:
            rec("b+")
            await anyio.lowlevel.checkpoint()
            rec("b-")

        async def c() -> None:
            rec("c+")
            await anyio.lowlevel.checkpoint()
            rec("c-")

        async def a(x: None = Depends(b), y: None = Depends(c)) -> None:
            rec("a+")
            await anyio.lowlevel.checkpoint()
            rec("a-")

        async def d() -> None:
            rec("d+")
            await anyio.lowlevel.checkpoint()
            rec("d-")

        def e() -> None:
            rec("e")

        async def root(
            x: None = Depends(a), y: None = Depends(d), z: None = Depends(e)
        ) -> None:
            rec("root")

        return root

    sequential = Recorder()
    async with Container(sequential=True) as container:
        await container.call(make(sequential))
    assert sequential.log == [
        "b+",
        "b-",
        "c+",
        "c-",
        "a+",
        "a-",
        "d+",
        "d-",
        "e",
        "root",
    ]

    concurrent = Recorder()
    async with Container() as container:
        await container.call(make(concurrent))
    assert sorted(concurrent.log) == sorted(sequential.log)
    for dep, dependent in [("b-", "a+"), ("c-", "a+"), ("a-", "root"), ("d-", "root")]:
        assert concurrent.before(dep, dependent)
    assert concurrent.log[-1] == "root"


async def test_sequential_mode_runs_everything_in_the_calling_task() -> None:
    """The sequential mode never spawns a task, even when dependencies suspend."""
    ids: list[int] = []

    async def a() -> None:
        await anyio.lowlevel.checkpoint()
        ids.append(task_id())

    async def b() -> None:
        await anyio.lowlevel.checkpoint()
        ids.append(task_id())

    async def root(x: None = Depends(a), y: None = Depends(b)) -> None:
        ids.append(task_id())

    async with Container(sequential=True) as container:
        await container.call(root)
    assert ids == [task_id()] * 3


async def test_generated_graph_gives_the_same_values_in_both_modes() -> None:
    """A larger DAG where some dependencies suspend: every argument reaches the right
    parameter, each dependency runs once, in both modes."""
    namespace: dict[str, Any] = {
        "Depends": Depends,
        "checkpoint": anyio.lowlevel.checkpoint,
    }
    calls: list[str] = []
    namespace["calls"] = calls
    lines = []
    size = 24
    for i in range(size):
        deps = [j for j in range(i) if (i * 7 + j * 3) % 5 == 0][:4]
        params = ", ".join(f"p{j}=Depends(n{j})" for j in deps)
        body = "    await checkpoint()\n" if i % 3 == 0 else ""
        total = " + ".join([str(i), *[f"p{j}" for j in deps]])
        head = f"async def n{i}({params}):\n    calls.append('n{i}')\n"
        lines.append(f"{head}{body}    return {total}\n")
    all_params = ", ".join(f"p{j}=Depends(n{j})" for j in range(size))
    returned = ", ".join(f"p{j}" for j in range(size))
    lines.append(f"async def root({all_params}):\n    return [{returned}]\n")
    exec("\n".join(lines), namespace)

    expected: list[int] = []
    for i in range(size):
        deps = [j for j in range(i) if (i * 7 + j * 3) % 5 == 0][:4]
        expected.append(i + sum(expected[j] for j in deps))

    for sequential in (True, False):
        calls.clear()
        with prompt():
            async with Container(sequential=sequential) as container:
                assert await container.call(namespace["root"]) == expected
        assert sorted(calls) == sorted(f"n{i}" for i in range(size))


# -- threads (docs/semantics.md §2) ----------------------------------------------------


async def test_sync_dependables_run_in_a_worker_thread_by_default() -> None:
    """Sync functions, class constructors, sync ``__call__``, both halves of a sync
    generator and a sync root run in worker threads, never on the event loop."""
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def fn() -> None:
        seen["fn"] = threading.get_ident()

    class Cls:
        def __init__(self) -> None:
            seen["cls"] = threading.get_ident()

    class Inst:
        def __call__(self) -> None:
            seen["inst"] = threading.get_ident()

    def gen() -> Iterator[None]:
        seen["gen setup"] = threading.get_ident()
        yield
        seen["gen teardown"] = threading.get_ident()

    def root(
        a: None = Depends(fn),
        b: Any = Depends(Cls),
        c: None = Depends(Inst()),
        d: None = Depends(gen),
    ) -> None:
        seen["root"] = threading.get_ident()

    async with Container() as container:
        await container.call(root)
    assert set(seen) == {"fn", "cls", "inst", "gen setup", "gen teardown", "root"}
    assert loop_thread not in seen.values()


async def test_container_wide_inline_sync() -> None:
    """``Container(sync_to_thread=False)`` runs every sync dependable on the loop."""
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def fn() -> None:
        seen.append(threading.get_ident())

    def gen() -> Iterator[None]:
        seen.append(threading.get_ident())
        yield
        seen.append(threading.get_ident())

    def root(a: None = Depends(fn), b: None = Depends(gen)) -> None:
        seen.append(threading.get_ident())

    async with Container(sync_to_thread=False) as container:
        await container.call(root)
    assert seen == [loop_thread] * 4


async def test_per_dependency_thread_choice_wins() -> None:
    """``Depends(sync_to_thread=...)`` overrides the container's choice either way."""
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def inline() -> None:
        seen["inline"] = threading.get_ident()

    def threaded() -> None:
        seen["threaded"] = threading.get_ident()

    async def root(
        a: None = Depends(inline, sync_to_thread=False),
        b: None = Depends(threaded, sync_to_thread=True),
    ) -> None: ...

    async with Container() as container:
        await container.call(root)
    assert seen["inline"] == loop_thread
    assert seen["threaded"] != loop_thread
    seen.clear()
    async with Container(sync_to_thread=False) as container:
        await container.call(root)
    assert seen["inline"] == loop_thread
    assert seen["threaded"] != loop_thread


async def test_async_dependables_run_on_the_loop() -> None:
    """Async functions, async ``__call__`` and async generators run on the event loop
    thread."""
    loop_thread = threading.get_ident()
    seen: list[int] = []

    class Inst:
        async def __call__(self) -> None:
            seen.append(threading.get_ident())

    async def agen() -> AsyncIterator[None]:
        seen.append(threading.get_ident())
        yield
        seen.append(threading.get_ident())

    async def root(a: None = Depends(Inst()), b: None = Depends(agen)) -> None:
        seen.append(threading.get_ident())

    async with Container() as container:
        await container.call(root)
    assert seen == [loop_thread] * 4


async def test_sync_dependencies_in_threads_overlap() -> None:
    """Two sync dependencies in worker threads overlap: each waits for the other's
    ``threading.Event`` (bounded, so a failure cannot hang the suite)."""
    first, second = threading.Event(), threading.Event()

    def a() -> bool:
        first.set()
        return second.wait(5)

    def b() -> bool:
        second.set()
        return first.wait(5)

    async def root(x: bool = Depends(a), y: bool = Depends(b)) -> tuple[bool, bool]:
        return x, y

    async with Container() as container:
        assert await container.call(root) == (True, True)


# -- values ----------------------------------------------------------------------------


async def test_values_fill_plain_parameters_by_name_everywhere() -> None:
    """A value fills every plain parameter of that name in the graph; defaults apply
    where a value is not given."""

    async def dep(token: str, limit: int = 10) -> tuple[str, int]:
        return token, limit

    def sync_dep(token: str) -> str:
        return token.upper()

    async def root(
        token: str, d: Any = Depends(dep), s: str = Depends(sync_dep)
    ) -> Any:
        return token, d, s

    async with Container() as container:
        assert await container.call(root, token="t") == ("t", ("t", 10), "T")
        assert await container.call(root, token="u", limit=1) == ("u", ("u", 1), "U")


async def test_unused_values_are_ignored() -> None:
    """Values nobody declares are ignored (like unused request inputs)."""

    async def root() -> str:
        return "ok"

    async with Container() as container:
        assert await container.call(root, whatever=1) == "ok"


# -- failure (docs/semantics.md §5) ----------------------------------------------------


async def test_the_caller_gets_the_original_exception_inline() -> None:
    """When nothing suspends, the caller gets the very exception object raised."""
    error = ValueError("boom")

    async def bad() -> None:
        raise error

    async def root(x: None = Depends(bad)) -> None: ...

    async with Container() as container:
        with pytest.raises(ValueError) as info:
            await container.call(root)
    assert info.value is error


@pytest.mark.parametrize("where", ["calling task", "runner task"])
async def test_the_caller_gets_the_original_exception_when_concurrent(
    where: str,
) -> None:
    """In a concurrent run the caller gets the original exception object (identity),
    never a one-member ExceptionGroup; the blocked sibling is cancelled."""
    error = LookupError("boom")
    both_started = anyio.Event()
    sibling_started = anyio.Event()
    forever = anyio.Event()
    cancelled: list[str] = []

    async def waits_forever() -> None:
        sibling_started.set()
        try:
            await forever.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append("sibling")
            raise

    async def fails() -> None:
        await both_started.wait()
        await sibling_started.wait()  # it fails while the sibling waits
        raise error

    async def starter() -> None:
        both_started.set()

    if where == "calling task":
        # fails suspends first, so it stays in the calling task.
        async def root(  # type: ignore[misc]
            x: None = Depends(fails),
            y: None = Depends(waits_forever),
            z: None = Depends(starter),
        ) -> None: ...
    else:

        async def root(
            y: None = Depends(waits_forever),
            x: None = Depends(fails),
            z: None = Depends(starter),
        ) -> None: ...

    with prompt():
        async with Container() as container:
            with pytest.raises(LookupError) as info:
                await container.call(root)
    assert info.value is error
    assert cancelled == ["sibling"]


class Fatal(BaseException):
    """A BaseException that is not a cancellation (like KeyboardInterrupt)."""


@pytest.mark.parametrize("where", ["inline", "calling task", "runner task"])
@pytest.mark.parametrize("kind", ["ExceptionGroup", "BaseException"])
async def test_group_and_base_exceptions_keep_their_identity(
    where: str, kind: str
) -> None:
    """A dependency that raises an ExceptionGroup itself (say from a task group of
    its own) or a non-Exception BaseException: the caller gets that very object, also
    when the run was concurrent and the failure cancelled a sibling."""
    error: BaseException = (
        ExceptionGroup("from a task group", [ValueError(1), KeyError(2)])
        if kind == "ExceptionGroup"
        else Fatal("fatal")
    )
    started = anyio.Event()

    async def bad() -> None:
        if where != "inline":
            await started.wait()
        raise error

    async def blocked() -> None:
        started.set()
        await anyio.sleep_forever()

    if where == "inline":

        async def root(b: None = Depends(bad)) -> None: ...
    elif where == "calling task":

        async def root(b: None = Depends(bad), s: None = Depends(blocked)) -> None: ...
    else:

        async def root(s: None = Depends(blocked), b: None = Depends(bad)) -> None: ...

    with prompt():
        async with Container() as container:
            for _ in range(2):  # a plan that went concurrent once may run differently
                with pytest.raises(BaseException) as info:
                    await container.call(root)
                assert info.value is error
                started = anyio.Event()


async def test_a_sibling_holding_its_own_cancel_scope_is_cancelled() -> None:
    """A sibling blocked forever inside a cancel scope of its own (say a
    ``fail_after`` timeout around a wait) is cancelled too when another dependency
    raises: the call returns promptly with the original exception."""
    error = ValueError("boom")
    started = anyio.Event()
    forever = anyio.Event()
    cancelled: list[str] = []

    async def guarded() -> None:
        try:
            with anyio.fail_after(60):
                started.set()
                await forever.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append("guarded")
            raise

    async def fails() -> None:
        await started.wait()
        raise error

    async def root(x: None = Depends(guarded), y: None = Depends(fails)) -> None: ...

    with prompt():
        async with Container() as container:
            with pytest.raises(ValueError) as info:
                await container.call(root)
    assert info.value is error
    assert cancelled == ["guarded"]


async def test_nothing_after_the_failure_starts() -> None:
    """Inline: a later sibling and the root never run after a dependency raised."""
    rec = Recorder()

    async def first() -> None:
        rec("first")

    async def bad() -> None:
        rec("bad")
        raise KeyError("k")

    async def later() -> None:
        rec("later")

    async def root(
        a: None = Depends(first), b: None = Depends(bad), c: None = Depends(later)
    ) -> None:
        rec("root")

    async with Container() as container:
        with pytest.raises(KeyError):
            await container.call(root)
    assert rec.log == ["first", "bad"]


async def test_nothing_after_a_concurrent_failure_starts() -> None:
    """Concurrent: dependents of the failed dependency, dependencies that were not yet
    ready, and the root never start; the blocked sibling is cancelled."""
    rec = Recorder()
    started = anyio.Event()
    forever = anyio.Event()

    async def blocked() -> None:
        rec("blocked")
        started.set()
        await forever.wait()

    async def bad() -> None:
        await started.wait()
        rec("bad")
        raise KeyError("k")

    async def after_bad(x: None = Depends(bad)) -> None:
        rec("after_bad")

    async def after_blocked(x: None = Depends(blocked)) -> None:
        rec("after_blocked")

    async def root(
        a: None = Depends(blocked),
        b: None = Depends(after_bad),
        c: None = Depends(after_blocked),
    ) -> None:
        rec("root")

    with prompt():
        async with Container() as container:
            with pytest.raises(KeyError):
                await container.call(root)
    assert rec.log == ["blocked", "bad"]


async def test_several_real_failures_make_an_exception_group() -> None:
    """An ExceptionGroup only when several dependencies really failed at once: here
    the second failure is shielded from the cancellation, so both fail."""
    first_error, second_error = ValueError("first"), KeyError("second")
    go = anyio.Event()
    b_waiting = anyio.Event()

    async def a() -> None:
        await b_waiting.wait()
        go.set()
        raise first_error

    async def b() -> None:
        with anyio.CancelScope(shield=True):
            b_waiting.set()
            await go.wait()
            raise second_error

    async def root(x: None = Depends(a), y: None = Depends(b)) -> None: ...

    with prompt():
        async with Container() as container:
            with pytest.raises(BaseExceptionGroup) as info:
                await container.call(root)
    assert set(map(id, info.value.exceptions)) == {id(first_error), id(second_error)}


async def test_the_container_is_usable_after_a_failed_call() -> None:
    """A failed concurrent call leaves nothing behind: the next call works."""
    started = anyio.Event()
    forever = anyio.Event()

    async def blocked() -> None:
        started.set()
        await forever.wait()

    async def bad() -> None:
        await started.wait()
        raise RuntimeError("x")

    async def root(a: None = Depends(blocked), b: None = Depends(bad)) -> None: ...

    async def ok(x: int = Depends(lambda: 1)) -> int:
        return x

    with prompt():
        async with Container() as container:
            with pytest.raises(RuntimeError):
                await container.call(root)
            assert await container.call(ok) == 1


async def test_the_root_failure_is_the_original_exception() -> None:
    """An exception raised by the root itself reaches the caller unchanged."""
    error = ValueError("root")

    async def dep() -> None:
        await anyio.lowlevel.checkpoint()

    async def root(x: None = Depends(dep)) -> None:
        raise error

    async with Container() as container:
        with pytest.raises(ValueError) as info:
            await container.call(root)
    assert info.value is error


async def test_sync_dependency_failure_in_a_thread() -> None:
    """An exception raised in a worker thread reaches the caller as the same object."""
    error = ValueError("thread")

    def bad() -> None:
        raise error

    async def root(x: None = Depends(bad)) -> None: ...

    async with Container() as container:
        with pytest.raises(ValueError) as info:
            await container.call(root)
    assert info.value is error


# -- external cancellation ------------------------------------------------------------


@pytest.mark.parametrize("concurrent", [False, True])
async def test_external_cancellation_stops_the_call(concurrent: bool) -> None:
    """Cancelling the caller's scope while dependencies wait ends the call promptly
    (the cancellation is caught by the caller's scope, not turned into an error), and
    every waiting dependency is cancelled."""
    waiting = anyio.Event()
    other_waiting = anyio.Event()
    forever = anyio.Event()
    cancelled: list[str] = []

    async def a() -> None:
        try:
            waiting.set()
            await forever.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append("a")
            raise

    async def b() -> None:
        try:
            other_waiting.set()
            await forever.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append("b")
            raise

    if concurrent:

        async def root(x: None = Depends(a), y: None = Depends(b)) -> None: ...
    else:
        other_waiting.set()

        async def root(x: None = Depends(a)) -> None:  # type: ignore[misc]
            ...

    with prompt():
        async with Container() as container:
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()

                async def caller() -> None:
                    with scope:
                        await container.call(root)

                tg.start_soon(caller)
                await waiting.wait()
                await other_waiting.wait()
                scope.cancel()
            assert scope.cancelled_caught
            assert sorted(cancelled) == (["a", "b"] if concurrent else ["a"])
            # And the container still works afterwards.
            assert await container.call(lambda: 5) == 5


# -- max_concurrency (docs/semantics.md §10) -------------------------------------------


async def test_max_concurrency_limits_across_calls() -> None:
    """``Depends(f, max_concurrency=1)``: two concurrent calls never run ``f`` at the
    same time, even once both calls are waiting for it."""
    arrived = 0
    both_arrived = anyio.Event()
    active = 0
    peak = 0

    async def arrive() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both_arrived.set()

    async def limited() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await both_arrived.wait()
        await anyio.lowlevel.checkpoint()
        active -= 1

    async def root(
        a: None = Depends(arrive), b: None = Depends(limited, max_concurrency=1)
    ) -> None: ...

    with prompt():
        async with Container() as container, anyio.create_task_group() as tg:
            tg.start_soon(container.call, root)
            tg.start_soon(container.call, root)
    assert peak == 1


async def test_a_freed_permit_goes_to_the_call_waiting_for_it() -> None:
    """A permit freed while another call waits for it goes to that call, even if the
    call that freed it asks for the same limit again before the waiter resumes (one
    dependency at a time: the second use follows the first in the same step): the
    limit is never exceeded. anyio's ``CapacityLimiter`` on asyncio let that second
    request slip in before 4.14.2 (agronholm/anyio#1170), which is why the floor is
    ``anyio>=4.14.2``: this test fails on 4.14.0."""
    gate = anyio.Event()
    entered = anyio.Event()
    active = peak = runs = 0

    async def work() -> None:
        nonlocal active, peak, runs
        runs += 1
        first = runs == 1
        active += 1
        peak = max(peak, active)
        try:
            if first:
                entered.set()
                await gate.wait()
            await anyio.lowlevel.checkpoint()
        finally:
            active -= 1

    one = Depends(work, use_cache=False, max_concurrency=1)

    async def twice(a: None = one, b: None = one) -> None: ...

    async def once(a: None = one) -> None: ...

    with prompt():
        async with (
            Container(sequential=True) as container,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(container.call, twice)  # holds the permit, will want it again
            await entered.wait()
            tg.start_soon(container.call, once)
            await anyio.wait_all_tasks_blocked()  # `once` waits for the permit
            gate.set()
    assert runs == 3
    assert peak == 1


async def test_a_yield_dependency_holds_its_permit_until_teardown() -> None:
    """A limited ``yield`` dependency keeps its permit until it is torn down, and the
    limit is shared by all scopes of the container; a cache hit takes no permit."""
    rec = Recorder()
    arrived = anyio.Event()

    async def gen() -> AsyncIterator[int]:
        rec("enter")
        yield 1
        rec("exit")

    limited = Depends(gen, max_concurrency=1)

    async def arrive() -> None:
        arrived.set()

    async def first(g: int = limited) -> int:
        return g

    async def second(a: None = Depends(arrive), g: int = limited) -> int:
        rec("second")
        return g

    with prompt():
        async with Container() as container, anyio.create_task_group() as tg:
            async with container.scope() as scope:
                await scope.call(first)
                # A cache hit in the same scope takes no permit (else: deadlock).
                await scope.call(first)
                tg.start_soon(container.call, second)
                await arrived.wait()
                assert rec.log == ["enter"]
            rec("scope closed")
    assert [e for e in rec.log if e != "scope closed"] == [
        "enter",
        "exit",
        "enter",
        "second",
        "exit",
    ]
    assert rec.before("exit", "second")


async def test_a_dependency_still_waiting_goes_concurrent_within_a_few_rounds(
    anyio_backend_name: str,
) -> None:
    """A dependency that waits for something still to happen (an event only its
    ready sibling sets) makes the call go concurrent, and the sibling start in a
    runner task, within a bounded number of loop rounds after the wait began: two on
    asyncio (the first round's callback sees the awaited future not done and starts
    the runner, which runs in the next round), three on trio (the helper task, woken
    for the next round, waits one checkpoint more for the call that woke it, then
    starts the runner). Rounds are counted by a task that passes one checkpoint per
    round (on trio, whose tasks run in a random order within a round, a count may
    read one more)."""
    rounds = 0
    seen: dict[str, int] = {}
    sibling_ran = anyio.Event()

    async def count_rounds() -> None:
        nonlocal rounds
        while True:
            await anyio.lowlevel.checkpoint()
            rounds += 1

    async def waits() -> str:
        seen["wait"] = rounds
        await sibling_ran.wait()
        return "w"

    async def sibling() -> str:
        seen["sibling"] = rounds
        sibling_ran.set()
        await anyio.lowlevel.checkpoint()  # (may wait: a runner task's work)
        return "s"

    async def root(w: str = Depends(waits), s: str = Depends(sibling)) -> str:
        return w + s

    with prompt():
        async with Container() as container, anyio.create_task_group() as tg:
            tg.start_soon(count_rounds)
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            for _ in range(3):
                seen.clear()
                sibling_ran = anyio.Event()
                assert await container.call(root) == "ws"
                late = seen["sibling"] - seen["wait"]
                assert late <= (2 if anyio_backend_name == "asyncio" else 4), seen
            tg.cancel_scope.cancel()


async def test_a_call_goes_on_when_no_task_can_be_started_where_it_was_decided(
    anyio_backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On asyncio a call that waited its rounds goes concurrent in the loop's round
    callback, which starts its runner tasks there. If starting a task from a loop
    callback fails (as with an anyio release that asks more of the caller), nothing
    is left half made: the call's calling task runs what the runner would have and
    the call returns its result, and from then on calls go concurrent from the
    dispatcher's task. (trio decides in that task always: the same results.)"""
    from anydepends._runtime import Runtime

    start_runner = Runtime.start_runner

    def only_in_a_task(rt: Runtime, coro: Any, ctx: Any, abandoned: Any) -> None:
        if anyio_backend_name == "asyncio":
            import asyncio

            if asyncio.current_task() is None:
                raise RuntimeError("no task to start a task from")
        start_runner(rt, coro, ctx, abandoned)

    monkeypatch.setattr(Runtime, "start_runner", only_in_a_task)
    release = anyio.Event()
    ran_in: list[int] = []

    async def waits() -> str:
        await release.wait()
        return "w"

    async def sibling() -> str:
        ran_in.append(task_id())
        await anyio.lowlevel.checkpoint()
        return "s"

    async def root(w: str = Depends(waits), s: str = Depends(sibling)) -> str:
        return w + s

    async def release_when_blocked() -> None:
        await anyio.wait_all_tasks_blocked()
        release.set()

    with prompt():
        async with Container() as container:
            for _ in range(2):
                release = anyio.Event()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(release_when_blocked)
                    assert await container.call(root) == "ws"
            first, second = ran_in
            if anyio_backend_name == "asyncio":
                assert first == task_id()  # the calling task did the runner's work
            else:
                assert first != task_id()
            assert second != task_id()  # a runner, started by the dispatcher's task


@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_a_dependency_passing_checkpoint_after_checkpoint_overlaps_its_sibling(
    entry: str,
) -> None:
    """A dependency that keeps passing checkpoints (cooperative work, or polling)
    beside a ready sibling makes the call go concurrent like one that waits on
    anything else: here it polls until the sibling has run, so the call finishes
    only if they overlap. (On asyncio a checkpoint alone, which resumes the next
    round for certain, does not register the call; a second one in the same
    dependency does, counting the round waited.)"""
    sibling_ran = False

    async def polls() -> str:
        while not sibling_ran:
            await anyio.lowlevel.checkpoint()
        return "p"

    async def sibling() -> str:
        nonlocal sibling_ran
        await anyio.lowlevel.checkpoint()  # (may wait: it gets a runner)
        sibling_ran = True
        return "s"

    async def root(p: str = Depends(polls), s: str = Depends(sibling)) -> str:
        return p + s

    with prompt():
        async with Container() as container:
            for _ in range(3):
                sibling_ran = False
                if entry == "container":
                    assert await container.call(root) == "ps"
                else:
                    async with container.scope() as scope:
                        assert await scope.call(root) == "ps"
