"""The compiler at scale: any depth, linear memory, wide fan-in, shared introspection.

No wall-clock assertions: depth is checked against the recursion limit (the compiler,
the explanation and the diagrams must not recurse per level), linearity on traced
memory, and sharing on counted reads of callables.
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

import pytest

from anydepends import Container, CycleError, Depends, Plan

from . import synthetic
from .synthetic import shallow_stack


def test_a_deep_chain_compiles_and_explains_without_recursion() -> None:
    """A 20,000-deep chain compiles, explains and renders with room for only 150
    more frames, and the compiler leaves the recursion limit alone."""
    root = synthetic.chain(20_000)
    limit = sys.getrecursionlimit()
    with shallow_stack():
        plan = Container().compile(root)
        text = plan.explain()
        mermaid = plan.to_mermaid()
        dot = plan.to_dot()
    assert sys.getrecursionlimit() == limit
    assert len(plan.nodes) == 20_001
    deepest = plan.nodes[0]
    assert deepest.path == (
        "synthetic.root",
        *(f"synthetic.n{i}" for i in reversed(range(20_000))),
    )
    assert "each dependency needs the one before it" in text
    assert mermaid.count(" -->|p0| ") == 20_000
    assert dot.count(' [label="p0"];') == 20_000


def test_compiling_never_changes_the_recursion_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compiling does not touch the process-wide recursion limit (no deep-graph
    workaround left behind)."""

    def refuse(limit: int) -> None:
        raise AssertionError("the compiler changed the recursion limit")

    root = synthetic.chain(3_000)
    monkeypatch.setattr(sys, "setrecursionlimit", refuse)
    plan = Container().compile(root)
    assert len(plan.nodes) == 3_001


@pytest.mark.stress
def test_a_100_000_node_graph_compiles() -> None:
    """A seeded layered DAG of 100,000 dependencies (width 40, 3 parents each)
    compiles into a topologically ordered plan with one node per dependable."""
    *_, root = synthetic.layered(100_000)
    plan = Container().compile(root)
    assert len(plan.nodes) == 100_001
    assert plan.root_node.call is root
    for node in plan.nodes:
        assert all(dep < node.index for dep in node.deps)
        assert len(node.deps) == len(node.args)
    assert sum(len(d) for d in plan.dependents) == sum(len(n.deps) for n in plan.nodes)


def test_wide_fan_in() -> None:
    """One root with 5,000 parameters: 5,000 nodes, its deps in declaration order."""
    root = synthetic.fan_in(5_000)
    plan = Container().compile(root)
    assert len(plan.nodes) == 5_001
    assert plan.root_node.deps == tuple(range(5_000))
    assert plan.root_node.args == tuple((f"p{i}", i) for i in range(5_000))
    assert all(plan.dependents[i] == (5_000,) for i in range(5_000))


def test_repeated_dependencies_in_a_wide_fan_in_are_one_dep_each() -> None:
    """A root that names 30 dependencies twice each, shuffled: every parameter gets
    its argument, and each dependency is one dep, in first-seen order (past a few
    deps the compiler deduplicates with a set)."""
    leaves = [synthetic.make(f"n{i}", []) for i in range(30)]
    order = [*leaves, *leaves]
    random.Random(7).shuffle(order)
    root = synthetic.make("root", order)
    plan = Container().compile(root)
    index = {node.call: node.index for node in plan.nodes}
    assert plan.root_node.args == tuple(
        (f"p{i}", index[leaf]) for i, leaf in enumerate(order)
    )
    first_seen = list(dict.fromkeys(index[leaf] for leaf in order))
    assert list(plan.root_node.deps) == first_seen


