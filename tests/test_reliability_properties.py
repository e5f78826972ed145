"""Property-based tests: random dependency DAGs against a reference resolver.

Each example is a random graph of every kind of dependable (async and sync functions,
async and sync generators, classes) with random ``use_cache`` and lifetimes and shared
nodes, run through a few operations (``container.call``, a scope with one or two
``scope.call``s, one of them maybe from a child task) on asyncio and trio, and compared
with :class:`tests.reliability_support.Reference`: FastAPI's sequential semantics plus
anydepends' documented deviation (a cache hit never re-runs its subtree).
"""

from __future__ import annotations

import gc
import warnings
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anydepends import Container, Depends

from .reliability_support import (
    BACKENDS,
    GraphSpec,
    Op,
    Recorder,
    Reference,
    Shapes,
    check_clean,
    check_structure,
    check_teardowns,
    count_tasks,
    drive,
    graph_specs,
    hypothesis_settings,
    normalized,
    ops_strategy,
    run,
    segment_counts,
)

SETTINGS = hypothesis_settings(short=40, full=400)


def _execute(
    backend: str, spec: GraphSpec, ops: list[Op], **options: Any
) -> tuple[Recorder, list[Any]]:
    """Run *ops* on *backend*; check no task, generator or warning is left behind."""
    rec = Recorder(spec)

    async def main() -> list[Any]:
        before = count_tasks()
        values = await drive(spec, ops, rec, **options)
        assert count_tasks() == before, "a helper task outlived its container"
        return values

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = run(backend, main)
        gc.collect(0)  # young garbage: a dropped generator is closed (and flagged) now
    assert not [str(w.message) for w in caught]
    check_clean(rec)
    return rec, values


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(spec=graph_specs(), ops=ops_strategy, threads=st.booleans())
def test_sequential_matches_reference_exactly(
    backend: str, spec: GraphSpec, ops: list[Op], threads: bool
) -> None:
    """In sequential mode a run is exactly the reference's: the same calls, setups
    and teardowns, in the same order, with the same invocation numbers (so the same
    cached values reach the same parameters), torn down at the same lifetime
    boundaries (function scope before ``call`` returns, request scope at scope exit,
    app scope at container exit)."""
    rec, values = _execute(backend, spec, ops, sequential=True, sync_to_thread=threads)
    ref = Reference(spec)
    roots = ref.run(ops)
    assert normalized(rec.events) == ref.events, spec.describe()
    assert [v.iid for v in values] == roots
    assert {i: rec.instances[i] for i in ref.instances} == ref.instances
    check_teardowns(rec)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(spec=graph_specs(), ops=ops_strategy, threads=st.booleans())
def test_concurrent_matches_reference(
    backend: str, spec: GraphSpec, ops: list[Op], threads: bool
) -> None:
    """Concurrently (the default), between any two lifetime boundaries every node is
    called, set up and torn down as often as the reference says; every value is wired
    as the graph says; every completed setup is torn down exactly once, after all its
    dependents and before its own dependencies.

    Only where one cache key is declared both with and without ``use_cache`` is the
    count a bound rather than exact: which declaration stores first is a race the
    design allows ("the first stored wins")."""
    rec, values = _execute(backend, spec, ops, sync_to_thread=threads)
    ref = Reference(spec)
    roots = ref.run(ops)
    assert len(values) == len(roots)
    shapes = Shapes()
    expected_shape = shapes.of(roots[0], ref.instances)
    for value in values:
        assert shapes.of(value.iid, rec.instances) == expected_shape, spec.describe()
    actual = segment_counts(rec.events)
    wanted = segment_counts(ref.events)
    assert len(actual) == len(wanted)
    mixed = spec.mixed_nodes()
    for got, want in zip(actual, wanted, strict=True):
        for key in set(got) | set(want):
            if key[1] in mixed:
                assert got[key] <= want[key], (key, got, want, spec.describe())
            else:
                assert got[key] == want[key], (key, got, want, spec.describe())
    check_teardowns(rec)
    check_structure(values, spec, rec)


@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "concurrent"])
async def test_cache_hit_on_a_seeded_key_does_not_rerun_its_subtree(
    sequential: bool,
) -> None:
    """``root(a1=Depends(a, use_cache=False), a2=Depends(a))`` with
    ``a(b=Depends(b, use_cache=False))``: ``a1`` runs ``b`` and ``a`` and seeds the
    key; ``a2`` is then a cache hit, and a cache hit never re-runs its subtree
    (docs/semantics.md §3, the deviation from FastAPI's re-walk): ``b`` runs once.
    (Found by the property tests above; this is the minimal case.)"""
    calls: list[str] = []

    async def b() -> str:
        calls.append("b")
        return "b"

    async def a(x: str = Depends(b, use_cache=False)) -> str:
        calls.append("a")
        return "a"

    async def root(a1: str = Depends(a, use_cache=False), a2: str = Depends(a)) -> None:
        calls.append("root")

    async with Container(sequential=sequential) as container:
        await container.call(root)
    assert calls == ["b", "a", "root"]


@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "concurrent"])
async def test_repeated_calls_never_inject_none(sequential: bool) -> None:
    """Found by the fault-injection property test: an app-scoped dependency with an
    uncached app-scoped child, a dependency that waits, and a request-scoped use of
    that child, called three times in a row. Every call must get the real values (a
    cache hit reads the memo; it never hands out ``None``)."""

    async def zero() -> str:
        return "zero"

    async def waits() -> str:
        await anyio.lowlevel.checkpoint()
        return "waits"

    async def three(c: str = Depends(zero, scope="app", use_cache=False)) -> str:
        return "three"

    async def root(
        x: str = Depends(waits),
        y: str = Depends(three, scope="app"),
        z: str = Depends(zero),
    ) -> tuple[str, str, str]:
        return x, y, z

    async with Container(sequential=sequential) as container:
        results = [await container.call(root) for _ in range(3)]
    assert results == [("waits", "three", "zero")] * 3
