"""Plans: what the compiler produces and the engine runs, as plain immutable data.

A :class:`Plan` is one root callable under one override set: its dependencies as
:class:`Node` records in topological order (FastAPI's depth-first declaration order,
the root last), with integer argument slots. The engine never introspects. The walk
that builds plans lives in ``_compiler``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ._introspect import CallKind
from ._lifetime import Lifetime
from ._markers import Dependency

__all__ = [
    "Node",
    "Plan",
    "Site",
]

T = TypeVar("T")


class Site:
    """Where the compiler first met a node: its name under its parent's site.

    Nodes keep a site instead of a path tuple: a path per node costs memory quadratic
    in the depth of the graph, and paths are only read for messages.
    """

    __slots__ = ("name", "parent")

    def __init__(self, name: str, parent: Site | None) -> None:
        self.name = name
        self.parent = parent

    def path(self) -> tuple[str, ...]:
        """The names from the root to this site."""
        names: list[str] = []
        site: Site | None = self
        while site is not None:
            names.append(site.name)
            site = site.parent
        names.reverse()
        return tuple(names)

    def __repr__(self) -> str:
        return f"Site({' -> '.join(self.path())})"


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One dependable in a plan, with everything the scheduler needs, as plain data."""

    index: int
    call: Callable[..., Any]  # what runs (an override's replacement, if any)
    original: Callable[..., Any]  # as declared (keys the cache and overrides)
    kind: CallKind
    name: str
    #: FastAPI's cache key (original, scopes if used, lifetime); None for the root.
    key: Hashable
    use_cache: bool
    #: How long the value lives: ``Lifetime.FUNCTION`` (and the root), ``REQUEST`` or
    #: ``APP``; ``str()`` gives ``"function"``, ``"request"`` or ``"app"``.
    lifetime: Lifetime
    deps: tuple[int, ...]  # nodes that must finish first (arguments + ordering edges)
    args: tuple[tuple[str, int], ...]  # parameter -> node index
    values: tuple[tuple[str, Any], ...]  # parameter (= value name) -> default or EMPTY
    contexts: tuple[tuple[str, type], ...]  # parameter -> context type
    scope_args: tuple[tuple[str, type], ...]  # parameter -> SecurityScopes class
    scopes: tuple[str, ...]  # the visible security scopes
    thread: bool  # sync callables and sync generator halves go to a worker thread
    limit: tuple[object, int] | None  # (token, max_concurrency) of the declaration
    site: Site = field(repr=False)  # where the compiler first met it (see ``path``)
    alias: bool = False  # reads the memo a preceding use_cache=False twin seeded
    # use_cache=False seeds an absent key; only the first such twin in a plan does, so
    # concurrency cannot change which value a later cached declaration reads.
    seeds: bool = True

    @property
    def path(self) -> tuple[str, ...]:
        """The qualified names from the root to this node, as first met (built on
        each read: call it for messages, not per call)."""
        return self.site.path()


@dataclass(frozen=True, slots=True, eq=False)
class Plan(Generic[T]):
    """An immutable execution plan for one root callable and one override set.

    Nodes are in FastAPI's depth-first, declaration order (dependencies first); the
    root is the last node. Build one with :meth:`Container.compile`.
    """

    root: Callable[..., Any]  # returns T, or a coroutine of T
    nodes: tuple[Node, ...]
    dependents: tuple[tuple[int, ...], ...]
    required_values: Mapping[str, tuple[str, ...]]  # value name -> where needed
    context_types: frozenset[type]
    has_app_nodes: bool
    dependencies: tuple[Dependency, ...] = ()  # run for their effect, before the root's
    # The mode this plan runs in; None: the container's (``Container.sequential``).
    sequential: bool | None = None

    @property
    def root_node(self) -> Node:
        """The node that calls the root callable."""
        return self.nodes[-1]

    def explain(self) -> str:
        """A readable tree of the plan: kinds, lifetimes, cache keys and overlap."""
        from ._explain import explain

        return explain(self)

    def to_mermaid(self) -> str:
        """The plan as a Mermaid flowchart (dependencies point at their dependents)."""
        from ._explain import to_mermaid

        return to_mermaid(self)

    def to_dot(self) -> str:
        """The plan as a Graphviz DOT digraph."""
        from ._explain import to_dot

        return to_dot(self)
