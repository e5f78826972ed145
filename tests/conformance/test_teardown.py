# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""``yield`` dependencies: teardown order, exceptions thrown in at ``yield``, failures
during resolution and in teardown, function vs request scope
(docs/semantics.md §5 and §6).

FastAPI's exact order is required of ``Container(sequential=True)``; the concurrent
container must give the same results and exceptions and keep the partial order of
docs/semantics.md §6.
"""

import itertools
import threading
from contextvars import ContextVar
from typing import Any

import anyio

from .harness import (
    Case,
    Log,
    Markers,
    Outcome,
    anydepends_markers,
    assert_dependency_order,
    check,
    conformance_case,
    describe_exc,
    logged,
)


@conformance_case
def case_fastapi_example_order(m: Markers) -> Case:
    log = Log()

    async def C() -> Any:
        with logged(log, "C"):
            yield "c"

    def B(c: str = m.Depends(C)) -> Any:
        with logged(log, "B"):
            yield "b" + c

    async def A(b: str = m.Depends(B)) -> Any:
        with logged(log, "A"):
            yield "a" + b

    def D() -> Any:
        with logged(log, "D"):
            yield "d"

    async def root(
        a: str = m.Depends(A), d: str = m.Depends(D), c: str = m.Depends(C)
    ) -> Any:
        log("root", "call")
        return [a, d, c]

    return Case(root, log)


async def test_teardown_order() -> None:
    """FastAPI's example ``endpoint(a=Depends(A→B→C), d=Depends(D), c=Depends(C))``
    enters C, B, A, D and exits D, A, B, C (LIFO). The sequential container gives
    exactly that; the concurrent one tears every dependency down after all its
    dependents and before its own dependencies."""
    await check(
        case_fastapi_example_order,
        expect=["abc", "d", "c"],
        expect_log=[
            ("C", "enter"),
            ("B", "enter"),
            ("A", "enter"),
            ("D", "enter"),
            ("root", "call"),
            ("D", "exit"),
            ("A", "exit"),
            ("B", "exit"),
            ("C", "exit"),
        ],
        partial_order={"A": ["B"], "B": ["C"]},
    )


@conformance_case
def case_root_raises(m: Markers) -> Case:
    log = Log()

    async def C() -> Any:
        with logged(log, "C"):
            yield "c"

    def B(c: str = m.Depends(C)) -> Any:
        with logged(log, "B"):
            yield "b"

    async def F() -> Any:
        with logged(log, "F"):
            yield "f"

    def root(b: str = m.Depends(B), f: str = m.Depends(F, scope="function")) -> Any:
        log("root", "raise")
        raise ValueError("boom")

    return Case(root, log)


async def test_exception_from_the_root_is_thrown_into_yield_dependencies() -> None:
    """When the root raises, every ``yield`` dependency (function and request scope,
    sync and async) sees that exception (same type and message) at its ``yield``, in
    teardown order, and the caller gets it."""
    await check(
        case_root_raises,
        expect_exc=("ValueError", "boom"),
        expect_log=[
            ("C", "enter"),
            ("B", "enter"),
            ("F", "enter"),
            ("root", "raise"),
            ("F", "exit", "ValueError", "boom"),
            ("B", "exit", "ValueError", "boom"),
            ("C", "exit", "ValueError", "boom"),
        ],
        partial_order={"B": ["C"]},
    )


@conformance_case
def case_dependency_raises(m: Markers) -> Case:
    log = Log()

    async def opened() -> Any:
        with logged(log, "opened"):
            yield "conn"

    def failing(conn: str = m.Depends(opened)) -> str:
        log("failing", "raise")
        raise PermissionError("denied")

    async def later(f: str = m.Depends(failing)) -> Any:
        with logged(log, "later"):
            yield "never"

    def root(x: str = m.Depends(failing), y: Any = m.Depends(later)) -> Any:
        log("root", "call")
        return "unreachable"

    return Case(root, log)


async def test_a_failing_dependency_stops_the_rest() -> None:
    """A dependency that raises ends the resolution: what depends on it and the root
    never run, the ``yield`` dependency entered before it sees the exception, and the
    caller gets it."""
    await check(
        case_dependency_raises,
        expect_exc=("PermissionError", "denied"),
        expect_log=[
            ("opened", "enter"),
            ("failing", "raise"),
            ("opened", "exit", "PermissionError", "denied"),
        ],
    )


@conformance_case
def case_dependency_raises_before_siblings(m: Markers) -> Case:
    log = Log()

    async def first() -> Any:
        with logged(log, "first"):
            yield 1

    async def failing(f: int = m.Depends(first)) -> int:
        log("failing", "raise")
        raise LookupError("missing")

    def sibling() -> Any:
        with logged(log, "sibling"):
            yield 3

    def root(
        a: int = m.Depends(first),
        b: int = m.Depends(failing),
        c: int = m.Depends(sibling),
    ) -> Any:
        log("root", "call")
        return [a, b, c]

    return Case(root, log)


def _failure_invariants(outcome: Outcome) -> None:
    """What the concurrent container guarantees when ``failing`` raises: the root is
    never called, ``first`` (entered before ``failing``) sees the exception, and a
    sibling that happened to be entered sees it too (it is torn down, not lost)."""
    log = outcome.log
    assert ("root", "call") not in log, outcome
    assert ("first", "exit", "LookupError", "missing") in log, outcome
    if ("sibling", "enter") in log:
        assert ("sibling", "exit", "LookupError", "missing") in log, outcome
    else:
        assert not any(entry[0] == "sibling" for entry in log), outcome


async def test_later_siblings_never_start_after_a_failure() -> None:
    """In FastAPI's order, a sibling declared after a failing dependency never
    starts (sequential container: same log). Concurrently it may already be running;
    then it is torn down with the original exception, and the caller still gets the
    original exception object."""
    await check(
        case_dependency_raises_before_siblings,
        expect_exc=("LookupError", "missing"),
        expect_log=[
            ("first", "enter"),
            ("failing", "raise"),
            ("first", "exit", "LookupError", "missing"),
        ],
        concurrent=_failure_invariants,
    )


@conformance_case
def case_setup_raises(m: Markers) -> Case:
    log = Log()

    def outer() -> Any:
        with logged(log, "outer"):
            yield "o"

    async def broken(o: str = m.Depends(outer)) -> Any:
        log("broken", "setup")
        raise KeyError("setup failed")
        yield "never"

    def root(b: str = m.Depends(broken)) -> Any:
        return b

    return Case(root, log)


async def test_a_yield_dependency_failing_in_setup_gets_no_teardown() -> None:
    """A ``yield`` dependency that raises before its ``yield`` is not torn down; the
    ones whose setup completed see its exception; the caller gets it."""
    await check(
        case_setup_raises,
        expect_exc=("KeyError", "'setup failed'"),
        expect_log=[
            ("outer", "enter"),
            ("broken", "setup"),
            ("outer", "exit", "KeyError", "'setup failed'"),
        ],
    )


@conformance_case
def case_teardown_raises(m: Markers) -> Case:
    log = Log()

    async def outer() -> Any:
        with logged(log, "outer"):
            yield "o"

    def inner(o: str = m.Depends(outer)) -> Any:
        with logged(log, "inner"):
            yield "i"
        log("inner", "raise")
        raise RuntimeError("teardown failed")

    def root(i: str = m.Depends(inner)) -> Any:
        log("root", "call")
        return i

    return Case(root, log)


async def test_teardown_exception_is_what_outer_teardowns_see() -> None:
    """An exception raised in a teardown, after a successful root, is what the
    teardowns after it see at their ``yield``, and it reaches the caller."""
    await check(
        case_teardown_raises,
        expect_exc=("RuntimeError", "teardown failed"),
        expect_log=[
            ("outer", "enter"),
            ("inner", "enter"),
            ("root", "call"),
            ("inner", "exit"),
            ("inner", "raise"),
            ("outer", "exit", "RuntimeError", "teardown failed"),
        ],
    )


@conformance_case
def case_teardown_converts(m: Markers) -> Case:
    log = Log()

    def outer() -> Any:
        with logged(log, "outer"):
            yield "o"

    async def inner(o: str = m.Depends(outer)) -> Any:
        try:
            with logged(log, "inner"):
                yield "i"
        except ValueError as exc:
            log("inner", "convert")
            raise ConnectionError("converted") from exc

    async def root(i: str = m.Depends(inner)) -> Any:
        log("root", "raise")
        raise ValueError("original")

    return Case(root, log)


async def test_teardown_may_convert_the_exception() -> None:
    """A ``yield`` dependency that catches the exception and raises another replaces
    it: dependencies torn down later see the new one, and the caller gets it."""
    await check(
        case_teardown_converts,
        expect_exc=("ConnectionError", "converted"),
        expect_log=[
            ("outer", "enter"),
            ("inner", "enter"),
            ("root", "raise"),
            ("inner", "exit", "ValueError", "original"),
            ("inner", "convert"),
            ("outer", "exit", "ConnectionError", "converted"),
        ],
    )


@conformance_case
def case_function_vs_request_scope(m: Markers) -> Case:
    log = Log()

    async def rdep() -> Any:
        with logged(log, "rdep"):
            yield "r"

    def fdep(r: str = m.Depends(rdep)) -> Any:
        with logged(log, "fdep"):
            yield "f" + r

    async def rdep2() -> Any:
        with logged(log, "rdep2"):
            yield "r2"

    async def fdep2() -> Any:
        with logged(log, "fdep2"):
            yield "f2"

    def root(
        a: str = m.Depends(rdep2),
        b: str = m.Depends(fdep, scope="function"),
        c: str = m.Depends(fdep2, scope="function"),
    ) -> Any:
        log("root", "call")
        return [a, b, c]

    return Case(root, log)


def _function_scope_first(outcome: Outcome) -> None:
    log = outcome.log
    assert outcome.result == ["r2", "fr", "f2"], outcome
    exits = [entry[0] for entry in log if entry[1] == "exit"]
    assert sorted(exits[:2]) == ["fdep", "fdep2"], outcome
    assert sorted(exits[2:]) == ["rdep", "rdep2"], outcome
    assert_dependency_order(log, {"fdep": ["rdep"]})


async def test_function_scope_exits_before_request_scope() -> None:
    """Function-scoped ``yield`` dependencies are torn down before request-scoped
    ones, whatever the declaration order: ``rdep2`` (request) declared first,
    then ``fdep`` (function, over request-scoped ``rdep``), then ``fdep2``
    (function) exit as fdep2, fdep, then rdep, rdep2 in FastAPI."""
    await check(
        case_function_vs_request_scope,
        expect=["r2", "fr", "f2"],
        expect_log=[
            ("rdep2", "enter"),
            ("rdep", "enter"),
            ("fdep", "enter"),
            ("fdep2", "enter"),
            ("root", "call"),
            ("fdep2", "exit"),
            ("fdep", "exit"),
            ("rdep", "exit"),
            ("rdep2", "exit"),
        ],
        concurrent=_function_scope_first,
    )


async def test_function_scope_ends_with_call_and_request_scope_with_scope() -> None:
    """(anydepends lifetimes, FastAPI's two exit stacks) In a held ``Scope``, the
    function-scoped dependencies of a ``scope.call`` are torn down before that call
    returns; the request-scoped ones only when the ``Scope`` exits, in FastAPI's
    order."""
    from anydepends import Container

    for sequential in (True, False):
        case = case_function_vs_request_scope(anydepends_markers())
        async with Container(sequential=sequential) as container:
            async with container.scope() as scope:
                result = await scope.call(case.root)
                after_call = list(case.log.entries)
            after_scope = list(case.log.entries)
        assert result == ["r2", "fr", "f2"]
        assert {e[0] for e in after_call if e[1] == "exit"} == {"fdep", "fdep2"}
        assert {e[0] for e in after_scope[len(after_call) :]} == {"rdep", "rdep2"}
        if sequential:
            assert after_scope[len(after_call) :] == [
                ("rdep", "exit"),
                ("rdep2", "exit"),
            ]


@conformance_case
def case_cached_generator_torn_down_once(m: Markers) -> Case:
    log = Log()

    async def session() -> Any:
        with logged(log, "session"):
            yield "s"

    async def repo(s: str = m.Depends(session)) -> str:
        log("repo", "call")
        return "repo:" + s

    def service(s: str = m.Depends(session), r: str = m.Depends(repo)) -> Any:
        with logged(log, "service"):
            yield [s, r]

    def root(
        s: str = m.Depends(session),
        svc: Any = m.Depends(service),
        r: str = m.Depends(repo),
    ) -> Any:
        log("root", "call")
        return [s, svc, r]

    return Case(root, log)


async def test_a_cached_generator_is_entered_and_torn_down_once() -> None:
    """A ``yield`` dependency needed by several dependables in one call is entered
    once and torn down once, after everything that depends on it."""
    await check(
        case_cached_generator_torn_down_once,
        expect=["s", ["s", "repo:s"], "repo:s"],
        expect_log=[
            ("session", "enter"),
            ("repo", "call"),
            ("service", "enter"),
            ("root", "call"),
            ("service", "exit"),
            ("session", "exit"),
        ],
        partial_order={"service": ["session"]},
    )


# ------------------------------------------------------------------ more teardown


@conformance_case
def case_exception_identity(m: Markers) -> Case:
    log = Log()
    raised = ValueError("the one")

    async def agen() -> Any:
        try:
            yield "a"
        except ValueError as exc:
            log("agen", "same object", exc is raised)
            raise

    def gen(a: str = m.Depends(agen)) -> Any:
        try:
            yield "g"
        except ValueError as exc:
            log("gen", "same object", exc is raised)
            raise

    async def root(g: str = m.Depends(gen)) -> Any:
        raise raised

    case = Case(root, log)
    case.raised = raised  # type: ignore[attr-defined]
    return case


async def test_yield_dependencies_and_the_caller_get_the_original_object() -> None:
    """The exception thrown in at ``yield`` is the very object the root raised
    (also in a sync generator's worker thread), and so is the one the caller
    gets."""
    results = await check(
        case_exception_identity,
        expect_exc=("ValueError", "the one"),
        expect_log=[("gen", "same object", True), ("agen", "same object", True)],
    )
    # The identity of what the caller got: each run built its own ``raised``.
    for outcome in [results.sequential, *results.concurrent]:
        assert type(outcome.exc) is ValueError, outcome


async def test_the_caller_gets_the_original_exception_object() -> None:
    """``container.call`` re-raises the root's exception object itself, not a copy
    or an ``ExceptionGroup``, from both containers."""
    from anydepends import Container

    for sequential in (True, False):
        case = case_exception_identity(anydepends_markers())
        async with Container(sequential=sequential) as container:
            try:
                await container.call(case.root)
            except ValueError as exc:
                assert exc is case.raised  # type: ignore[attr-defined]
            else:  # pragma: no cover
                raise AssertionError("no exception")


CTX: ContextVar[str] = ContextVar("CTX", default="unset")


@conformance_case
def case_same_task_teardown(m: Markers) -> Case:
    log = Log()

    async def with_context(n: int) -> Any:
        token = CTX.set(f"set{n}")
        try:
            yield CTX.get()
        finally:
            log("with_context", "sees", CTX.get())
            CTX.reset(token)  # ValueError if torn down in another context
            log("with_context", "reset")

    async def with_cancel_scope(c: str = m.Depends(with_context)) -> Any:
        with anyio.CancelScope():
            yield c + "+scope"
        log("with_cancel_scope", "exit")

    async def sibling() -> Any:
        with anyio.CancelScope():
            yield "sibling"
        log("sibling", "exit")

    async def root(
        a: str = m.Depends(with_cancel_scope), b: str = m.Depends(sibling)
    ) -> Any:
        return [a, b]

    return Case(root, log, values={"n": 1})


async def test_setup_and_teardown_run_in_the_same_task() -> None:
    """An async ``yield`` dependency may set a ``ContextVar`` before ``yield`` and
    reset it with its token after, and hold an anyio ``CancelScope`` across its
    ``yield``: setup and teardown run in the same task and context."""
    await check(
        case_same_task_teardown,
        expect=["set1+scope", "sibling"],
        expect_log=[
            ("sibling", "exit"),
            ("with_cancel_scope", "exit"),
            ("with_context", "sees", "set1"),
            ("with_context", "reset"),
        ],
    )


@conformance_case
def case_two_teardowns_raise(m: Markers) -> Case:
    log = Log()

    async def first() -> Any:
        with logged(log, "first"):
            yield 1
        raise RuntimeError("first failed")

    def second() -> Any:
        with logged(log, "second"):
            yield 2
        raise RuntimeError("second failed")

    async def root(a: int = m.Depends(first), b: int = m.Depends(second)) -> Any:
        log("root", "call")
        return [a, b]

    return Case(root, log)


def _the_first_teardown_error(outcome: Outcome) -> None:
    """Concurrently the two independent teardowns may run in either order: the one
    torn down first raises, the other sees that error at its ``yield`` and re-raises
    it, and that is what the caller gets."""
    exits = [entry for entry in outcome.log if entry[1] == "exit"]
    assert len(exits) == 2, outcome
    first_down, last_down = exits
    assert len(first_down) == 2, outcome
    error = ("RuntimeError", f"{first_down[0]} failed")
    assert last_down[2:] == error, outcome
    assert outcome.exc_summary == error, outcome


async def test_a_teardown_error_is_seen_by_later_teardowns_and_the_caller() -> None:
    """Two teardowns that raise after their ``yield``: the first torn down
    (``second``, LIFO) raises, ``first`` sees that error at its ``yield`` and lets it
    propagate (so its own ``raise`` never runs), and the caller gets ``second
    failed``."""
    await check(
        case_two_teardowns_raise,
        expect_exc=("RuntimeError", "second failed"),
        expect_log=[
            ("first", "enter"),
            ("second", "enter"),
            ("root", "call"),
            ("second", "exit"),
            ("first", "exit", "RuntimeError", "second failed"),
        ],
        concurrent=_the_first_teardown_error,
    )


@conformance_case
def case_uncached_generator(m: Markers) -> Case:
    log = Log()
    counter = itertools.count(1)

    async def gen() -> Any:
        value = next(counter)
        with logged(log, f"gen{value}"):
            yield value

    def root(
        a: int = m.Depends(gen, use_cache=False),
        b: int = m.Depends(gen, use_cache=False),
    ) -> Any:
        log("root", "call")
        return sorted([a, b])

    return Case(root, log)


async def test_an_uncached_generator_is_entered_per_declaration() -> None:
    """Two ``use_cache=False`` declarations of one ``yield`` dependency are two
    setups and two teardowns, in LIFO order."""
    await check(
        case_uncached_generator,
        expect=[1, 2],
        expect_log=[
            ("gen1", "enter"),
            ("gen2", "enter"),
            ("root", "call"),
            ("gen2", "exit"),
            ("gen1", "exit"),
        ],
    )


@conformance_case
def case_failure_during_sync_generator_setup(m: Markers) -> Case:
    log = Log()
    started = threading.Event()

    def sync_gen() -> Any:
        log("sync_gen", "enter")
        started.set()
        try:
            yield "s"
        except BaseException as exc:
            log("sync_gen", "exit", *describe_exc(exc))
            raise
        log("sync_gen", "exit")

    def failing() -> str:
        # Concurrently: fail only once sync_gen's setup has begun in its thread, so
        # that setup completes and must be torn down. (In FastAPI's order it has
        # already finished; the timeout is a safety net, not a proof.)
        assert started.wait(30)
        log("failing", "raise")
        raise ValueError("failed during a sibling's setup")

    def root(g: str = m.Depends(sync_gen), f: str = m.Depends(failing)) -> Any:
        log("root", "call")
        return [g, f]

    return Case(root, log)


async def test_failure_while_a_sync_generator_sets_up() -> None:
    """A sibling fails while a sync generator's setup runs in its worker thread
    (concurrent container) or after it (FastAPI's order): the setup completes, so
    the generator is torn down once and sees the original exception at its
    ``yield``, and the caller gets that exception, never a cancellation."""
    await check(
        case_failure_during_sync_generator_setup,
        expect_exc=("ValueError", "failed during a sibling's setup"),
        expect_log=[
            ("sync_gen", "enter"),
            ("failing", "raise"),
            ("sync_gen", "exit", "ValueError", "failed during a sibling's setup"),
        ],
    )
