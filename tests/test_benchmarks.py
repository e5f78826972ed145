"""The benchmark harness (``benchmarks/``) still measures checked work.

Small versions of the scenarios that issue-driven measurements rely on (``scope``,
``loaded``, ``memory`` by position, ``compile`` by graph family) run in-process with
the hand-written and anydepends adapters only (the peers are not test dependencies),
so a change to the engine that breaks the harness shows up here, not in the next
benchmark run. Nothing here asserts a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from benchmarks import codegen, graphs, report, worker
from benchmarks.adapters import Adapter, Session
from benchmarks.adapters import bench_anydepends as any_adapter
from benchmarks.adapters import bench_handwritten as hand_adapter
from benchmarks.scenarios import MEMORY_POSITIONS, Case

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["asyncio", "trio"]


def _adapter(impl: str) -> Adapter:
    return any_adapter if impl.startswith("anydepends") else hand_adapter


def test_layered_dag_has_the_documented_shape() -> None:
    """40 nodes per layer, 3 parents in the layer below, every node reachable."""
    graph = graphs.layered_dag(1000)
    assert len(graph.nodes) == 1000
    layer = {n.name: i // 40 for i, n in enumerate(graph.nodes[:-1])}
    for node in graph.nodes[40:-1]:
        assert len(node.deps) == 3
        assert {layer[d] for d in node.deps} == {layer[node.name] - 1}
    assert graphs.reachable(graph, graph.root.name) == len(graph.nodes)
    assert graphs.layered_dag(1000) == graph  # seeded: the same graph every run


def test_shared_graph_handlers_cover_part_of_the_graph() -> None:
    """Handlers over the shared graph each reach a strict subset of it."""
    graph, roots = graphs.shared_graph(400, 10, width=50)
    assert len(roots) == 10
    sizes = [graphs.reachable(graph, r) for r in roots]
    assert all(4 <= s < 400 for s in sizes)


def test_string_annotations_are_strings() -> None:
    """With string_annotations the generated functions carry unevaluated strings."""
    graph = graphs.deep(3)
    ns = any_adapter.codegen.build(
        graph,
        any_adapter._dialect(inline_sync=True),
        string_annotations=True,
        Depends=any_adapter.Depends,
    )
    annotation = codegen.root_of(graph, ns).__annotations__["p_n1"]
    assert isinstance(annotation, str)
    assert annotation.startswith("Annotated[Any, Depends(n_n1")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "impl", ["hand-seq", "hand-tg", "anydepends", "anydepends-seq", "anydepends-scope"]
)
@pytest.mark.parametrize("where", ["cache", "svc_y"])
def test_loaded_batch_is_checked(backend: str, impl: str, where: str) -> None:
    """Concurrent callers make exactly callers x R checked requests."""
    case = Case("loaded", backend, {"callers": 20, "where": where, "requests": 2})
    per_call, n = worker.anyio.run(
        worker._loaded_batch, _adapter(impl), impl, case, 40, 3, backend=backend
    )
    assert n == 40
    assert per_call > 0


class _OneExtraCall:
    """The hand-written adapter, with one node called once too often per request."""

    versions = staticmethod(hand_adapter.versions)
    compile_step = staticmethod(hand_adapter.compile_step)

    @staticmethod
    @asynccontextmanager
    async def open(impl: str, graph: graphs.Graph) -> AsyncIterator[Session]:
        async with hand_adapter.open(impl, graph) as (call, ns):

            async def sloppy() -> Any:
                ns["CALLS"][0] += 1
                return await call()

            yield sloppy, ns


def test_loaded_check_rejects_extra_work() -> None:
    """A library that runs a dependency twice per request is not timed."""
    case = Case("loaded", "asyncio", {"callers": 5, "where": "cache", "requests": 1})
    with pytest.raises(worker.CheckFailed, match="settings called"):
        worker.anyio.run(worker._loaded_batch, _OneExtraCall, "hand-seq", case, 5, 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("scenario", "impl"),
    [
        ("overhead", "anydepends-first-scope"),
        ("scope", "anydepends-scope"),
        ("scope", "anydepends-scope-first-call"),
    ],
)
def test_call_history_rows_count_only_the_timed_calls(
    backend: str, scenario: str, impl: str
) -> None:
    """The priming call through the other entry point is not counted."""
    per_call, n = worker.anyio.run(
        worker._batch,
        any_adapter,
        impl,
        Case(scenario, backend).graph(),
        10,
        2,
        backend=backend,
    )
    assert n == 10
    assert per_call > 0


@pytest.mark.parametrize("position", MEMORY_POSITIONS)
@pytest.mark.parametrize("impl", ["hand-seq", "anydepends", "anydepends-scope"])
def test_memory_parks_requests_at_each_position(impl: str, position: str) -> None:
    """Requests park at the chosen node; the bytes held are measured and positive."""
    graph = Case("memory", params={"position": position}).graph()
    waiting = [n.name for n in graph.nodes if n.waits]
    assert waiting == [graph.root.name if position == "root" else position]
    reply = worker.anyio.run(worker._memory, _adapter(impl), impl, graph, 30)
    assert reply["bytes_per_scope"] > 0


@pytest.mark.parametrize("family", ["dag", "fanin", "chain"])
def test_compile_reports_phases_and_memory(family: str) -> None:
    """anydepends' compile step: compile + first call, the phases, the plan memory."""
    timed = worker._compile_once(any_adapter, "anydepends", family, 60, 60.0, False)
    assert set(timed["phases"]) == {"compile", "first call", "second call"}
    first_two = timed["phases"]["compile"] + timed["phases"]["first call"]
    assert timed["seconds"] == pytest.approx(first_two)
    assert timed["whole"] >= timed["seconds"]
    traced = worker._compile_once(any_adapter, "anydepends", family, 60, 60.0, True)
    assert 0 < traced["retained_bytes"] <= traced["peak_bytes"]


def test_compile_reports_a_library_that_cannot_build() -> None:
    """A build that raises is reported as an error, not as a failed run."""
    reply = worker._compile_once(hand_adapter, "hand-seq", "dag", 20, 60.0, False)
    assert reply == {"error": "NotImplementedError: hand-seq"}


def test_compile_shared_roots() -> None:
    """Many roots compile in one container and each in its own."""
    reply = worker._compile_shared(any_adapter, 120, 6, 1)
    assert reply["handlers"] == 6
    assert len(reply["shared"]) == len(reply["independent"]) == 1
    assert reply["mean_plan_nodes"] > 1


def test_command_line_runs_and_reports(tmp_path: Path) -> None:
    """``python -m benchmarks`` measures the scope case and prints its table."""
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--scenario",
            "scope",
            "--lib",
            "anydepends,hand-seq",
            "--backend",
            "asyncio",
            "--repeats",
            "1",
            "--no-charts",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(out.read_text(encoding="utf-8"))
    (case,) = results["cases"]
    rows = {r["impl"]: r for r in case["rows"]}
    assert set(rows) == {
        "hand-seq",
        "anydepends",
        "anydepends-scope",
        "anydepends-scope-first-call",
    }
    assert all(r["status"] == "ok" for r in rows.values())
    assert rows["anydepends-scope"]["ratios"]["anydepends-scope"] == 1.0
    text = report.console(results)
    assert "anydepends (scope, first call via container.call)" in text
    assert "vs anydepends (scope)" in text
