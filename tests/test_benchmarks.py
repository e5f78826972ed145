"""The benchmark harness (``benchmarks/``) still measures checked work.

Small versions of the scenarios that issue-driven measurements rely on (``scope``,
``loaded``, ``memory`` by position, ``compile`` by graph family, ``fastapi_route``)
run in-process with the hand-written and anydepends adapters, and FastAPI's for
``fastapi_route`` (the other peers are not test dependencies), so a change to the
engine that breaks the harness shows up here, not in the next benchmark run. Nothing
here asserts a time.
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
from benchmarks import codegen, graphs, report, routes, runner, worker
from benchmarks.__main__ import select_impls
from benchmarks.adapters import IMPLS, Adapter, Session
from benchmarks.adapters import bench_anydepends as any_adapter
from benchmarks.adapters import bench_fastapi as fastapi_adapter
from benchmarks.adapters import bench_handwritten as hand_adapter
from benchmarks.scenarios import (
    DEFAULT_SCENARIOS,
    MEMORY_POSITIONS,
    QUICK,
    Case,
    timed_cases,
)
from fastapi import HTTPException

from .helpers import count_workers

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_no_idle_worker_row_starts_a_task_for_every_runner(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``anydepends-cold`` keeps no idle worker: every timed call starts its runner
    tasks (as a container's first concurrent call does), and the pool's setting is
    restored after the batch."""
    from anydepends import _pool

    started = count_workers(monkeypatch)
    kept = _pool.IDLE_KEPT
    case = Case("fanout", backend, {"k": 3, "latency": 0.001})
    per_call, n = worker.anyio.run(
        worker._batch,
        any_adapter,
        "anydepends-cold",
        case.graph(),
        10,
        2,
        backend=backend,
    )
    assert n == 10 and per_call > 0
    assert len(started) >= 13 * 2  # every call of the batch: k - 1 runners each
    assert kept == _pool.IDLE_KEPT


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


def _run_command_line(
    tmp_path: Path, scenario: str, lib: str, timeout: float
) -> dict[str, Any]:
    """Run ``python -m benchmarks`` on one scenario (asyncio, one round, no charts)
    in a subprocess; return the JSON it wrote."""
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--scenario",
            scenario,
            "--lib",
            lib,
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
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return results


def test_command_line_runs_and_reports(tmp_path: Path) -> None:
    """``python -m benchmarks`` measures the scope case and prints its table."""
    results = _run_command_line(tmp_path, "scope", "anydepends,hand-seq", 120)
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


ROUTE_IMPLS = [
    "hand-route-seq",
    "hand-route-tg",
    "fastapi-route",
    "anydepends-route",
    "anydepends-route-seq",
]
ROUTE_PARAMS = [
    {"shape": "overhead", "client": "asgi"},
    {"shape": "overhead", "client": "httpx"},
    {"shape": "fanout", "k": 3, "latency": 0.0001, "client": "httpx"},
]


def test_fastapi_route_is_a_default_scenario_with_its_own_rows() -> None:
    """Quick mode runs it on both backends: fan-out for each k through httpx, the
    no-I/O endpoint through each client; only the route rows take part, and
    ``--lib anydepends,fastapi`` selects all of them."""
    assert "fastapi_route" in DEFAULT_SCENARIOS
    cases = timed_cases(
        QUICK, ["fastapi_route"], ["asyncio", "trio"], trio_everywhere=False
    )
    keys = [c.key for c in cases]
    assert len(set(keys)) == len(keys) == 2 * (len(QUICK.fanout_ks) + 2)
    assert "fastapi_route fanout k=2, httpx [trio]" in keys
    assert "fastapi_route overhead, asgi [asyncio]" in keys
    taking_part = [i.key for i in IMPLS if i.status("fastapi_route") is None]
    assert sorted(taking_part) == sorted(ROUTE_IMPLS)
    selected = {i.key for i in select_impls(["anydepends", "fastapi"])}
    assert set(ROUTE_IMPLS) <= selected
    assert all(i.status("overhead") == "" for i in IMPLS if i.key in ROUTE_IMPLS)


def test_route_cases_name_their_references() -> None:
    """Fan-out tables compare with the hand-written task group and show the ideal;
    no-I/O tables isolate resolution against the by-hand endpoint and FastAPI."""
    fan = Case("fastapi_route", params=ROUTE_PARAMS[2])
    flat = Case("fastapi_route", params=ROUTE_PARAMS[0])
    assert fan.io and not flat.io
    assert fan.refs == ("anydepends-route", "fastapi-route", "hand-route-tg")
    assert fan.resolution is None
    assert flat.hand_ref == "hand-route-seq"
    assert flat.resolution == ("hand-route-seq", "fastapi-route")
    assert [n.name for n in flat.graph().nodes] == [
        n.name for n in graphs.overhead().nodes
    ]
    assert graphs.critical_path(fan.graph()) == 0.0001


