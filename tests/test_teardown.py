"""Teardown of ``yield`` dependencies: order, exceptions, cancellation, tasks (§5, §6).

A ``yield`` dependency's code after ``yield`` is its teardown. Every test here logs
what each generator saw, so order and exactly-once are checked, not assumed.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import Container, Depends, YieldError
from anydepends._codeinfo import GEN_INFO_ATTR, GenInfo

from .helpers import Recorder, isolated, prompt, task_id


def tracked(rec: Recorder, name: str, value: Any = None) -> Callable[..., Any]:
    """An async generator dependable logging enter, exit and any exception it saw."""

    async def gen() -> AsyncIterator[Any]:
        rec(f"{name}+")
        try:
            yield name if value is None else value
        except BaseException as exc:
            rec((name, exc))
            raise
        rec(f"{name}-")

    gen.__qualname__ = name
    return gen


def assert_partial_order(rec: Recorder, edges: list[tuple[str, str]]) -> None:
    """For each (dependent, dependency): the dependent is torn down first."""
    for dependent, dependency in edges:
        assert rec.before(f"{dependent}-", f"{dependency}-"), (dependent, dependency)


# -- order (docs/semantics.md §6) ------------------------------------------------------


def diamond(rec: Recorder, gate: bool) -> tuple[Any, list[tuple[str, str]]]:
    """root -> a, b, e; a -> c; b -> c; c -> d: every one a yield dependency. With
    *gate*, a and b wait for each other during setup, so the run goes concurrent."""
    a_in, b_in = anyio.Event(), anyio.Event()

    async def d() -> AsyncIterator[str]:
        rec("d+")
        yield "d"
        await anyio.lowlevel.checkpoint()
        rec("d-")

    async def c(x: str = Depends(d)) -> AsyncIterator[str]:
        rec("c+")
        yield "c"
        rec("c-")

    async def a(x: str = Depends(c)) -> AsyncIterator[str]:
        rec("a+")
        if gate:
            a_in.set()
            await b_in.wait()
        yield "a"
        await anyio.lowlevel.checkpoint()
        rec("a-")

    def b(x: str = Depends(c)) -> Iterator[str]:  # a sync one, in a thread
        rec("b+")
        yield "b"
        rec("b-")

    async def b_async(x: str = Depends(b)) -> AsyncIterator[str]:
        rec("ba+")
        if gate:
            b_in.set()
            await a_in.wait()
        yield "ba"
        rec("ba-")

    async def e() -> AsyncIterator[str]:
        rec("e+")
        yield "e"
        rec("e-")

    async def root(
        x: str = Depends(a), y: str = Depends(b_async), z: str = Depends(e)
    ) -> str:
        rec("root")
        return x + y + z

    edges = [("a", "c"), ("b", "c"), ("ba", "b"), ("c", "d")]
    return root, edges


@pytest.mark.parametrize("gate", [False, True], ids=["inline", "concurrent"])
async def test_teardown_respects_the_dependency_order(gate: bool) -> None:
    """Every dependency is torn down after its dependents and before its own
    dependencies, whether the setup ran inline or concurrently; each exactly once."""
    rec = Recorder()
    root, edges = diamond(rec, gate)
    with prompt():
        async with Container() as container:
            assert await container.call(root) == "abae"
    assert_partial_order(rec, edges)
    for name in "abcde":
        assert rec.count(f"{name}+") == rec.count(f"{name}-") == 1
    assert rec.before("root", "a-")


async def test_sequential_teardown_is_fastapis_lifo_order() -> None:
    """Sequential mode: FastAPI's example ``endpoint(a=A->B->C, d=D, c=C)`` enters
    C, B, A, D and exits D, A, B, C."""
    rec = Recorder()
    c = tracked(rec, "C")

    async def b(x: Any = Depends(c)) -> AsyncIterator[str]:
        rec("B+")
        yield "B"
        rec("B-")

    async def a(x: Any = Depends(b)) -> AsyncIterator[str]:
        rec("A+")
        yield "A"
        rec("A-")

    d = tracked(rec, "D")

    async def endpoint(
        x: Any = Depends(a), y: Any = Depends(d), z: Any = Depends(c)
    ) -> None:
        rec("endpoint")

    async with Container(sequential=True) as container:
        await container.call(endpoint)
    assert rec.log == ["C+", "B+", "A+", "D+", "endpoint", "D-", "A-", "B-", "C-"]


async def test_lifetimes_tear_down_at_their_ends() -> None:
    """Function scope before ``scope.call`` returns, request scope at scope exit, app
    scope at container exit; in ``container.call`` the function stack exits before
    the (private) request scope."""
    rec = Recorder()
    f, r, app = tracked(rec, "f"), tracked(rec, "r"), tracked(rec, "app")

    async def root(
        x: Any = Depends(r),
        y: Any = Depends(f, scope="function"),
        z: Any = Depends(app, scope="app"),
    ) -> None:
        rec("root")

    async with Container() as container:
        async with container.scope() as scope:
            await scope.call(root)
            assert sorted(rec.log) == ["app+", "f+", "f-", "r+", "root"]
            assert rec.log[-2:] == ["root", "f-"]
        assert rec.log[-1] == "r-"
        await container.call(root)
        assert sorted(rec.log[-5:-3]) == ["f+", "r+"]
        assert rec.log[-3:] == ["root", "f-", "r-"]
        assert rec.count("app-") == 0
    assert rec.log[-1] == "app-"
    assert rec.count("app+") == 1


# -- exceptions at the yield (docs/semantics.md §5) ------------------------------------


async def test_completed_setups_see_the_original_exception_in_teardown_order() -> None:
    """When a later dependency raises, the ``yield`` dependencies already set up see
    that very exception object at their yield, innermost first; the caller gets it."""
    rec = Recorder()
    error = ValueError("boom")
    first, second = tracked(rec, "first"), tracked(rec, "second")

    async def bad() -> None:
        raise error

    never = tracked(rec, "never")

    async def root(
        a: Any = Depends(first),
        b: Any = Depends(second),
        c: Any = Depends(bad),
        d: Any = Depends(never),
    ) -> None: ...

    async with Container() as container:
        with pytest.raises(ValueError) as info:
            await container.call(root)
    assert info.value is error
    setups = [e for e in rec.log if isinstance(e, str)]
    assert sorted(setups) == ["first+", "second+"]
    seen = [e for e in rec.log if not isinstance(e, str)]
    assert seen == [(name[:-1], error) for name in reversed(setups)]


async def test_a_root_failure_is_thrown_into_every_yield_dependency() -> None:
    """An exception from the root reaches every set-up generator, sync ones too
    (thrown in at their yield in a worker thread)."""
    rec = Recorder()
    error = KeyError("root")

    def sync_gen() -> Iterator[str]:
        rec("sync+")
        try:
            yield "s"
        except KeyError as exc:
            rec(("sync", exc))
            raise

    agen = tracked(rec, "async")

    async def root(a: Any = Depends(sync_gen), b: Any = Depends(agen)) -> None:
        raise error

    async with Container() as container:
        with pytest.raises(KeyError) as info:
            await container.call(root)
    assert info.value is error
    # The sync setup runs in a thread, so the two setups may overlap: no order.
    assert sorted(map(str, rec.log)) == sorted(
        map(str, ["sync+", "async+", ("async", error), ("sync", error)])
    )


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_swallowing_the_exception_is_a_yield_error(kind: str) -> None:
    """A ``yield`` dependency that catches the exception at its yield and neither
    re-raises nor raises another is an error (FastAPI >= 0.110), whose cause is the
    swallowed exception."""
    error = ValueError("swallowed")

    async def async_swallow() -> AsyncIterator[None]:
        try:
            yield
        except ValueError:
            pass

    def sync_swallow() -> Iterator[None]:
        try:
            yield
        except ValueError:
            pass

    swallow = async_swallow if kind == "async" else sync_swallow

    async def root(x: None = Depends(swallow)) -> None:
        raise error

    async with Container() as container:
        with pytest.raises(YieldError) as info:
            await container.call(root)
    assert info.value.__cause__ is error or info.value.__context__ is error


async def test_converting_the_exception_is_allowed() -> None:
    """Raising another exception from the one seen at the yield replaces it."""

    async def convert() -> AsyncIterator[None]:
        try:
            yield
        except ValueError as exc:
            raise LookupError("converted") from exc

    async def root(x: None = Depends(convert)) -> None:
        raise ValueError("original")

    async with Container() as container:
        with pytest.raises(LookupError, match="converted"):
            await container.call(root)


async def test_a_teardown_exception_is_what_later_teardowns_see() -> None:
    """An exception raised in a teardown is thrown into the teardowns that follow,
    and is what the caller gets, even though the root succeeded."""
    rec = Recorder()
    error = RuntimeError("teardown")
    outer = tracked(rec, "outer")

    async def inner(x: Any = Depends(outer)) -> AsyncIterator[str]:
        rec("inner+")
        yield "inner"
        raise error

    async def root(x: Any = Depends(inner)) -> str:
        return "ok"

    async with Container() as container:
        with pytest.raises(RuntimeError) as info:
            await container.call(root)
    assert info.value is error
    assert rec.log == ["outer+", "inner+", ("outer", error)]


async def test_a_teardown_exception_replaces_the_root_failure() -> None:
    """A teardown that raises while handling the root's exception: the later
    teardowns and the caller see the new exception."""
    rec = Recorder()
    first, replaced = ValueError("first"), RuntimeError("replaced")
    outer = tracked(rec, "outer")

    async def inner(x: Any = Depends(outer)) -> AsyncIterator[None]:
        try:
            yield
        except ValueError:
            raise replaced from None

    async def root(x: None = Depends(inner)) -> None:
        raise first

    async with Container() as container:
        with pytest.raises(RuntimeError) as info:
            await container.call(root)
    assert info.value is replaced
    assert rec.log == ["outer+", ("outer", replaced)]


async def test_request_scope_teardown_error_surfaces_at_scope_exit() -> None:
    """A request-scoped teardown that raises after a successful call raises when the
    scope exits, not from ``scope.call``."""
    error = RuntimeError("late")

    async def gen() -> AsyncIterator[None]:
        yield
        raise error

    async def root(x: None = Depends(gen)) -> str:
        return "ok"

    async with Container() as container:
        with pytest.raises(RuntimeError) as info:
            async with container.scope() as scope:
                assert await scope.call(root) == "ok"
        assert info.value is error


async def test_request_scoped_generators_see_the_scope_body_exception() -> None:
    """An exception leaving the ``async with scope`` body is thrown into the scope's
    ``yield`` dependencies, and propagates unchanged."""
    rec = Recorder()
    error = ValueError("body")
    gen = tracked(rec, "gen")

    async def root(x: Any = Depends(gen)) -> None: ...

    async with Container() as container:
        with pytest.raises(ValueError) as info:
            async with container.scope() as scope:
                await scope.call(root)
                raise error
    assert info.value is error
    assert rec.log == ["gen+", ("gen", error)]


async def test_swallowing_at_scope_exit_is_a_yield_error() -> None:
    """A request-scoped generator that swallows the scope body's exception is a
    YieldError at scope exit."""

    async def gen() -> AsyncIterator[None]:
        try:
            yield
        except ValueError:
            pass

    async def root(x: None = Depends(gen)) -> None: ...

    async with Container() as container:
        with pytest.raises(YieldError):
            async with container.scope() as scope:
                await scope.call(root)
                raise ValueError("body")


# -- exactly once, never for an incomplete setup ---------------------------------------


async def test_a_shared_generator_is_set_up_and_torn_down_once() -> None:
    """A cached ``yield`` dependency used by many dependents (and by two calls in one
    scope): one setup, one teardown."""
    rec = Recorder()
    shared = tracked(rec, "shared")

    async def a(x: Any = Depends(shared)) -> None: ...

    async def b(x: Any = Depends(shared)) -> None: ...

    async def root(
        x: None = Depends(a), y: None = Depends(b), z: Any = Depends(shared)
    ) -> None: ...

    async with Container() as container, container.scope() as scope:
        await scope.call(root)
        await scope.call(root)
    assert rec.log == ["shared+", "shared-"]


async def test_use_cache_false_generators_are_each_torn_down() -> None:
    """Each ``use_cache=False`` declaration of a generator is its own setup, with its
    own teardown."""
    rec = Recorder()
    gen = tracked(rec, "gen")

    async def root(
        a: Any = Depends(gen, use_cache=False), b: Any = Depends(gen, use_cache=False)
    ) -> None: ...

    async with Container() as container:
        await container.call(root)
    assert rec.log == ["gen+", "gen+", "gen-", "gen-"]


async def test_no_teardown_for_a_setup_that_raised() -> None:
    """A generator that raises before its yield has no teardown (and the others see
    its exception)."""
    rec = Recorder()
    error = ValueError("setup")
    ok = tracked(rec, "ok")

    async def broken(x: Any = Depends(ok)) -> AsyncIterator[None]:
        rec("broken+")
        raise error
        yield  # pragma: no cover

    async def root(x: None = Depends(broken)) -> None: ...

    async with Container() as container:
        with pytest.raises(ValueError) as info:
            await container.call(root)
    assert info.value is error
    assert rec.log == ["ok+", "broken+", ("ok", error)]


async def test_no_teardown_for_a_setup_that_was_cancelled() -> None:
    """A generator still in its setup when a sibling fails is cancelled and gets no
    teardown; the generators whose setup completed do, seeing the exception."""
    rec = Recorder()
    error = LookupError("sibling")
    in_setup = anyio.Event()
    forever = anyio.Event()
    done = tracked(rec, "done")

    async def slow() -> AsyncIterator[None]:
        rec("slow+")
        in_setup.set()
        await forever.wait()
        yield  # pragma: no cover
        rec("slow-")  # pragma: no cover

    async def bad(x: Any = Depends(done)) -> None:
        await in_setup.wait()
        raise error

    async def root(x: None = Depends(slow), y: None = Depends(bad)) -> None: ...

    with prompt():
        async with Container() as container:
            with pytest.raises(LookupError) as info:
                await container.call(root)
    assert info.value is error
    assert sorted(map(str, rec.log)) == sorted(
        map(str, ["slow+", "done+", ("done", error)])
    )
    assert rec.log[-1] == ("done", error)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_generator_that_never_yields_is_a_yield_error(kind: str) -> None:
    """A ``yield`` dependency that returns without yielding fails its setup."""

    async def async_none() -> AsyncIterator[None]:
        if False:
            yield

    def sync_none() -> Iterator[None]:
        if False:
            yield

    async def root(
        x: None = Depends(async_none if kind == "async" else sync_none),
    ) -> None: ...

    async with Container() as container:
        with pytest.raises(YieldError):
            await container.call(root)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_generator_that_yields_twice_is_a_yield_error(kind: str) -> None:
    """A ``yield`` dependency that yields a second time fails at teardown, and is
    closed (its ``finally`` runs)."""
    rec = Recorder()

    async def async_twice() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            rec("closed")

    def sync_twice() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            rec("closed")

    async def root(
        x: int = Depends(async_twice if kind == "async" else sync_twice),
    ) -> int:
        return x

    async with Container() as container:
        with pytest.raises(YieldError):
            await container.call(root)
    assert rec.log == ["closed"]


@pytest.mark.parametrize("twice", [False, True], ids=["finishes", "yields-again"])
@pytest.mark.parametrize("told", [False, True], ids=["read", "told-it-cannot-wait"])
@pytest.mark.parametrize("entry", ["container.call", "scope"])
async def test_a_teardown_that_waits_then_finishes_or_yields_again(
    entry: str, told: bool, twice: bool
) -> None:
    """An async generator whose teardown waits either finishes, and the call
    returns, or yields a second time, and the call fails with a ``YieldError`` after
    the generator was closed; exactly once either way, in a private scope and in a
    held one. Also when the engine was told its teardown cannot wait (a wrapper's
    carried ``GenInfo``): closing it in place then stops where it waits, and the
    rest is awaited."""
    rec = Recorder()

    async def waits() -> AsyncIterator[int]:
        try:
            yield 1
            await anyio.lowlevel.checkpoint()
            rec("waited")
            if twice:
                yield 2
        finally:
            rec("closed")

    if told:
        info = GenInfo(teardown_waits=False, may_hold_scope=False, setup_waits=False)
        setattr(waits, GEN_INFO_ATTR, info)

    async def root(x: int = Depends(waits)) -> int:
        return x

    async with Container() as container:
        with pytest.raises(YieldError) if twice else contextlib.nullcontext():
            if entry == "scope":
                async with container.scope() as scope:
                    assert await scope.call(root) == 1
            else:
                assert await container.call(root) == 1
    assert rec.log == ["waited", "closed"]


# -- cancellation: teardown is shielded ------------------------------------------------


@pytest.mark.parametrize("gate", [False, True], ids=["inline", "concurrent"])
async def test_a_cancelled_call_still_tears_down_completely(gate: bool) -> None:
    """Cancelling the caller (via an event, not a timer) still runs every teardown to
    the end, including awaits inside it; each generator sees the cancellation."""
    rec = Recorder()
    ready = anyio.Event()
    forever = anyio.Event()
    a_in, b_in = anyio.Event(), anyio.Event()

    async def a() -> AsyncIterator[str]:
        rec("a+")
        if gate:
            a_in.set()
            await b_in.wait()
        try:
            yield "a"
        except BaseException as exc:
            rec(("a saw", type(exc)))
            await anyio.lowlevel.checkpoint()
            rec("a-")
            raise

    async def b() -> AsyncIterator[str]:
        rec("b+")
        if gate:
            b_in.set()
            await a_in.wait()
        try:
            yield "b"
        finally:
            await anyio.lowlevel.checkpoint()
            rec("b-")

    async def root(x: str = Depends(a), y: str = Depends(b)) -> None:
        ready.set()
        await forever.wait()

    with prompt():
        async with Container() as container, anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def caller() -> None:
                with scope:
                    await container.call(root)

            tg.start_soon(caller)
            await ready.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert ("a saw", anyio.get_cancelled_exc_class()) in rec.log
    assert rec.count("a-") == rec.count("b-") == 1


async def test_a_cancelled_scope_exit_still_tears_down() -> None:
    """A held scope exited because its body was cancelled still tears down its
    request-scoped generators completely (their awaits are shielded)."""
    rec = Recorder()

    async def gen() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await anyio.lowlevel.checkpoint()
            rec("torn down")

    async def root(x: None = Depends(gen)) -> None: ...

    async with Container() as container:
        with anyio.CancelScope() as cancel:
            async with container.scope() as scope:
                await scope.call(root)
                cancel.cancel()
                await anyio.lowlevel.checkpoint()
        assert cancel.cancelled_caught
    assert rec.log == ["torn down"]


# -- setup and teardown in the same task (docs/semantics.md §6) ------------------------

LIFETIMES = ["function", "request", "app"]
MODES = ["inline", "concurrent"]


def probe_pair(mode: str, body: Callable[[str], Any]) -> tuple[Any, Any]:
    """Two async generators; in "concurrent" mode each waits in its setup for the
    other to start, so the run must go concurrent (one of them in a runner task).
    *body(name)* is an async context manager factory held across the yield."""
    g1_in, g2_in = anyio.Event(), anyio.Event()

    def make(name: str, mine: anyio.Event, other: anyio.Event) -> Any:
        async def gen() -> AsyncIterator[str]:
            async with body(name):
                if mode == "concurrent":
                    mine.set()
                    await other.wait()
                yield name
                await anyio.lowlevel.checkpoint()

        gen.__qualname__ = name
        return gen

    return make("g1", g1_in, g2_in), make("g2", g2_in, g1_in)


async def run_pair(lifetime: str, mode: str, body: Callable[[str], Any]) -> None:
    """Resolve the pair with *lifetime* in a held scope, then close everything."""
    g1, g2 = probe_pair(mode, body)

    async def root(
        x: str = Depends(g1, scope=lifetime),  # type: ignore[arg-type]
        y: str = Depends(g2, scope=lifetime),  # type: ignore[arg-type]
    ) -> str:
        return x + y

    with prompt():
        async with Container() as container, container.scope() as scope:
            assert await scope.call(root) == "g1g2"


def task_probe(results: dict[str, tuple[int, int]]) -> Callable[[str], Any]:
    """Records (setup task, teardown task) per generator."""

    @contextlib.asynccontextmanager
    async def body(name: str) -> AsyncIterator[None]:
        setup_task = task_id()
        yield
        results[name] = (setup_task, task_id())

    return body


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lifetime", LIFETIMES)
async def test_setup_and_teardown_run_in_the_same_task(
    lifetime: str, mode: str
) -> None:
    """Setup and teardown of each async ``yield`` dependency run in one task, for
    every lifetime, also when the setup ran concurrently in a runner task."""
    results: dict[str, tuple[int, int]] = {}
    await run_pair(lifetime, mode, task_probe(results))
    assert set(results) == {"g1", "g2"}
    for setup_task, teardown_task in results.values():
        assert setup_task == teardown_task


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lifetime", LIFETIMES)
async def test_contextvar_reset_after_the_yield_works(lifetime: str, mode: str) -> None:
    """``token = cv.set(...)`` before the yield and ``cv.reset(token)`` after it work
    (the teardown runs in the setup's context), for every lifetime and mode."""
    cv: contextvars.ContextVar[str] = contextvars.ContextVar("cv", default="unset")
    reset: list[str] = []

    @contextlib.asynccontextmanager
    async def body(name: str) -> AsyncIterator[None]:
        token = cv.set(name)
        yield
        assert cv.get() == name
        cv.reset(token)
        reset.append(name)

    await run_pair(lifetime, mode, body)
    assert sorted(reset) == ["g1", "g2"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lifetime", LIFETIMES)
def test_a_cancel_scope_held_across_the_yield_works(
    anyio_backend: tuple[str, dict[str, Any]], lifetime: str, mode: str
) -> None:
    """An anyio cancel scope (here ``fail_after``) entered before the yield and exited
    after it works, for every lifetime and mode. Run isolated: a broken
    implementation may hang where no cancellation reaches."""
    exited: list[str] = []

    @contextlib.asynccontextmanager
    async def body(name: str) -> AsyncIterator[None]:
        with anyio.fail_after(60):
            yield
        exited.append(name)

    isolated(anyio_backend, lambda: run_pair(lifetime, mode, body))
    assert sorted(exited) == ["g1", "g2"]


async def test_same_task_when_a_held_scope_is_used_from_another_task() -> None:
    """A request-scoped generator set up by a ``scope.call`` made from a child task
    that has finished before the scope exits is still torn down in its setup task,
    with its ContextVar token still valid."""
    results: dict[str, tuple[int, int]] = {}
    cv: contextvars.ContextVar[str] = contextvars.ContextVar("cv")

    async def gen() -> AsyncIterator[None]:
        setup_task = task_id()
        token = cv.set("gen")
        yield
        cv.reset(token)
        results["gen"] = (setup_task, task_id())

    async def root(x: None = Depends(gen)) -> None: ...

    with prompt():
        async with Container() as container, container.scope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(scope.call, root)
            assert results == {}
    setup_task, teardown_task = results["gen"]
    assert setup_task == teardown_task


def test_a_cancel_scope_across_the_yield_from_another_task(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    """The same, with a cancel scope held across the yield (run isolated)."""
    exited: list[str] = []

    async def gen() -> AsyncIterator[None]:
        with anyio.CancelScope():
            yield
        exited.append("gen")

    async def root(x: None = Depends(gen)) -> None: ...

    async def scenario() -> None:
        async with (
            Container() as container,
            container.scope() as scope,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(scope.call, root)

    isolated(anyio_backend, scenario)
    assert exited == ["gen"]


def test_inline_generators_keep_their_task_cancel_scope_and_context(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    """When nothing suspends (``container.call`` and ``scope.call``, function and
    request lifetimes), each generator's teardown runs in its setup's task, and a
    cancel scope and a ContextVar token held across the yield work. (Which task that
    is, the calling task or a helper, is the scheduler's choice: docs/semantics.md §11.)
    Run isolated, like every cancel-scope-across-yield case."""
    pairs: list[tuple[int, int]] = []
    cv: contextvars.ContextVar[str] = contextvars.ContextVar("cv", default="unset")

    async def gen() -> AsyncIterator[None]:
        token = cv.set("set")
        setup_task = task_id()
        with anyio.CancelScope():
            yield
        pairs.append((setup_task, task_id()))
        cv.reset(token)

    async def root(
        x: None = Depends(gen), y: None = Depends(gen, scope="function")
    ) -> None: ...

    async def scenario() -> None:
        async with Container() as container:
            await container.call(root)
            async with container.scope() as scope:
                await scope.call(root)

    isolated(anyio_backend, scenario)
    assert len(pairs) == 4
    for setup_task, teardown_task in pairs:
        assert setup_task == teardown_task


async def test_app_generators_torn_down_in_reverse_at_container_exit() -> None:
    """App-scoped generators are set up once and torn down at container exit, in
    reverse order of setup (a dependency after its dependent), each in its own setup
    task."""
    rec = Recorder()
    tasks: dict[str, list[int]] = {}

    def make(name: str, dep: Any = None) -> Any:
        async def gen(
            x: Any = Depends(dep, scope="app") if dep else None,
        ) -> AsyncIterator[str]:
            tasks[name] = [task_id()]
            rec(f"{name}+")
            yield name
            rec(f"{name}-")
            tasks[name].append(task_id())

        gen.__qualname__ = name
        return gen

    first = make("first")
    second = make("second", first)
    other = make("other")

    async def root(
        a: str = Depends(second, scope="app"),
        b: str = Depends(other, scope="app"),
    ) -> str:
        return a + b

    with prompt():
        async with Container() as container:
            assert await container.call(root) == "secondother"
            assert await container.call(root) == "secondother"
            setups = list(rec.log)
            assert sorted(setups) == ["first+", "other+", "second+"]
            assert rec.before("first+", "second+")
    teardowns = rec.log[len(setups) :]
    assert teardowns == [s.replace("+", "-") for s in reversed(setups)]
    for setup_task, teardown_task in tasks.values():
        assert setup_task == teardown_task
