"""Dependency graphs as plain data: the hand-shaped scenarios and a seeded generator.

A :class:`Graph` describes *what* each dependable does (its dependencies, whether it is
sync, async or an async generator, how long it sleeps, whether it is app-scoped); the
adapters turn it into real functions for each library (:mod:`benchmarks.codegen`), so
every library runs exactly the same bodies. :func:`expected_value` and
:func:`critical_path` give the reference answers the correctness checks compare to.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["async", "sync", "asyncgen"]


@dataclass(frozen=True)
class Node:
    """One dependable: its name, what it depends on (in parameter order), its kind."""

    name: str
    deps: tuple[str, ...] = ()
    kind: Kind = "async"
    sleep: float = 0.0  # seconds awaited with anyio.sleep (simulated I/O)
    app: bool = False  # app-scoped (created once per container)
    waits: bool = False  # awaits the namespace's EVENT (memory scenario)
    checkpoint: bool = False  # awaits anyio.lowlevel.checkpoint() (loaded scenario)


@dataclass(frozen=True)
class Graph:
    """A DAG of nodes in topological order; the last node is the root (the handler)."""

    name: str
    nodes: tuple[Node, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {n.name: i for i, n in enumerate(self.nodes)}
        for i, node in enumerate(self.nodes):
            for dep in node.deps:
                if index.get(dep, i) >= i:
                    raise ValueError(
                        f"{self.name}: {node.name} -> {dep} not topological"
                    )
        object.__setattr__(self, "index", index)

    @property
    def root(self) -> Node:
        """The handler: the node nobody depends on, listed last."""
        return self.nodes[-1]

    def node(self, name: str) -> Node:
        """Look a node up by name."""
        return self.nodes[self.index[name]]

    def patched(self, name: str, suffix: str, **changes: Any) -> Graph:
        """A copy named ``<name>_<suffix>`` whose node ``name`` has ``changes``."""
        i = self.index[name]
        node = dataclasses.replace(self.nodes[i], **changes)
        nodes = (*self.nodes[:i], node, *self.nodes[i + 1 :])
        return Graph(f"{self.name}_{suffix}", nodes)

    def with_waiting(self, name: str | None = None) -> Graph:
        """The same graph where ``name`` (the root by default) awaits ``EVENT``.

        Used to hold requests open at a chosen position: in the root, inside a
        dependency, in a leaf whose siblings are still to run.
        """
        return self.patched(name or self.root.name, "waits", waits=True)


def _request_graph(name: str, settings_kind: Kind, app_leaves: bool = False) -> Graph:
    """The 10-node request graph the peers' benchmarks use: settings, a pooled
    db, repositories, services and one handler."""
    app = app_leaves
    return Graph(
        name,
        (
            Node("settings", (), settings_kind, app=app),
            Node("db", ("settings",), "asyncgen", app=app),
            Node("cache", (), app=app),
            Node("http", (), app=app),
            Node("repo_a", ("db", "settings")),
            Node("repo_b", ("db", "cache")),
            Node("auth", ("settings", "http")),
            Node("svc_x", ("repo_a", "repo_b")),
            Node("svc_y", ("repo_b", "auth", "cache")),
            Node("handler", ("svc_x", "svc_y")),
        ),
    )


def overhead() -> Graph:
    """No I/O, all async, ``db`` an async generator whose teardown is counted."""
    return _request_graph("overhead", "async")


def sync_leaf() -> Graph:
    """As :func:`overhead` with ``settings`` a plain sync function."""
    return _request_graph("sync_leaf", "sync")


def singleton() -> Graph:
    """As :func:`overhead` with settings, db, cache and http app-scoped."""
    return _request_graph("singleton", "async", app_leaves=True)


def loaded(where: str = "cache") -> Graph:
    """As :func:`overhead` with ``where`` awaiting one ``anyio.lowlevel.checkpoint()``.

    One suspension per request, like a fast cache round trip: ``cache`` is a leaf
    whose siblings are still to run when it waits, ``svc_y`` a dependency after which
    nothing but the root is left.
    """
    return overhead().patched(where, where, checkpoint=True)


def fanout(k: int, latency: float) -> Graph:
    """``k`` independent leaves, each awaiting ``anyio.sleep(latency)``, one root."""
    leaves = tuple(Node(f"leaf{i}", sleep=latency) for i in range(k))
    return Graph(
        f"fanout_k{k}", (*leaves, Node("handler", tuple(n.name for n in leaves)))
    )


def readiness(unit: float = 0.001) -> Graph:
    """Root needs A and C; A (4 units) and B (1 unit) are leaves; C(B) takes 3 units.

    Readiness-driven scheduling finishes in 4 units, level by level in 7, one after
    the other in 8.
    """
    return Graph(
        "readiness",
        (
            Node("a", sleep=4 * unit),
            Node("b", sleep=1 * unit),
            Node("c", ("b",), sleep=3 * unit),
            Node("handler", ("a", "c")),
        ),
    )


def wide(width: int = 100) -> Graph:
    """``width`` async leaves under one root, no I/O."""
    leaves = tuple(Node(f"leaf{i}") for i in range(width))
    return Graph(
        f"wide_{width}", (*leaves, Node("handler", tuple(n.name for n in leaves)))
    )


def deep(length: int = 50) -> Graph:
    """A chain of ``length`` async nodes (the root included), no I/O."""
    nodes = [Node("n0")]
    for i in range(1, length - 1):
        nodes.append(Node(f"n{i}", (f"n{i - 1}",)))
    nodes.append(Node("handler", (f"n{length - 2}",)))
    return Graph(f"deep_{length}", tuple(nodes))


def layered_dag(
    n_nodes: int, *, width: int = 40, parents: int = 3, seed: int = 0
) -> Graph:
    """A seeded layered DAG of ``n_nodes`` nodes (the root included).

    Layers of ``width`` nodes; each node of a layer after the first depends on
    ``parents`` distinct nodes of the layer below, chosen with
    ``random.Random(seed)``. Nodes nobody depends on become parameters of the root,
    so the whole graph is reachable from it (about 40 + 4.4% of the nodes with the
    defaults). Depth grows with the size: 25 layers at 1,000 nodes.
    """
    rng = random.Random(seed)
    body = max(1, n_nodes - 1)
    nodes: list[Node] = []
    previous: list[str] = []
    used: set[str] = set()
    for start in range(0, body, width):
        current = [f"d{i}" for i in range(start, min(start + width, body))]
        for name in current:
            deps: tuple[str, ...] = ()
            if previous:
                deps = tuple(rng.sample(previous, min(parents, len(previous))))
                used.update(deps)
            nodes.append(Node(name, deps))
        previous = current
    sinks = tuple(n.name for n in nodes if n.name not in used)
    nodes.append(Node("handler", sinks))
    return Graph(f"dag_{n_nodes}", tuple(nodes))


def fan_in(n_nodes: int) -> Graph:
    """One root with ``n_nodes - 1`` parameters, each an async leaf."""
    leaves = tuple(Node(f"d{i}") for i in range(n_nodes - 1))
    return Graph(
        f"fanin_{n_nodes}", (*leaves, Node("handler", tuple(n.name for n in leaves)))
    )


def shared_graph(
    n_nodes: int,
    handlers: int,
    *,
    width: int = 250,
    parents: int = 2,
    picks: int = 3,
    seed: int = 0,
) -> tuple[Graph, tuple[str, ...]]:
    """``handlers`` roots over one shared layered DAG of ``n_nodes`` nodes.

    The DAG is :func:`layered_dag`'s, wide and shallow like a service's graph (8
    layers of 250 nodes, 2 parents each, at 2,000 nodes); handler ``h<i>`` depends
    on ``picks`` nodes drawn with ``random.Random(seed + 1)`` from the whole graph
    (with the defaults a handler's plan has ~150 nodes). Returns the graph (DAG
    nodes, the handlers, then a root over every handler, as a :class:`Graph` must
    end with its root) and the handler names.
    """
    base = layered_dag(n_nodes + 1, width=width, parents=parents, seed=seed)
    dag = base.nodes[:-1]  # without its root
    rng = random.Random(seed + 1)
    names = [n.name for n in dag]
    roots = tuple(
        Node(f"h{i}", tuple(rng.sample(names, picks))) for i in range(handlers)
    )
    top = Node("handler", tuple(r.name for r in roots))
    graph = Graph(f"shared_{n_nodes}_{handlers}", (*dag, *roots, top))
    return graph, tuple(r.name for r in roots)


FAMILIES: dict[str, str] = {
    "dag": "seeded layered DAGs, 40 nodes per layer, 3 parents per node",
    "fanin": "wide fan-in: one root with n - 1 async leaf parameters",
    "chain": "chains: n nodes, each depending on the one before",
}


def family(name: str, size: int) -> Graph:
    """The ``compile`` scenario's graph of family ``name`` with ``size`` nodes."""
    match name:
        case "dag":
            return layered_dag(size)
        case "fanin":
            return fan_in(size)
        case "chain":
            return deep(size)
    raise ValueError(f"unknown graph family {name!r}")