def _route_adapter(impl: str) -> Adapter:
    return any_adapter if impl.startswith("anydepends") else fastapi_adapter


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("impl", ROUTE_IMPLS)
@pytest.mark.parametrize(
    "params", ROUTE_PARAMS, ids=lambda p: f"{p['shape']}-{p['client']}"
)
def test_route_batch_is_checked(
    backend: str, impl: str, params: dict[str, Any]
) -> None:
    """Each row's app answers 200 with the expected JSON body, every dependable ran
    once per request and ``db`` was torn down as often (the worker's checks)."""
    case = Case("fastapi_route", backend, params)
    reply = worker._handle(
        _route_adapter(impl),
        {"op": "run", "impl": impl, "case": case.to_json(), "n": 6, "warmup": 2},
    )
    assert reply == {"per_call": reply["per_call"], "n": 6}
    assert reply["per_call"] > 0


@pytest.mark.parametrize("client", routes.CLIENTS)
def test_route_reply_is_the_expected_json(client: str) -> None:
    """Both clients return (status, content type, body), the body byte for byte
    what the worker's check expects."""
    graph = graphs.overhead()

    async def one() -> object:
        async with fastapi_adapter.open_route("fastapi-route", graph, client) as (
            call,
            _ns,
        ):
            return await call()

    reply = worker.anyio.run(one)
    assert reply == (200, "application/json", graphs.expected_json(graph))
    assert graphs.expected_json(graph).startswith(b'["handler",["svc_x",')


class _Refusing:
    """A route adapter whose app answers 503 instead of running the graph."""

    @staticmethod
    @asynccontextmanager
    async def open_route(
        impl: str, graph: graphs.Graph, client: str
    ) -> AsyncIterator[Session]:
        async def endpoint() -> None:
            raise HTTPException(503, "down")

        ns = routes.namespace(graph)
        async with routes.client(routes.app(endpoint), client) as call:
            yield call, ns


@pytest.mark.parametrize("client", routes.CLIENTS)
def test_route_check_rejects_a_wrong_response(client: str) -> None:
    """An app that does not answer 200 with the expected body is not timed."""
    adapter = worker._Routes(_Refusing, client)  # type: ignore[arg-type]
    with pytest.raises(worker.CheckFailed, match=r"wrong response.*503"):
        worker.anyio.run(
            worker._batch,
            adapter,
            "fastapi-route",
            graphs.overhead(),
            3,
            0,
            worker._check_reply,
        )


def test_resolution_is_taken_round_by_round() -> None:
    """resolution µs: the median of (row - baseline) per round; its ratio: the median
    of those differences divided by the reference's own."""
    row, base, ref = [10.0, 12.0, 11.0], [4.0, 5.0, 6.0], [20.0, 25.0, 16.0]
    diff, ratio = runner.resolution(row, base, ref)
    assert diff == 6.0  # differences 6, 7, 5
    assert ratio == pytest.approx(0.375)  # 6/16, 7/20, 5/10
    assert runner.resolution(row, None, ref) == (None, None)


def test_command_line_runs_the_route_scenario(tmp_path: Path) -> None:
    """``--scenario fastapi_route --lib anydepends,fastapi`` times every route row in
    every case and prints the ratio and resolution columns."""
    results = _run_command_line(tmp_path, "fastapi_route", "anydepends,fastapi", 300)
    assert [c["key"] for c in results["cases"]] == [
        c.key
        for c in timed_cases(
            QUICK, ["fastapi_route"], ["asyncio"], trio_everywhere=False
        )
    ]
    for case in results["cases"]:
        rows = {r["impl"]: r for r in case["rows"]}
        assert sorted(rows) == sorted(ROUTE_IMPLS)
        assert all(r["status"] == "ok" for r in rows.values())
        assert rows["fastapi-route"]["ratios"]["fastapi-route"] == 1.0
        if case["params"]["shape"] == "overhead":
            assert rows["hand-route-seq"]["resolution_us"] == 0.0
            assert rows["fastapi-route"]["resolution_ratio"] == 1.0
        else:
            assert "resolution_us" not in rows["anydepends-route"]
            assert case["ideal_us"] == pytest.approx(QUICK.latency * 1e6)
    text = report.console(results)
    assert "resolution vs FastAPI" in text
    assert "vs ConcurrentRoute" in text
    assert "### fastapi_route" in report.markdown(results, image_dir=".")
