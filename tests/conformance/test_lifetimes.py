# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Lifetimes and limits: the ``scope`` rule and ``max_concurrency``
(docs/semantics.md §7 and §10)."""

from typing import Annotated, Any

import anyio
import anyio.lowlevel
import fastapi
import pytest

from .harness import (
    FASTAPI,
    Case,
    Log,
    Markers,
    Outcome,
    anydepends_markers,
    check,
    conformance_case,
    logged,
    run_anydepends,
    run_fastapi,
)

# ------------------------------------------------------------------ scope rule


@conformance_case
def case_allowed_scope_combinations(m: Markers) -> Case:
    log = Log()

    async def fgen() -> Any:
        with logged(log, "fgen"):
            yield "f"

    async def rgen() -> Any:
        with logged(log, "rgen"):
            yield "r"

    def plain(f: str = m.Depends(fgen, scope="function")) -> str:
        log("plain", "call")
        return "plain+" + f

    def fparent(
        r: str = m.Depends(rgen),
        f: str = m.Depends(fgen, scope="function"),
    ) -> Any:
        with logged(log, "fparent"):
            yield f"fparent({r},{f})"

    def root(
        a: str = m.Depends(plain, scope="request"),
        b: str = m.Depends(fparent, scope="function"),
    ) -> Any:
        log("root", "call")
        return [a, b]

    return Case(root, log)


async def test_allowed_scope_combinations() -> None:
    """Allowed: a non-generator declared ``scope="request"`` over a function-scoped
    generator; a function-scoped generator over a request-scoped generator (no
    explicit scope) and over a function-scoped one. Function scope is torn down
    first (LIFO), then request scope."""
    await check(
        case_allowed_scope_combinations,
        expect=["plain+f", "fparent(r,f)"],
        expect_log=[
            ("fgen", "enter"),
            ("plain", "call"),
            ("rgen", "enter"),
            ("fparent", "enter"),
            ("root", "call"),
            ("fparent", "exit"),
            ("fgen", "exit"),
            ("rgen", "exit"),
        ],
        partial_order={"fparent": ["rgen", "fgen"]},
    )


def case_request_over_function(m: Markers) -> Case:
    log = Log()

    def fdep() -> str:
        log("fdep", "call")
        return "f"

    async def rgen(f: str = m.Depends(fdep, scope="function")) -> Any:
        with logged(log, "rgen"):
            yield f

    def root(r: str = m.Depends(rgen)) -> Any:
        return r

    return Case(root, log)


async def test_request_generator_on_explicit_function_scope_is_refused() -> None:
    """A request-scoped generator declaring ``Depends(f, scope="function")`` is
    refused before anything runs: FastAPI raises ``DependencyScopeError`` at
    registration, anydepends a compile-time ``DependencyError`` naming both
    (docs/semantics.md §7)."""
    from anydepends import DependencyError

    fa = await run_fastapi(case_request_over_function(FASTAPI))
    assert type(fa.exc).__name__ == "DependencyScopeError", fa
    m = anydepends_markers()
    for sequential in (True, False):
        ad = await run_anydepends(case_request_over_function(m), sequential=sequential)
        assert isinstance(ad.exc, DependencyError), ad
        assert "rgen" in str(ad.exc) and "fdep" in str(ad.exc), ad
        assert ad.log == [], ad


# ------------------------------------------------------------ max_concurrency


def case_limited(m: Markers, state: dict[str, int]) -> Case:
    log = Log()

    async def work(n: int) -> int:
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        state["active"] -= 1
        log("work", "call")
        return n

    Limited = Annotated[int, m.Depends(work, use_cache=False, max_concurrency=1)]

    async def a(x: Limited) -> int:
        return x + 1

    async def b(x: Limited) -> int:
        return x + 2

    async def root(x: Limited, ya: int = m.Depends(a), yb: int = m.Depends(b)) -> Any:
        return [x, ya, yb]

    return Case(root, log, values={"n": 10})


async def test_max_concurrency_limits_one_depends_object() -> None:
    """``max_concurrency`` is accepted like FastAPI's and changes no result: three
    ``use_cache=False`` uses of one limited ``Depends`` object give FastAPI's values
    and calls, and the concurrent container never runs two of them at once."""
    state = {"active": 0, "peak": 0}

    def peak_is_one(outcome: Outcome) -> None:
        assert outcome.result == [10, 11, 12], outcome
        assert outcome.log.count(("work", "call")) == 3, outcome
        assert state["peak"] == 1, state

    await check(
        lambda m: case_limited(m, state),
        expect=[10, 11, 12],
        expect_log=[("work", "call")] * 3,
        concurrent=peak_is_one,
    )


async def test_max_concurrency_is_shared_by_concurrent_calls() -> None:
    """(FastAPI: 8 concurrent requests against ``max_concurrency=2`` reach at most 2
    active at once.) Eight concurrent ``container.call``s of a root using one
    ``Depends(..., max_concurrency=2)`` object all complete, at most two inside at
    once."""
    from anydepends import Container, Depends

    state = {"active": 0, "peak": 0, "done": 0}

    async def work() -> int:
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        state["active"] -= 1
        return 1

    limited = Depends(work, max_concurrency=2)

    async def root(x: int = limited) -> int:
        return x

    async with Container() as container:

        async def one() -> None:
            assert await container.call(root) == 1
            state["done"] += 1

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
    assert state["done"] == 8
    assert 1 <= state["peak"] <= 2, state


async def test_a_yield_dependency_holds_its_permit_until_teardown() -> None:
    """A ``yield`` dependency with ``max_concurrency=1`` keeps its permit until its
    teardown: a second scope cannot enter it while the first scope is open, and
    enters it once the first scope has closed. (Proved with events and
    ``wait_all_tasks_blocked``, not timing.)"""
    from anydepends import Container, Depends

    log: list[str] = []

    async def held() -> Any:
        log.append("enter")
        yield 1
        log.append("exit")

    async def root(x: int = Depends(held, max_concurrency=1)) -> int:
        return x

    # The timeout only keeps a broken build from hanging the suite.
    with anyio.fail_after(30):
        await _hold_and_wait(Container, root, log)
    assert log == ["enter", "exit", "enter", "exit"]


async def _hold_and_wait(container_class: Any, root: Any, log: list[str]) -> None:
    async with container_class() as container:
        second_done = anyio.Event()

        async def second() -> None:
            assert await container.call(root) == 1
            second_done.set()

        async with anyio.create_task_group() as tg:
            async with container.scope() as scope:
                assert await scope.call(root) == 1
                assert log == ["enter"]
                tg.start_soon(second)
                await anyio.wait_all_tasks_blocked()
                assert log == ["enter"], "second scope entered a held dependency"
            await second_done.wait()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
async def test_invalid_max_concurrency_is_refused_like_fastapi(bad: Any) -> None:
    """Anything but a positive ``int`` or ``None`` is refused when the ``Depends`` is
    built, as in FastAPI. (FastAPI raises ``ValueError``; anydepends raises its
    ``DependencyError``, docs/semantics.md §12; the type is not part of the
    contract.)"""
    from anydepends import DependencyError, Depends

    def f() -> int:
        return 1

    with pytest.raises(ValueError, match="max_concurrency"):
        fastapi.Depends(f, max_concurrency=bad)
    with pytest.raises(DependencyError, match="max_concurrency"):
        Depends(f, max_concurrency=bad)