def reachable(graph: Graph, name: str) -> int:
    """How many nodes ``name``'s plan contains (itself included)."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.node(current).deps)
    return len(seen)


def expected_value(graph: Graph) -> object:
    """The value every correct resolver returns for the root.

    Every dependable returns ``(name, *dependency values)``; see codegen's bodies.
    """
    values: dict[str, object] = {}
    for node in graph.nodes:
        values[node.name] = (node.name, *(values[d] for d in node.deps))
    return values[graph.root.name]


def expected_json(graph: Graph) -> bytes:
    """The body of a JSON response carrying :func:`expected_value` (the
    ``fastapi_route`` scenario): tuples become lists, rendered as Starlette's
    ``JSONResponse`` does (compact, UTF-8)."""
    return json.dumps(
        expected_value(graph),
        ensure_ascii=False,
        allow_nan=False,
        indent=None,
        separators=(",", ":"),
    ).encode("utf-8")


def critical_path(graph: Graph) -> float:
    """The longest chain of sleeps: the best time any scheduler can reach."""
    finish: dict[str, float] = {}
    for node in graph.nodes:
        start = max((finish[d] for d in node.deps), default=0.0)
        finish[node.name] = start + node.sleep
    return finish[graph.root.name]


def levels(graph: Graph) -> list[list[Node]]:
    """Nodes grouped by depth (longest distance from a leaf): a level-by-level plan."""
    depth: dict[str, int] = {}
    for node in graph.nodes:
        depth[node.name] = 1 + max((depth[d] for d in node.deps), default=-1)
    grouped: list[list[Node]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in graph.nodes:
        grouped[depth[node.name]].append(node)
    return grouped


def generators(graph: Graph) -> Iterable[Node]:
    """The async-generator nodes (those with a counted teardown)."""
    return (n for n in graph.nodes if n.kind == "asyncgen")


def edge_count(graph: Graph) -> int:
    """Number of dependency edges (reported next to compile times)."""
    return sum(len(n.deps) for n in graph.nodes)
