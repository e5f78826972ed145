"""Dependency graphs as plain data: the hand-shaped scenarios and a seeded generator.

A :class:`Graph` describes *what* each dependable does (its dependencies, whether it is
sync, async or an async generator, how long it sleeps, whether it is app-scoped); the
adapters turn it into real functions for each library (:mod:`benchmarks.codegen`), so
every library runs exactly the same bodies. :func:`expected_value` and
:func:`critical_path` give the reference answers the correctness checks compare to.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

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

    def with_root_waiting(self) -> Graph:
        """The same graph whose root awaits ``EVENT`` (used to hold scopes open)."""
        root = self.root
        patched = Node(
            root.name, root.deps, root.kind, root.sleep, root.app, waits=True
        )
        return Graph(self.name, (*self.nodes[:-1], patched))


def _request_graph(name: str, settings_kind: Kind, app_leaves: bool = False) -> Graph:
    """The 10-node request graph of peers.md section 5."""
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
    n_nodes: int,
    *,
    layers: int = 6,
    max_deps: int = 3,
    seed: int = 0,
) -> Graph:
    """A seeded layered DAG of ``n_nodes`` nodes (the root included).

    Nodes are spread over ``layers`` layers; each node of layer L > 0 depends on 1 to
    ``max_deps`` distinct nodes of layer L - 1, chosen with ``random.Random(seed)``
    (the shape of adriangb/di's benchmark generator). Nodes nobody depends on become
    parameters of the root, so the whole graph is reachable from it.
    """
    rng = random.Random(seed)
    body = max(1, n_nodes - 1)
    n_layers = max(1, min(layers, body))
    sizes = [
        body // n_layers + (1 if i < body % n_layers else 0) for i in range(n_layers)
    ]
    nodes: list[Node] = []
    previous: list[str] = []
    used: set[str] = set()
    counter = 0
    for size in sizes:
        current: list[str] = []
        for _ in range(size):
            name = f"d{counter}"
            counter += 1
            deps: tuple[str, ...] = ()
            if previous:
                k = rng.randint(1, min(max_deps, len(previous)))
                deps = tuple(rng.sample(previous, k))
                used.update(deps)
            nodes.append(Node(name, deps))
            current.append(name)
        previous = current
    sinks = tuple(n.name for n in nodes if n.name not in used)
    nodes.append(Node("handler", sinks))
    return Graph(f"dag_{n_nodes}", tuple(nodes))


def expected_value(graph: Graph) -> object:
    """The value every correct resolver returns for the root.

    Every dependable returns ``(name, *dependency values)``; see codegen's bodies.
    """
    values: dict[str, object] = {}
    for node in graph.nodes:
        values[node.name] = (node.name, *(values[d] for d in node.deps))
    return values[graph.root.name]


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
