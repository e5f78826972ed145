"""Turn a :class:`~benchmarks.graphs.Graph` into real functions by generating source.

Every library gets ordinary module-level functions with the same bodies; only the
signatures differ (``Annotated[..., Depends(f)]`` markers for FastAPI-style libraries,
distinct return types for the type-keyed ones). Each body counts its calls in
``CALLS[i]`` and, for async generators, its teardowns in ``EXITS[i]``, so the harness
can check that a library did exactly the expected work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import anyio.lowlevel

from benchmarks.graphs import Graph, Node


def _no_text(node: Node) -> str:
    return ""


@dataclass(frozen=True)
class Dialect:
    """How one library wants its dependables declared.

    ``param(dep)`` renders the parameter through which a node receives ``dep``;
    ``returns(node)`` its return annotation; ``decorator(node)`` a decorator line.
    ``types`` emits one empty class ``T_<name>`` per node (for type-keyed containers).
    """

    param: Callable[[Node], str]
    returns: Callable[[Node], str] = _no_text
    decorator: Callable[[Node], str] = _no_text
    types: bool = False


def plain_param(dep: Node) -> str:
    """A parameter without annotation (hand-written code passes values itself)."""
    return f"p_{dep.name}"


PLAIN = Dialect(param=plain_param)


def typed_returns(node: Node) -> str:
    """``-> T_name``, or ``-> AsyncIterator[T_name]`` for a generator."""
    if node.kind == "asyncgen":
        return f" -> AsyncIterator[T_{node.name}]"
    return f" -> T_{node.name}"


def typed_param(dep: Node) -> str:
    """``p_dep: T_dep``: a dependency requested by its (unique) type."""
    return f"p_{dep.name}: T_{dep.name}"


def _body(i: int, node: Node) -> list[str]:
    value = ", ".join([repr(node.name), *(f"p_{d}" for d in node.deps)])
    lines = [f"    CALLS[{i}] += 1"]
    if node.kind == "sync":
        if node.sleep or node.waits or node.checkpoint:
            raise ValueError(f"sync node {node.name} cannot sleep or wait")
    else:
        if node.sleep:
            lines.append(f"    await anyio.sleep({node.sleep!r})")
        if node.checkpoint:
            lines.append("    await CHECKPOINT()")
        if node.waits:
            lines.append("    await EVENT.wait()")
    if node.kind == "asyncgen":
        lines += [
            "    try:",
            f"        yield ({value},)",
            "    finally:",
            f"        EXITS[{i}] += 1",
        ]
    else:
        lines.append(f"    return ({value},)")
    return lines


def render(graph: Graph, dialect: Dialect, *, string_annotations: bool = False) -> str:
    """The Python source defining ``n_<name>`` for every node of ``graph``.

    With ``string_annotations`` the module starts with ``from __future__ import
    annotations``, so every library has to evaluate annotation strings (as in most
    real code bases).
    """
    out: list[str] = []
    if string_annotations:
        out.append("from __future__ import annotations")
    if dialect.types:
        out += [f"class T_{n.name}: pass" for n in graph.nodes]
    for i, node in enumerate(graph.nodes):
        params = ", ".join(dialect.param(graph.node(d)) for d in node.deps)
        deco = dialect.decorator(node)
        if deco:
            out.append(deco)
        prefix = "def" if node.kind == "sync" else "async def"
        out.append(f"{prefix} n_{node.name}({params}){dialect.returns(node)}:")
        out += _body(i, node)
    return "\n".join(out) + "\n"


def build(
    graph: Graph, dialect: Dialect, *, string_annotations: bool = False, **names: Any
) -> dict[str, Any]:
    """Exec the rendered source in a fresh namespace and return it.

    ``names`` become globals of the generated module (markers, decorators, ...).
    The namespace holds ``CALLS``, ``EXITS`` (one counter per node), ``EVENT`` and
    ``CHECKPOINT`` (``anyio.lowlevel.checkpoint``).
    """
    ns: dict[str, Any] = {
        "__name__": f"bench_{graph.name}",
        "anyio": anyio,
        "Annotated": Annotated,
        "Any": Any,
        "AsyncIterator": AsyncIterator,
        "CALLS": [0] * len(graph.nodes),
        "EXITS": [0] * len(graph.nodes),
        "EVENT": None,
        "CHECKPOINT": anyio.lowlevel.checkpoint,
        **names,
    }
    source = render(graph, dialect, string_annotations=string_annotations)
    exec(compile(source, f"<bench {graph.name}>", "exec"), ns)
    return ns


def root_of(graph: Graph, ns: dict[str, Any]) -> Callable[..., Any]:
    """The generated handler function."""
    return ns[f"n_{graph.root.name}"]  # type: ignore[no-any-return]


def fn(ns: dict[str, Any], node: Node) -> Callable[..., Any]:
    """The generated function of ``node``."""
    return ns[f"n_{node.name}"]  # type: ignore[no-any-return]


def reset_counts(graph: Graph, ns: dict[str, Any]) -> None:
    """Zero the call and teardown counters (after a priming call outside the count).

    Only for graphs without app-scoped nodes: their once-per-container count would
    no longer hold.
    """
    if any(n.app for n in graph.nodes):
        raise ValueError(f"{graph.name}: cannot reset the counts of app-scoped nodes")
    ns["CALLS"][:] = [0] * len(graph.nodes)
    ns["EXITS"][:] = [0] * len(graph.nodes)
