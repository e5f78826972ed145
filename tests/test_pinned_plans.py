"""``Container.compile(fn, overrides=..., sequential=...)``: plans pinned to an override
set and a mode, for framework integrations (FastAPI's ``app.dependency_overrides``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
import pytest

from anydepends import Container, DeclarationError, Depends


async def source() -> str:
    return "source"


async def replacement() -> str:
    return "replacement"


async def other() -> str:
    return "other"


async def root(value: Annotated[str, Depends(source)]) -> str:
    return value


async def test_pinned_overrides_apply_to_that_plan_only() -> None:
    """The explicit overrides replace the original in the pinned plan; the container's
    own overrides and its ordinary plans are untouched."""
    async with Container() as container:
        pinned = container.compile(root, overrides={source: replacement})
        assert await container.call(pinned) == "replacement"
        async with container.scope() as scope:
            assert await scope.call(pinned) == "replacement"
        assert dict(container.overrides) == {}
        assert await container.call(root) == "source"


async def test_pinned_plan_merges_and_keeps_its_overrides() -> None:
    """Explicit overrides apply over the container's (and win); a pinned plan keeps the
    set it was compiled with after ``container.overrides`` change."""
    async with Container() as container:
        container.overrides[source] = other
        merged = container.compile(root, overrides={})
        explicit = container.compile(root, overrides={source: replacement})
        assert await container.call(merged) == "other"
        assert await container.call(explicit) == "replacement"
        del container.overrides[source]
        assert await container.call(merged) == "other"
        assert await container.call(root) == "source"
        assert await container.call(container.compile(root, overrides={})) == "source"


def test_pinned_plans_are_cached_per_override_set() -> None:
    """The same root, dependencies, override set and mode give the same plan object;
    registering context types drops it (parameters may change meaning)."""
    container = Container()
    first = container.compile(root, overrides={source: replacement})
    assert container.compile(root, overrides={source: replacement}) is first
    assert container.compile(root, overrides={source: other}) is not first
    assert container.compile(root, sequential=True) is not first
    container.add_context_types(int)
    assert container.compile(root, overrides={source: replacement}) is not first


def test_unusable_explicit_override_is_a_declaration_error() -> None:
    """An explicit replacement is validated like ``container.overrides[...] = ...``."""

    def variadic(*args: int) -> int:
        return 0

    with pytest.raises(DeclarationError, match="override of"):
        Container().compile(root, overrides={source: variadic})


def _logging_graph(log: list[str]) -> Callable[..., Awaitable[None]]:
    async def a() -> None:
        log.append("a start")
        await anyio.lowlevel.checkpoint()
        log.append("a end")

    async def b() -> None:
        log.append("b start")
        await anyio.lowlevel.checkpoint()
        log.append("b end")

    async def both(_a: None = Depends(a), _b: None = Depends(b)) -> None:
        return None

    return both


def _handshake() -> Callable[..., Awaitable[None]]:
    """Two dependencies that each wait for the other's event: only overlap finishes."""
    a_ready, b_ready = anyio.Event(), anyio.Event()

    async def a() -> None:
        a_ready.set()
        await b_ready.wait()

    async def b() -> None:
        b_ready.set()
        await a_ready.wait()

    async def both(_a: None = Depends(a), _b: None = Depends(b)) -> None:
        return None

    return both


async def test_pinned_sequential_on_a_concurrent_container() -> None:
    """``sequential=True`` runs one dependency at a time, in declaration order, on a
    container that is concurrent by default."""
    log: list[str] = []
    both = _logging_graph(log)
    async with Container() as container:
        await container.call(container.compile(both, sequential=True))
        assert log == ["a start", "a end", "b start", "b end"]
        log.clear()
        async with container.scope() as scope:
            await scope.call(container.compile(both, sequential=True))
        assert log == ["a start", "a end", "b start", "b end"]
        with anyio.move_on_after(0.2) as waited:  # asserts a deadlock, not a duration
            await container.call(container.compile(_handshake(), sequential=True))
        assert waited.cancelled_caught


async def test_pinned_concurrent_on_a_sequential_container() -> None:
    """``sequential=False`` overlaps independent dependencies on a sequential
    container: two dependencies waiting for each other's event both finish."""
    async with Container(sequential=True) as container, container.scope() as scope:
        with anyio.fail_after(5):
            await scope.call(container.compile(_handshake(), sequential=False))