def plan_bytes(root: Callable[..., Any]) -> tuple[Plan[Any], int]:
    """The plan of *root* and the bytes it keeps alive (traced), the compiler's
    caches dropped."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        container = Container()
        plan = container.compile(root)
        del container
        gc.collect()
        return plan, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_plan_memory_is_linear_in_depth() -> None:
    """A plan keeps a parent site per node, not a path: the memory of a chain's plan
    grows linearly with its depth (under 2 KB a node: a 10,000-deep chain's plan
    takes under 20 MB), although every node's path names the whole way from the
    root."""
    short_plan, short = plan_bytes(synthetic.chain(1_500))
    long_plan, long = plan_bytes(synthetic.chain(6_000))
    assert long / len(long_plan.nodes) < 2_000
    assert long / len(long_plan.nodes) < 1.25 * short / len(short_plan.nodes)
    assert len(long_plan.nodes[0].path) == 6_001


def test_many_roots_share_the_introspection_of_one_graph(reads: list[object]) -> None:
    """Compiling 50 handlers over one 300-node graph reads each dependable once,
    however many plans it appears in."""
    graph = synthetic.layered(300)[:-1]
    rng = random.Random(3)
    handlers = [
        synthetic.make(f"handler{i}", rng.sample(graph[-80:], 4)) for i in range(50)
    ]
    container = Container()
    plans = [container.compile(handler) for handler in handlers]
    assert sum(len(plan.nodes) for plan in plans) > 10 * len(graph)
    assert len(reads) == len({id(call) for call in reads})
    assert {id(call) for call in reads} <= {id(fn) for fn in [*graph, *handlers]}


def test_module_level_dependables_are_read_once_per_process(
    reads: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dependables bound at the top level of an imported module are read once for
    every container (a test suite's container per test reads nothing again);
    others are read once per container."""
    module = types.ModuleType("anydepends_scale_graph")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    *_, root = synthetic.layered(200, module=module)
    local_root = synthetic.chain(20)
    Container().compile(root)
    Container().compile(local_root)
    assert len(reads) == 201 + 21
    reads.clear()
    Container().compile(root)
    assert reads == []
    Container().compile(local_root)
    assert len(reads) == 21


def test_the_collector_is_paused_only_for_large_compiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compile of thousands of nodes pauses the cyclic collector and enables it
    again when it returns or fails, with what it allocated moved to the oldest
    generation; a small compile never touches it, and a collector the program
    disabled stays disabled."""
    calls: list[str] = []
    real_disable, real_enable = gc.disable, gc.enable
    real_freeze, real_unfreeze = gc.freeze, gc.unfreeze

    def recorded(name: str, real: Callable[[], None]) -> Callable[[], None]:
        def record() -> None:
            calls.append(name)
            real()

        return record

    for name, real in (
        ("disable", real_disable),
        ("enable", real_enable),
        ("freeze", real_freeze),
        ("unfreeze", real_unfreeze),
    ):
        monkeypatch.setattr(gc, name, recorded(name, real))
    assert gc.isenabled()
    Container().compile(synthetic.chain(500))
    assert calls == []
    Container().compile(synthetic.layered(3_000)[-1])
    assert calls == ["disable", "freeze", "unfreeze", "enable"]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0

    calls.clear()
    below = synthetic.chain(3_000)
    broken = synthetic.make("broken", [below, below.__defaults__[0].dependency])
    broken.__defaults__ = (*broken.__defaults__, Depends(broken))  # a cycle, deep
    with pytest.raises(CycleError):
        Container().compile(broken)
    assert calls == ["disable", "freeze", "unfreeze", "enable"]
    assert gc.isenabled()

    calls.clear()
    real_freeze()  # the program froze its objects (before a fork, say)...
    try:
        frozen = gc.get_freeze_count()
        Container().compile(synthetic.layered(3_000)[-1])
        assert calls == ["disable", "enable"]
        # ...and they stay frozen: an unfreeze would move every one of them out.
        # (Not exactly as many: a frozen object another thread lets go of meanwhile,
        # an idle worker thread of an earlier test that exits, say, leaves the
        # permanent generation.)
        assert gc.get_freeze_count() > frozen * 0.99
    finally:
        real_unfreeze()

    calls.clear()
    real_disable()
    try:
        Container().compile(synthetic.layered(3_000)[-1])
        assert calls == []
        assert not gc.isenabled()
    finally:
        real_enable()
