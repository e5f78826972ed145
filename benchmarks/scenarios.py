"""Which graphs are measured, on which backends, and how hard (quick or full mode).

A :class:`Case` is one table: one scenario with its parameters on one backend. Cases
travel to the worker subprocesses as JSON, and each side rebuilds the graph from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks import graphs
from benchmarks.graphs import Graph

SCENARIOS: dict[str, str] = {
    "overhead": "the 10-node request graph, no I/O",
    "scope": "one request = `async with container.scope()` + `scope.call`, "
    "the 10-node graph, no I/O",
    "sync_leaf": "the same graph with `settings` a plain sync function",
    "fanout": "k independent leaves, each awaiting anyio.sleep(L), under a root",
    "readiness": "A (4 ms) and B (1 ms) leaves, C(B) 3 ms, root(A, C)",
    "wide": "100 async leaves under one root, no I/O",
    "deep": "a 50-node chain, no I/O",
    "singleton": "the 10-node graph with its four leaves app-scoped, hit on every call",
    "loaded": "N concurrent callers, R requests each; in every request's 10-node "
    "graph one dependency awaits one anyio.lowlevel.checkpoint()",
    "compile": "graph build + first call: seeded layered DAGs, wide fan-in, chains; "
    "500 handlers over one shared graph",
    "compile_xl": "`compile` with the full mode's sizes (100,000-node DAG, 30,000-deep "
    "chain) and budget",
    "memory": "bytes held per in-flight request, 10,000 parked at once, waiting in "
    "the root, in svc_y or in the leaf cache (tracemalloc, a fresh process each)",
    "fastapi_route": "a FastAPI endpoint served end to end through ASGI: plain "
    "FastAPI vs anydepends' ConcurrentRoute, with k dependencies awaiting "
    "anyio.sleep(L) or the 10-node graph without I/O",
}
TIMED = (
    "overhead",
    "scope",
    "sync_leaf",
    "fanout",
    "readiness",
    "wide",
    "deep",
    "singleton",
    "loaded",
    "fastapi_route",
)
IO_SCENARIOS = frozenset({"fanout", "readiness"})
# fastapi_route: the graph behind the endpoint, and how a request reaches the app.
ROUTE_SHAPES: dict[str, str] = {
    "fanout": "an endpoint whose k independent dependencies each await "
    "anyio.sleep(L), through httpx's ASGI transport",
    "overhead": "an endpoint over the 10-node request graph (fastapi.Depends), no I/O",
}
ROUTE_CLIENTS: dict[str, str] = {
    "httpx": "httpx.AsyncClient + ASGITransport",
    "asgi": "a direct ASGI call",
}
# What runs without --scenario: everything but the long compile sizes.
DEFAULT_SCENARIOS = tuple(s for s in SCENARIOS if s != "compile_xl")
MEMORY_POSITIONS = ("root", "svc_y", "cache")  # where a parked request waits


@dataclass(frozen=True)
class Mode:
    """How long to measure: ``quick`` (the default, ~5 minutes) or ``full``."""

    name: str
    repeats: int  # timed batches per impl and case (interleaved across impls)
    batch_seconds: float  # target duration of one timed batch
    min_calls: int  # lower bound on calls per batch (I/O cases are slow)
    latency: float  # L of the fanout scenario, seconds
    fanout_ks: tuple[int, ...]
    trio_scenarios: tuple[str, ...]  # scenarios also run on trio
    loaded: tuple[tuple[int, str], ...]  # (concurrent callers, node that waits)
    loaded_requests: int  # requests each caller makes, one after the other
    compile_sizes: dict[str, tuple[int, ...]]  # graph family -> sizes (nodes)
    compile_budget: float  # seconds; a build slower than this stops that library
    compile_shared: tuple[int, int, int]  # shared graph's nodes, handlers, repeats
    memory_tasks: int
    memory_peers: bool  # measure memory for peer libraries too (slow under tracemalloc)
    # fastapi_route: the clients of the no-I/O endpoint (fan-out always uses httpx)
    route_overhead_clients: tuple[str, ...] = ("asgi", "httpx")


QUICK = Mode(
    name="quick",
    repeats=5,
    batch_seconds=0.05,
    min_calls=8,
    latency=0.001,
    fanout_ks=(2, 4, 8),
    trio_scenarios=("overhead", "scope", "fanout", "loaded", "fastapi_route"),
    loaded=((500, "cache"), (1000, "cache"), (1000, "svc_y")),
    loaded_requests=3,
    compile_sizes={
        "dag": (100, 1000, 10000),
        "fanin": (100, 1000, 5000),
        "chain": (100, 1000, 10000),
    },
    compile_budget=8.0,
    compile_shared=(2000, 500, 1),
    memory_tasks=10_000,
    memory_peers=False,
)
FULL = Mode(
    name="full",
    repeats=15,
    batch_seconds=0.3,
    min_calls=30,
    latency=0.001,
    fanout_ks=(2, 4, 8, 16),
    trio_scenarios=("overhead", "scope", "fanout", "loaded", "fastapi_route"),
    loaded=((500, "cache"), (1000, "cache"), (500, "svc_y"), (1000, "svc_y")),
    loaded_requests=10,
    compile_sizes={
        "dag": (100, 300, 1000, 3000, 10000, 100000),
        "fanin": (100, 1000, 5000, 20000),
        "chain": (100, 1000, 3000, 10000, 30000),
    },
    compile_budget=60.0,
    compile_shared=(2000, 500, 3),
    memory_tasks=10_000,
    memory_peers=True,
)


@dataclass(frozen=True)
class Case:
    """One scenario, with its parameters, on one backend."""

    scenario: str
    backend: str = "asyncio"
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``fanout k=4 [trio]``."""
        p = self.params
        if self.scenario == "loaded":
            extra = f"{p['callers']} callers, wait in {p['where']}"
        elif self.scenario == "fastapi_route":
            k = f" k={p['k']}" if "k" in p else ""
            extra = f"{p['shape']}{k}, {p['client']}"
        else:
            extra = " ".join(f"{k}={v}" for k, v in p.items() if k != "latency")
        return f"{self.scenario}{' ' + extra if extra else ''} [{self.backend}]"

    @property
    def io(self) -> bool:
        """Whether the graph sleeps (few calls per batch, an ideal time to show)."""
        if self.scenario == "fastapi_route":
            return bool(self.params["shape"] == "fanout")
        return self.scenario in IO_SCENARIOS

    @property
    def description(self) -> str:
        """What this case's table measures (the title's text)."""
        if self.scenario == "fastapi_route":
            text = ROUTE_SHAPES[self.params["shape"]]
            if self.params["shape"] == "overhead":
                text += ", through " + ROUTE_CLIENTS[self.params["client"]]
            return text
        return SCENARIOS[self.scenario]

    @property
    def hand_ref(self) -> str:
        """The hand-written impl ratios are taken against: the best one can write."""
        if self.scenario == "fastapi_route":
            return "hand-route-tg" if self.io else "hand-route-seq"
        return "hand-tg" if self.io else "hand-seq"

    @property
    def resolution(self) -> tuple[str, str] | None:
        """``(baseline, reference)`` when the table isolates dependency resolution.

        In ``fastapi_route``'s no-I/O tables each row's time minus the baseline's (the
        same app with an endpoint that awaits the same functions by hand, no
        ``Depends``) is what resolving the graph costs, compared with the reference's
        (plain FastAPI).
        """
        if self.scenario == "fastapi_route" and not self.io:
            return ("hand-route-seq", "fastapi-route")
        return None

    @property
    def refs(self) -> tuple[str, ...]:
        """Implementations every row's time is divided by (one column each).

        The first is the headline anydepends row (the scope row in ``scope``).
        """
        if self.scenario == "loaded":
            return ("anydepends", self.hand_ref, "dishka")
        if self.scenario == "scope":
            return ("anydepends-scope", self.hand_ref)
        if self.scenario == "fastapi_route":
            return ("anydepends-route", "fastapi-route", self.hand_ref)
        return ("anydepends", self.hand_ref)

    @property
    def fixed_calls(self) -> int | None:
        """Requests per timed batch when not calibrated (loaded: callers x R)."""
        if self.scenario == "loaded":
            return int(self.params["callers"] * self.params["requests"])
        return None

    def graph(self) -> Graph:
        """Build this case's graph."""
        p = self.params
        match self.scenario:
            case "overhead" | "scope":
                return graphs.overhead()
            case "loaded":
                return graphs.loaded(p["where"])
            case "sync_leaf":
                return graphs.sync_leaf()
            case "singleton":
                return graphs.singleton()
            case "fanout":
                return graphs.fanout(p["k"], p["latency"])
            case "readiness":
                return graphs.readiness(p.get("unit", 0.001))
            case "wide":
                return graphs.wide(p.get("width", 100))
            case "deep":
                return graphs.deep(p.get("length", 50))
            case "memory":
                return graphs.overhead().with_waiting(_waiting_node(p["position"]))
            case "fastapi_route" if p["shape"] == "fanout":
                return graphs.fanout(p["k"], p["latency"])
            case "fastapi_route":
                return graphs.overhead()
        raise ValueError(f"unknown timed scenario {self.scenario!r}")

    def to_json(self) -> dict[str, Any]:
        """The JSON form sent to workers."""
        return {
            "scenario": self.scenario,
            "backend": self.backend,
            "params": self.params,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        """Inverse of :meth:`to_json`."""
        return cls(data["scenario"], data["backend"], dict(data["params"]))


def timed_cases(
    mode: Mode, scenarios: list[str], backends: list[str], *, trio_everywhere: bool
) -> list[Case]:
    """The timed cases of ``mode`` restricted to ``scenarios`` and ``backends``.

    trio runs only ``mode.trio_scenarios`` unless ``trio_everywhere`` (an explicit
    ``--backend trio``) asks for every scenario on it.
    """
    cases: list[Case] = []
    for backend in ("asyncio", "trio"):
        if backend not in backends:
            continue
        for scenario in TIMED:
            if scenario not in scenarios:
                continue
            if (
                backend == "trio"
                and not trio_everywhere
                and scenario not in mode.trio_scenarios
            ):
                continue
            if scenario == "fanout":
                cases += [
                    Case("fanout", backend, {"k": k, "latency": mode.latency})
                    for k in mode.fanout_ks
                ]
            elif scenario == "loaded":
                cases += [
                    Case(
                        "loaded",
                        backend,
                        {
                            "callers": n,
                            "where": where,
                            "requests": mode.loaded_requests,
                        },
                    )
                    for n, where in mode.loaded
                ]
            elif scenario == "fastapi_route":
                fan = {"shape": "fanout", "latency": mode.latency, "client": "httpx"}
                cases += [
                    Case(scenario, backend, {**fan, "k": k}) for k in mode.fanout_ks
                ]
                cases += [
                    Case(scenario, backend, {"shape": "overhead", "client": client})
                    for client in mode.route_overhead_clients
                ]
            else:
                cases.append(Case(scenario, backend))
    return cases


def _waiting_node(position: str) -> str | None:
    """The node a parked request waits in (None: the root)."""
    if position not in MEMORY_POSITIONS:
        raise ValueError(f"unknown memory position {position!r}")
    return None if position == "root" else position
