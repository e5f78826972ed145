# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Random dependency graphs, run through FastAPI and anydepends (Hypothesis).

Each example is a random DAG of sync/async functions and generators, declared with
``Depends``/``Security`` (default-value or ``Annotated`` form), random ``use_cache``,
explicit ``scope``, own security scopes, ``SecurityScopes`` parameters, plain values,
up to two overrides (whose replacements have dependencies of their own) and at most
one failing node. Its source code is generated and ``exec``'d (so the
dependables are ordinary user functions) once per run and marker set.

What must hold:

* ``Container(sequential=True)`` gives FastAPI's result or exception; and FastAPI's
  log entry by entry when no declaration has ``use_cache=False`` (otherwise
  FastAPI's re-walk quirk adds calls, the documented deviation of
  docs/semantics.md §3, so only the set of distinct log entries is compared);
* the concurrent container gives the same result or exception, and the same log as
  a multiset (or a set, as above); where a replacement observes scopes under its
  original's scope-less key, the value depends on which place needs it first, so
  only the calls are compared;
* every run tears down each entered ``yield`` dependency exactly once, and after a
  failure each of them saw the exception the caller gets: the original one, or,
  when the concurrent container ran the failing node several times at once, the
  ``ExceptionGroup`` of those failures (docs/semantics.md §5).

