"""Fault injection: raise at each setup and each teardown in turn, on random graphs.

A fault is one exception object raised once, at the n-th setup (any node, the root
included) or the n-th teardown (any ``yield`` node) of a random graph run through a
few operations. Whatever the graph, the lifetimes, the mode and the backend:

- the caller (of ``call``, of the scope's ``async with``, or of the container's) sees
  that very exception object, exactly once, and nothing else fails;
- every completed setup is torn down exactly once, in a valid order, and nothing that
  did not complete its setup is torn down;
- every teardown after the fault (until the failing operation ends) sees that
  exception thrown in at its ``yield``;
- nothing is left running (no dependable, generator or helper task), no warning;
- the container stays usable: the operations after the failing one succeed.
"""

from __future__ import annotations

import gc
import warnings
from typing import Any

import anyio
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from anydepends import Container

from .reliability_support import (
    BACKENDS,
    GENERATORS,
    Decl,
    GraphSpec,
    Injected,
    InjectedBase,
    NodeSpec,
    Op,
    Recorder,
    Reference,
    Timing,
    build,
    check_clean,
    check_structure,
    check_teardowns,
    count_tasks,
    graph_specs,
    hypothesis_settings,
    ops_strategy,
    run,
    run_op,
)

SETTINGS = hypothesis_settings(short=50, full=500)


@st.composite
def fault_cases(
    draw: Any,
) -> tuple[GraphSpec, list[Op], tuple[str, int], int, BaseException]:
    """A graph, operations, and a fault at a setup or teardown the run reaches."""
    spec = draw(graph_specs())
    ops = draw(ops_strategy)
    ref = Reference(spec)
    ref.run(ops)
    setups = sorted(n for n, count in ref.counts.items() if count)
    teardowns = [n for n in setups if spec.kind_of(n) in GENERATORS]
    phase = draw(st.sampled_from(["setup", "teardown"] if teardowns else ["setup"]))
    node = draw(st.sampled_from(setups if phase == "setup" else teardowns))
    nth = draw(st.integers(1, ref.counts[node]))
    kind = draw(st.sampled_from([Injected, Injected, InjectedBase]))
    return spec, ops, (phase, node), nth, kind(f"{phase} of node {node}, #{nth}")


@st.composite
def timings(draw: Any, spec: GraphSpec) -> Timing:
    """Which dependables suspend once (a checkpoint) in setup and teardown."""
    t = Timing()
    for i in range(spec.root_index + 1):
        t.setup[i] = draw(st.sampled_from([None, 0.0]))
        t.teardown[i] = draw(st.sampled_from([None, 0.0]))
    return t


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(
    case=fault_cases(), data=st.data(), sequential=st.booleans(), threads=st.booleans()
)
def test_one_fault_anywhere(
    backend: str,
    case: tuple[GraphSpec, list[Op], tuple[str, int], int, BaseException],
    data: st.DataObject,
    sequential: bool,
    threads: bool,
) -> None:
    """One fault at a random setup or teardown: the original exception object
    reaches the caller exactly once; every completed setup is torn down exactly once
    in a valid order and sees the fault if torn down after it; nothing leaks; later
    operations succeed."""
    spec, ops, where, nth, fault = case
    rec = Recorder(spec, timing=data.draw(timings(spec)), faults={where: (nth, fault)})
    raised: list[BaseException] = []
    values: list[Any] = []

    async def main() -> None:
        before = count_tasks()
        root = build(spec, rec)
        try:
            async with Container(sequential=sequential, sync_to_thread=threads) as c:
                for op in ops:
                    try:
                        await run_op(c, root, op, rec, values)
                    except (Exception, InjectedBase) as exc:
                        raised.append(exc)
                        rec.mark("failed")
        except (Exception, InjectedBase) as exc:
            raised.append(exc)
        rec.mark("container")
        assert count_tasks() == before, "a helper task outlived its container"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(backend, main)
        gc.collect(0)
    assert not [str(w.message) for w in caught]
    note = f"{spec.describe()} fault={where}#{nth}"
    check_clean(rec)
    event(f"fault fired: {bool(rec.fired)}")
    if rec.fired:
        assert len(raised) == 1, (raised, note)
        assert raised[0] is fault, (raised, note)
    else:  # concurrently, a raced cache key can make a node run fewer times
        assert not raised, (raised, note)
    check_teardowns(rec)
    check_structure(values, spec, rec)
    _check_fault_seen_by_later_teardowns(rec, fault, note)


def _check_fault_seen_by_later_teardowns(
    rec: Recorder, fault: BaseException, note: str
) -> None:
    after = False
    for ev in rec.events:
        if ev[0] == "fault":
            after = True
        elif ev[0] == "mark":
            after = False
        elif ev[0] == "teardown" and after:
            assert ev[2] is fault, (ev, note)


@pytest.mark.parametrize("phase", ["setup", "teardown"])
@pytest.mark.parametrize("lifetime", [None, "function", "app"])
@pytest.mark.parametrize("kind", ["async_gen", "sync_gen"])
async def test_fault_in_each_node_of_a_chain_in_turn(
    phase: str, lifetime: str | None, kind: str
) -> None:
    """A fixed chain of four ``yield`` dependencies (plus a plain one between them),
    with the fault at each node in turn: the same invariants, deterministically, for
    each lifetime and generator kind."""
    nodes = (
        NodeSpec(kind),
        NodeSpec("async", (Decl(0, True, lifetime),)),
        NodeSpec(kind, (Decl(0, True, lifetime), Decl(1, True, lifetime))),
        NodeSpec(
            "sync_gen" if kind == "async_gen" else "async_gen",
            (Decl(2, True, lifetime),),
        ),
        NodeSpec(kind, (Decl(3, True, lifetime), Decl(1, True, lifetime))),
    )
    spec = GraphSpec(nodes, (Decl(4, True, lifetime), Decl(2, True, lifetime)))
    targets = [
        i
        for i in range(len(nodes) + 1)
        if phase == "setup" or spec.kind_of(i) in GENERATORS
    ]
    for target in targets:
        fault = Injected(f"{phase} of {target}")
        rec = Recorder(
            spec,
            timing=Timing(dict.fromkeys(range(6), 0.0), dict.fromkeys(range(6), 0.0)),
            faults={(phase, target): (1, fault)},
        )
        root = build(spec, rec)
        raised: list[BaseException] = []
        before = count_tasks()
        try:
            async with Container() as c:
                try:
                    await c.call(root)
                except Injected as exc:
                    raised.append(exc)
                    rec.mark("failed")
                await c.call(root)  # still usable
                rec.mark("call")
        except Injected as exc:  # an app-scoped teardown fails at container exit
            raised.append(exc)
        rec.mark("container")
        assert count_tasks() == before
        assert raised == [fault]
        assert raised[0] is fault
        check_clean(rec)
        check_teardowns(rec)
        _check_fault_seen_by_later_teardowns(rec, fault, f"{phase} {target}")
        await anyio.lowlevel.checkpoint()