Values never depend on call order, and scopes enter values as sorted sets, so the
repeated-scope deviation (docs/semantics.md §9) does not show here; it has its own test.
"""

import os
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import (
    FASTAPI,
    Case,
    Log,
    Markers,
    Outcome,
    anydepends_markers,
    assert_same_exception,
    run_anydepends,
    run_fastapi,
)

KINDS = ("sync", "async", "gen", "agen")
SCOPE_NAMES = ("a", "b", "c")
MOD = 1_000_003


@dataclass(frozen=True)
class Edge:
    child: int
    use_cache: bool
    scopes: tuple[str, ...] | None  # None: Depends; a tuple: Security(scopes=...)
    scope: str | None  # explicit lifetime
    annotated: bool  # Annotated form instead of a default value


@dataclass(frozen=True)
class Node:
    kind: str
    uses_security_scopes: bool
    has_value: bool
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    root_edges: tuple[Edge, ...]
    root_async: bool
    failing: int | None
    overrides: tuple[tuple[int, Node], ...] = ()  # n{k} -> r{k}

    def _observes_scopes(self, node: Node) -> bool:
        """Whether ``node``'s value can depend on scopes (a ``SecurityScopes``
        parameter in its subtree, overrides applied)."""
        replaced = dict(self.overrides)
        if node.uses_security_scopes:
            return True
        return any(
            self._observes_scopes(replaced.get(e.child, self.nodes[e.child]))
            for e in node.edges
        )

    @property
    def order_dependent_values(self) -> bool:
        """A replacement that observes scopes is cached under its original's key,
        which may have no scope part: concurrently, its value then depends on which
        place needs it first (FastAPI's order picks the first in DFS order)."""
        return any(self._observes_scopes(node) for _, node in self.overrides)

    @property
    def has_uncached(self) -> bool:
        nodes = list(self.nodes) + [node for _, node in self.overrides]
        edges = [e for n in nodes for e in n.edges] + list(self.root_edges)
        return any(not e.use_cache for e in edges)


def _edges(draw: Any, below: int, *, at_root: bool) -> tuple[Edge, ...]:
    if below == 0:
        return ()
    count = draw(st.integers(0, min(3, below) if not at_root else 4))
    scopes = (None, "request", "function") if at_root else (None, "request")
    edges = []
    for _ in range(count):
        security = draw(st.booleans())
        edges.append(
            Edge(
                child=draw(st.integers(0, below - 1)),
                use_cache=draw(st.booleans() | st.just(True)),
                scopes=(
                    tuple(draw(st.lists(st.sampled_from(SCOPE_NAMES), max_size=2)))
                    if security
                    else None
                ),
                # FastAPI (0.165) forbids an explicit "function" child under a
                # request-scoped generator; only the root may declare it here.
                scope=draw(st.sampled_from(scopes)),
                annotated=draw(st.booleans()),
            )
        )
    return tuple(edges)


@st.composite
def graphs(draw: Any) -> Graph:
    size = draw(st.integers(1, 7))
    nodes = tuple(
        Node(
            kind=draw(st.sampled_from(KINDS)),
            uses_security_scopes=draw(st.booleans()),
            has_value=draw(st.booleans()),
            edges=_edges(draw, i, at_root=False),
        )
        for i in range(size)
    )
    root_edges = _edges(draw, size, at_root=True)
    if not root_edges:
        root_edges = (Edge(size - 1, True, None, None, False),)
    failing = draw(st.none() | st.integers(0, size - 1))
    # Replacements depend only on lower-numbered nodes, so no cycle can appear.
    overridden = draw(st.sets(st.integers(0, size - 1), max_size=2))
    overrides = tuple(
        (
            k,
            Node(
                kind=draw(st.sampled_from(KINDS)),
                uses_security_scopes=draw(st.booleans()),
                has_value=draw(st.booleans()),
                edges=_edges(draw, k, at_root=False),
            ),
        )
        for k in sorted(overridden)
    )
    return Graph(nodes, root_edges, draw(st.booleans()), failing, overrides)


def _marker(edge: Edge) -> str:
    options = [] if edge.use_cache else ["use_cache=False"]
    if edge.scopes is not None:
        options.insert(0, f"scopes={list(edge.scopes)!r}")
        return f"M.Security(n{edge.child}, {', '.join(options)})"
    if edge.scope is not None:
        options.append(f"scope={edge.scope!r}")
    return f"M.Depends(n{edge.child}{''.join(', ' + o for o in options)})"


def _parameters(edges: tuple[Edge, ...], extra_first: list[str]) -> str:
    first = list(extra_first)
    last = []
    for k, edge in enumerate(edges):
        if edge.annotated:
            first.append(f"p{k}: Annotated[int, {_marker(edge)}]")
        else:
            last.append(f"p{k}: int = {_marker(edge)}")
    return ", ".join(first + last)


def _function(name: str, node: Node, base: int, failing: bool) -> list[str]:
    extra = []
    if node.uses_security_scopes:
        extra.append("ss: M.SecurityScopes")
    if node.has_value:
        extra.append(f"v_{name}: int")
    params = _parameters(node.edges, extra)
    terms = [str(base)]
    terms += [f"p{k}" for k in range(len(node.edges))]
    if node.has_value:
        terms.append(f"v_{name}")
    if node.uses_security_scopes:
        terms.append("scope_code(ss)")
    prefix = "async def" if node.kind in ("async", "agen") else "def"
    lines = [f"{prefix} {name}({params}) -> Any:"]
    lines.append(f"    total = ({' + '.join(terms)}) % {MOD}")
    if failing:
        lines.append(f"    LOG('{name}', 'raise', total)")
        lines.append(f"    raise ValueError('{name} failed')")
    if node.kind in ("sync", "async"):
        lines.append(f"    LOG('{name}', 'call', total)")
        lines.append("    return total")
    else:
        lines.append(f"    LOG('{name}', 'enter', total)")
        lines.append("    try:")
        lines.append("        yield total")
        lines.append("    except BaseException as exc:")
        lines.append(
            f"        LOG('{name}', 'exit', total, type(exc).__name__, str(exc))"
        )
        lines.append("        raise")
        lines.append(f"    LOG('{name}', 'exit', total)")
    lines.append("")
    return lines


def graph_source(graph: Graph) -> str:
    """The Python source of ``graph``'s dependables (a name ``M`` holds markers)."""
    lines = []
    for i, node in enumerate(graph.nodes):
        lines += _function(f"n{i}", node, (i + 1) * 1000, graph.failing == i)
    for k, node in graph.overrides:
        lines += _function(f"r{k}", node, (k + 1) * 1000 + 500, False)
    prefix = "async def" if graph.root_async else "def"
    params = _parameters(graph.root_edges, [])
    lines.append(f"{prefix} root({params}) -> Any:")
    lines.append("    LOG('root', 'call')")
    results = ", ".join(f"p{k}" for k in range(len(graph.root_edges)))
    lines.append(f"    return [{results}]")
    if graph.overrides:
        lines.append("")
        pairs = ", ".join(f"n{k}: r{k}" for k, _ in graph.overrides)
        lines.append(f"# overrides: {{{pairs}}}")
    return "\n".join(lines) + "\n"


def scope_code(ss: Any) -> int:
    return (
        sum((k + 1) * ord(name) for k, name in enumerate(sorted(set(ss.scopes))))
        * 10_000
    )


def build_graph(graph: Graph, source: str, m: Markers) -> Case:
    log = Log()
    namespace: dict[str, Any] = {
        "M": m,
        "LOG": log,
        "Any": Any,
        "Annotated": Annotated,
        "scope_code": scope_code,
    }
    exec(compile(source, "<graph>", "exec", dont_inherit=True), namespace)
    named = [(f"n{i}", n) for i, n in enumerate(graph.nodes)]
    named += [(f"r{k}", n) for k, n in graph.overrides]
    values = {f"v_{name}": 7 * len(name) + ord(name[0]) for name, n in named}
    overrides = {namespace[f"n{k}"]: namespace[f"r{k}"] for k, _ in graph.overrides}
    return Case(namespace["root"], log, values=values, overrides=overrides)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _same_failure(expected: Outcome, actual: Outcome, source: str) -> None:
    """The concurrent container may call the failing node several times at once
    (``use_cache=False``, or several scope sets): then it raises an
    ``ExceptionGroup`` of those failures (docs/semantics.md §5); otherwise the
    original exception."""
    if expected.exc is None or isinstance(actual.exc, ValueError):
        assert_same_exception(expected, actual)
        return
    assert isinstance(actual.exc, BaseExceptionGroup), (actual, source)
    leaves = _leaves(actual.exc)
    assert len(leaves) >= 2, (actual, source)
    for leaf in leaves:
        assert (type(leaf), str(leaf)) == (ValueError, str(expected.exc)), (
            actual,
            source,
        )
    raising = sum(1 for entry in actual.log if entry[1] == "raise")
    assert raising >= len(leaves), (actual, source)


def _teardown_once(outcome: Outcome, source: str) -> None:
    entered = Counter(e[:3] for e in outcome.log if e[1] == "enter")
    exited = Counter(e[:3] for e in outcome.log if e[1] == "exit")
    assert {k[::2] for k in entered} == {k[::2] for k in exited}, (outcome, source)
    assert sum(entered.values()) == sum(exited.values()), (outcome, source)
    if outcome.exc is not None:
        seen = (type(outcome.exc).__name__, str(outcome.exc))
        for entry in outcome.log:
            if entry[1] == "exit":
                assert entry[3:] == seen, (
                    f"{entry} did not see the original exception\n{outcome!r}\n{source}"
                )


def _compare(
    expected: Outcome, actual: Outcome, source: str, *, exact: bool, group: bool
) -> None:
    try:
        if group:
            _same_failure(expected, actual, source)
        else:
            assert_same_exception(expected, actual)
        if expected.exc is None:
            assert actual.result == expected.result
        if exact:
            assert actual.log == expected.log
        elif expected.exc is None:
            assert set(actual.log) == set(expected.log)
    except AssertionError as error:
        raise AssertionError(
            f"{error}\n{expected!r}\n{actual!r}\n--- graph ---\n{source}"
        ) from None


@settings(
    max_examples=int(os.environ.get("ANYDEPENDS_CONFORMANCE_EXAMPLES", "60")),
    deadline=None,
    # Deterministic in CI; set ANYDEPENDS_CONFORMANCE_RANDOM=1 to explore.
    derandomize=not os.environ.get("ANYDEPENDS_CONFORMANCE_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(graphs())
async def test_random_graphs_match_fastapi(graph: Graph) -> None:
    """A random graph gives FastAPI's result or exception (and its log, see the
    module docstring) in the sequential container, and the same result or exception
    and calls in the concurrent one; every entered ``yield`` dependency is torn down
    once and, after a failure, saw the original exception."""
    source = graph_source(graph)
    fa = await run_fastapi(build_graph(graph, source, FASTAPI))
    m = anydepends_markers()
    seq = await run_anydepends(build_graph(graph, source, m), sequential=True)
    conc = await run_anydepends(
        build_graph(graph, source, m), sequential=False, override_style="context"
    )

    exact = not graph.has_uncached
    _compare(fa, seq, source, exact=exact, group=False)
    _teardown_once(seq, source)
    if graph.order_dependent_values:
        events = Counter(entry[:2] for entry in fa.log)
        if exact and fa.exc is None:
            assert Counter(e[:2] for e in conc.log) == events, (fa, conc, source)
        _same_failure(fa, conc, source)
    else:
        if exact and fa.exc is None:
            assert Counter(conc.log) == Counter(fa.log), (fa, conc, source)
        _compare(fa, conc, source, exact=False, group=True)
    _teardown_once(conc, source)
    if fa.exc is not None:
        assert ("root", "call") not in conc.log, (conc, source)
