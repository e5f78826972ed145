"""The compiler: a root callable and its declarations -> an immutable, indexed Plan.

Compilation walks the declared graph once, depth first in declaration order (FastAPI's
order), memoised per cache key so shared subgraphs are visited once and compilation is
linear in the size of the graph. It validates everything that can be known before a
call (cycles, lifetimes, declarations, which values and context types are needed) and
produces plain data: nodes in topological order with integer argument slots. The
scheduler never introspects.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Generic, TypeVar

from ._errors import CycleError, DeclarationError, DependencyError, LifetimeError
from ._introspect import EMPTY, Callee, CallKind, ParamKind, introspect, qualname
from ._markers import Dependency, is_security_scheme

__all__ = [
    "MEMO_APP",
    "MEMO_RUN",
    "MEMO_SCOPE",
    "Node",
    "Plan",
    "PlanState",
    "compile_plan",
]

T = TypeVar("T")

# Where a node's value is memoised (and its teardown registered, for generators).
MEMO_SCOPE: Final = 0  # the Scope: request lifetime (the default)
MEMO_RUN: Final = 1  # the call: scope="function"
MEMO_APP: Final = 2  # the Container: scope="app"

_RECURSION_LIMIT: Final = 40_000

_LIFETIME_OF_MEMO: Final = {
    MEMO_SCOPE: "request",
    MEMO_RUN: "function",
    MEMO_APP: "app",
}


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One dependable in a plan, with everything the scheduler needs, as plain data."""

    index: int
    call: Callable[..., Any]  # what runs (an override's replacement, if any)
    original: Callable[..., Any]  # as declared (keys the cache and overrides)
    kind: CallKind
    name: str
    key: (
        Hashable  # FastAPI's cache key (original, scopes-if-used, lifetime); None: root
    )
    use_cache: bool
    memo: int  # MEMO_SCOPE, MEMO_RUN or MEMO_APP
    deps: tuple[int, ...]  # nodes that must finish first (arguments + ordering edges)
    args: tuple[tuple[str, int], ...]  # parameter -> node index
    values: tuple[tuple[str, Any], ...]  # parameter (= value name) -> default or EMPTY
    contexts: tuple[tuple[str, type], ...]  # parameter -> context type
    scope_args: tuple[tuple[str, type], ...]  # parameter -> SecurityScopes class
    scopes: tuple[str, ...]  # the visible security scopes
    thread: bool  # sync callables and sync generator halves go to a worker thread
    limit: tuple[object, int] | None  # (token, max_concurrency) of the declaration
    path: tuple[str, ...]  # the first path at which the compiler met it
    alias: bool = False  # reads the memo a preceding use_cache=False twin seeded
    # use_cache=False seeds an absent key; only the first such twin in a plan does, so
    # concurrency cannot change which value a later cached declaration reads.
    seeds: bool = True
    # Derived, for the scheduler's hot path: 0 = await call(...), 1 = call(...) inline,
    # 2 = anything else (threads, generators, limits), 3 = an alias (the twin's value
    # when the memo has none); extra = not only node arguments.
    mode: int = field(init=False)
    extra: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.alias:
            mode = 3
        elif self.limit is None and self.kind is CallKind.ASYNC:
            mode = 0
        elif self.limit is None and self.kind is CallKind.SYNC and not self.thread:
            mode = 1
        else:
            mode = 2
        object.__setattr__(self, "mode", mode)
        object.__setattr__(
            self, "extra", bool(self.values or self.contexts or self.scope_args)
        )

    @property
    def lifetime(self) -> str:
        """``"function"``, ``"request"`` or ``"app"``."""
        return _LIFETIME_OF_MEMO[self.memo]


class PlanState:
    """What the scheduler learns about a plan as it runs it (the only mutable part).

    ``eager``: open the run's cancel scope before the first dependency, so a
    dependency the calling task is running can be cancelled when a sibling fails even
    if it holds a cancel scope of its own. True for the first call of a plan whose
    dependencies can overlap, and for good once a call really ran concurrently; plans
    that never wait with work ready run with no scope at all.
    """

    __slots__ = ("concurrent_seen", "eager", "fast", "fast_built")

    def __init__(self, may_overlap: bool) -> None:
        self.eager = may_overlap
        self.concurrent_seen = False
        self.fast: Any = None  # the generated straight-line runner, once built
        self.fast_built = False


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
    origin: object = field(default=None, compare=False, repr=False)  # the plan cache
    # The mode this plan runs in; None: the container's (``Container.sequential``).
    sequential: bool | None = None
    state: PlanState = field(
        default_factory=lambda: PlanState(True), compare=False, repr=False
    )

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


@dataclass(slots=True)
class _Config:
    overrides: Mapping[Any, Callable[..., Any]]
    context_types: tuple[type, ...]
    sync_to_thread: bool
    introspected: dict[Any, Callee]


def _key_part(call: object) -> Hashable:
    """The cache-key element for a callable: itself if hashable, else its identity."""
    try:
        hash(call)
    except TypeError:
        return ("unhashable", id(call))
    return call


class _Compiler:
    """One compilation: a depth-first walk with a memo per cache key."""

    def __init__(self, config: _Config) -> None:
        self.config = config
        self.nodes: list[Node] = []
        self.cached: dict[Hashable, int] = {}  # cache key -> cached node index
        self.nocache_first: dict[
            Hashable, int
        ] = {}  # key -> first use_cache=False node
        self.uses_memo: dict[Hashable, bool] = {}
        self.required: dict[str, list[str]] = {}
        self.contexts: set[type] = set()
        self.stack: list[Hashable] = []  # key parts of callables on the current path
        self.extra: tuple[Dependency, ...] = ()

    # -- introspection, memoised per callable ------------------------------------
    def callee(self, call: Callable[..., Any], path: tuple[str, ...]) -> Callee:
        cache = self.config.introspected
        part = _key_part(call)
        found = cache.get(part)
        if found is None:
            found = introspect(call, path)
            if not isinstance(part, tuple) or part[:1] != ("unhashable",):
                cache[part] = found
        return found

    def uses_scopes(self, call: Callable[..., Any], path: tuple[str, ...]) -> bool:
        """Whether *call* or anything it declares uses security scopes (as declared).

        FastAPI computes this on the declared graph, before overrides; cycles are
        reported by the main walk, so a back edge here simply counts as "no".
        """
        part = _key_part(call)
        known = self.uses_memo.get(part)
        if known is not None:
            return known
        self.uses_memo[part] = False  # provisional: breaks cycles
        callee = self.callee(call, path)
        uses = callee.declares_scopes or is_security_scheme(call)
        for p in callee.params:
            if uses:
                break
            if p.kind is ParamKind.DEPENDENCY:
                assert p.marker is not None and p.marker.dependency is not None
                try:
                    uses = bool(p.marker.own_scopes) or self.uses_scopes(
                        p.marker.dependency, (*path, callee.name)
                    )
                except DependencyError as exc:
                    raise exc.located(p.name) from exc.__cause__
        self.uses_memo[part] = uses
        return uses

    # -- the walk -------------------------------------------------------------------
    def root(self, call: Callable[..., Any], extra: tuple[Dependency, ...] = ()) -> int:
        callee = self.callee(call, ())
        if callee.kind.is_generator:
            msg = f"the root {callee.name} is a generator; only dependencies may yield"
            raise DeclarationError(
                msg,
                path=(callee.name,),
                callable=callee.name,
                hint="call a function that takes the yield dependency as a parameter",
            )
        self.stack.append(_key_part(call))
        self.extra = extra
        index = self.instantiate(
            callee, call, Dependency(call, use_cache=False), (), None, (), None
        )
        self.stack.pop()
        return index

    def declaration(
        self,
        marker: Dependency,
        visible: tuple[str, ...],
        path: tuple[str, ...],
        parent_memo: int,
        parent_kind: CallKind,
        param: str,
    ) -> int:
        """Compile one ``Depends`` declaration met at *path*; return its node index."""
        try:
            return self._declaration(
                marker, visible, path, parent_memo, parent_kind, param
            )
        except DependencyError as exc:
            raise exc.located(param) from exc.__cause__

    def _declaration(
        self,
        marker: Dependency,
        visible: tuple[str, ...],
        path: tuple[str, ...],
        parent_memo: int,
        parent_kind: CallKind,
        param: str,
    ) -> int:
        original = marker.dependency
        assert original is not None
        # The key counts scopes if the declared graph uses them (FastAPI computes it
        # from the original); what runs sees them if the replacement's graph does too.
        uses = bool(marker.own_scopes) or self.uses_scopes(original, path)
        own = tuple(s for s in marker.own_scopes if s not in visible)
        replacement = self._override(original)
        sees = uses or (
            replacement is not original and self.uses_scopes(replacement, path)
        )
        node_visible = (*visible, *own) if sees else ()
        lifetime = marker.scope
        orig_kind = self.callee(original, path).kind
        if lifetime is None and orig_kind.is_generator:
            lifetime_key = "request"
        else:
            lifetime_key = lifetime or ""
        key_scopes = tuple(sorted(set(node_visible))) if uses else ()
        key = (_key_part(original), key_scopes, lifetime_key)
        memo = {"app": MEMO_APP, "function": MEMO_RUN}.get(lifetime or "", MEMO_SCOPE)
        self._check_lifetime(marker, memo, path, parent_memo, parent_kind, param)
        if marker.use_cache:
            found = self.cached.get(key)
            if found is not None:
                return found
            twin = self.nocache_first.get(key)
            if twin is not None:
                # FastAPI's order: an earlier use_cache=False twin seeded the memo, so
                # this declaration is a cache hit and never runs its own subtree.
                index = self._alias(twin, key)
                self.cached[key] = index
                return index
        part = _key_part(original)
        if marker.use_cache and isinstance(part, tuple):
            msg = f"{qualname(original)} is unhashable, so it cannot key the cache"
            raise DeclarationError(
                msg,
                path=(*path, qualname(original)),
                callable=qualname(original),
                parameter=param,
                hint="make the callable hashable (e.g. a frozen dataclass), or"
                " declare it with use_cache=False",
            )
        if part in self.stack:
            names = [*path, qualname(original)]
            start = next(
                (i for i, n in enumerate(names[:-1]) if n == qualname(original)), 0
            )
            cycle = " -> ".join(names[start:])
            msg = f"dependency cycle: {cycle}"
            raise CycleError(
                msg,
                path=names,
                callable=qualname(original),
                parameter=param,
                hint="break the cycle: one of these must not depend on the other"
                " (pass the value in, or split the dependable)",
            )
        callee = self.callee(replacement, path)
        self.stack.append(part)
        index = self.instantiate(
            callee, original, marker, node_visible, key, path, memo
        )
        self.stack.pop()
        if marker.use_cache:
            self.cached[key] = index
        elif key in self.nocache_first:
            self.nodes[index] = replace(self.nodes[index], seeds=False)
        else:
            self.nocache_first[key] = index
        return index

    def _alias(self, twin: int, key: Hashable) -> int:
        """A node that reads the memo *twin* seeds (or, failing that, its value)."""
        source = self.nodes[twin]
        node = Node(
            index=len(self.nodes),
            call=source.call,
            original=source.original,
            kind=source.kind,
            name=source.name,
            key=key,
            use_cache=True,
            memo=source.memo,
            deps=(twin,),
            args=(),
            values=(),
            contexts=(),
            scope_args=(),
            scopes=source.scopes,
            thread=source.thread,
            limit=None,
            path=source.path,
            alias=True,
        )
        self.nodes.append(node)
        return node.index

    def _override(self, original: Callable[..., Any]) -> Callable[..., Any]:
        overrides = self.config.overrides
        if not overrides:
            return original
        try:
            return overrides.get(original, original)
        except TypeError:  # an unhashable callable cannot have been overridden
            return original

    def _check_lifetime(
        self,
        marker: Dependency,
        memo: int,
        path: tuple[str, ...],
        parent_memo: int,
        parent_kind: CallKind,
        param: str,
    ) -> None:
        parent = path[-1] if path else "?"
        child = qualname(marker.dependency)
        if parent_memo == MEMO_APP and memo != MEMO_APP:
            msg = (
                f"app-scoped {parent} depends on {child}, which lives shorter"
                f" ({marker.scope or 'request'} scope)"
            )
            raise LifetimeError(
                msg,
                path=(*path, child),
                callable=parent,
                parameter=param,
                hint=f'declare it Depends({child.rsplit(".", 1)[-1]}, scope="app"),'
                f" or make {parent} request-scoped",
            )
        if (
            parent_memo == MEMO_SCOPE
            and parent_kind.is_generator
            and marker.scope == "function"
        ):
            msg = (
                f"request-scoped yield dependency {parent} depends on {child}, which"
                ' has scope="function" and is torn down first'
            )
            raise LifetimeError(
                msg,
                path=(*path, child),
                callable=parent,
                parameter=param,
                hint=f'give {parent} scope="function" too, or drop scope="function"'
                f" from {child}",
            )

    def instantiate(
        self,
        callee: Callee,
        original: Callable[..., Any],
        marker: Dependency,
        visible: tuple[str, ...],
        key: Hashable,
        path: tuple[str, ...],
        memo: int | None,
    ) -> int:
        """Compile *callee*'s parameters and append its node (after its children)."""
        here = (*path, callee.name)
        node_memo = MEMO_RUN if memo is None else memo
        deps: list[int] = []
        args: list[tuple[str, int]] = []
        values: list[tuple[str, Any]] = []
        contexts: list[tuple[str, type]] = []
        scope_args: list[tuple[str, type]] = []
        if memo is None:
            # Extra dependencies (FastAPI's `dependencies=[...]`) come before the
            # root's own parameters; their values are discarded.
            for marker_ in self.extra:
                child = self.declaration(
                    marker_, visible, here, node_memo, callee.kind, "<dependencies>"
                )
                if child not in deps:
                    deps.append(child)
        for p in callee.params:
            if p.kind is ParamKind.DEPENDENCY:
                assert p.marker is not None
                child = self.declaration(
                    p.marker, visible, here, node_memo, callee.kind, p.name
                )
                args.append((p.name, child))
                if child not in deps:
                    deps.append(child)
            elif p.kind is ParamKind.SECURITY_SCOPES:
                scope_args.append((p.name, p.annotation))
            else:
                ctx = self._context_type(p.annotation)
                if ctx is not None:
                    self._check_context(ctx, node_memo, here, callee.name, p.name)
                    contexts.append((p.name, ctx))
                    self.contexts.add(ctx)
                elif node_memo == MEMO_APP:
                    if p.default is EMPTY:
                        msg = (
                            f"app-scoped {callee.name} takes the per-call value"
                            f" {p.name!r}; an app-scoped value cannot depend on a call"
                        )
                        raise LifetimeError(
                            msg,
                            path=here,
                            callable=callee.name,
                            parameter=p.name,
                            hint="give the parameter a default, provide it through an"
                            ' app-scoped Depends(..., scope="app"), or make the'
                            " dependency request-scoped",
                        )
                    # App-scoped dependables never see per-call values: defaults only.
                else:
                    values.append((p.name, p.default))
                    if p.default is EMPTY:
                        self.required.setdefault(p.name, []).append(" -> ".join(here))
        thread = callee.kind in (CallKind.SYNC, CallKind.SYNC_GEN) and (
            self.config.sync_to_thread
            if marker.sync_to_thread is None
            else marker.sync_to_thread
        )
        limit = (
            (marker._limit_token, marker.max_concurrency)
            if marker.max_concurrency is not None
            else None
        )
        node = Node(
            index=len(self.nodes),
            call=callee.call,
            original=original,
            kind=callee.kind,
            name=callee.name,
            key=key,
            use_cache=marker.use_cache and memo is not None,
            memo=node_memo,
            deps=tuple(deps),
            args=tuple(args),
            values=tuple(values),
            contexts=tuple(contexts),
            scope_args=tuple(scope_args),
            scopes=visible,
            thread=thread,
            limit=limit,
            path=here,
        )
        self.nodes.append(node)
        return node.index

    def _context_type(self, annotation: Any) -> type | None:
        if not isinstance(annotation, type):
            return None
        for ctx in self.config.context_types:
            if issubclass(annotation, ctx):
                return ctx
        return None

    def _check_context(
        self, ctx: type, memo: int, path: tuple[str, ...], owner: str, param: str
    ) -> None:
        from ._container import Container

        if memo == MEMO_APP and ctx is not Container:
            msg = (
                f"app-scoped {owner} takes {ctx.__qualname__} by type, which belongs"
                " to a scope"
            )
            raise LifetimeError(
                msg,
                path=path,
                callable=owner,
                parameter=param,
                hint="make the dependency request-scoped, or pass what it needs"
                ' through an app-scoped Depends(..., scope="app")',
            )


def compile_plan(
    root: Callable[..., Any],
    *,
    overrides: Mapping[Any, Callable[..., Any]],
    context_types: tuple[type, ...],
    sync_to_thread: bool,
    introspected: dict[Any, Callee],
    dependencies: tuple[Dependency, ...] = (),
    origin: object = None,
    sequential: bool | None = None,
) -> Plan[Any]:
    """Compile *root* into a :class:`Plan`; raise a ``DependencyError`` if broken."""
    compiler = _Compiler(
        _Config(overrides, context_types, sync_to_thread, introspected)
    )
    # The walk recurses once per level of the graph: make room for deep chains (pure
    # Python recursion costs no C stack on 3.11+), and report what is still too deep.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        compiler.root(root, dependencies)
    except RecursionError:
        msg = f"the dependency graph of {qualname(root)} is too deep to compile"
        raise DeclarationError(
            msg,
            path=(qualname(root),),
            callable=qualname(root),
            hint=f"chains longer than about {_RECURSION_LIMIT // 8} dependencies are"
            " not supported; flatten the chain",
        ) from None
    finally:
        sys.setrecursionlimit(limit)
    nodes = tuple(compiler.nodes)
    _check_permits(nodes, qualname(root))
    _check_indirect_lifetimes(nodes)
    dependents: list[list[int]] = [[] for _ in nodes]
    for node in nodes:
        for dep in node.deps:
            dependents[dep].append(node.index)
    return Plan(
        root=root,
        nodes=nodes,
        dependents=tuple(tuple(d) for d in dependents),
        required_values={k: tuple(v) for k, v in compiler.required.items()},
        context_types=frozenset(compiler.contexts),
        has_app_nodes=any(n.memo == MEMO_APP for n in nodes),
        dependencies=dependencies,
        origin=origin,
        sequential=sequential,
        state=PlanState(_may_overlap(nodes)),
    )


def _check_indirect_lifetimes(nodes: tuple[Node, ...]) -> None:
    """A request-scoped ``yield`` dependency may not reach a function-scoped one
    through plain dependencies either: that one is torn down when the call returns,
    before its indirect dependent (Semantics 6). FastAPI checks direct edges only."""
    below: list[Node | None] = [None] * len(nodes)
    for node in nodes:
        found: Node | None = None
        for dep in node.deps:
            child = nodes[dep]
            if child.memo == MEMO_RUN and child.kind.is_generator:
                found = child
            else:
                found = below[dep]
            if found is not None:
                break
        below[node.index] = found
        if (
            found is not None
            and node.memo == MEMO_SCOPE
            and node.kind.is_generator
            and not node.alias
        ):
            msg = (
                f"request-scoped yield dependency {node.name} depends (through"
                f" {' -> '.join(found.path[len(node.path) - 1 :]) or found.name})"
                f' on {found.name}, which has scope="function" and is torn down first'
            )
            raise LifetimeError(
                msg,
                path=found.path,
                callable=node.name,
                hint=f'give {node.name} scope="function" too, or drop'
                f' scope="function" from {found.name}',
            )


def _check_permits(nodes: tuple[Node, ...], root: str) -> None:
    """A yield dependency holds its ``max_concurrency`` permit until its teardown,
    after the call: a call that needs more permits of one declaration than it has
    would wait for itself forever."""
    by_token: dict[int, list[Node]] = {}
    for node in nodes:
        if node.limit is not None:
            by_token.setdefault(id(node.limit[0]), []).append(node)
    for users in by_token.values():
        total = users[0].limit[1] if users[0].limit is not None else 0
        holders = [n for n in users if n.kind.is_generator]
        if len(holders) > total or (len(holders) == total and len(users) > total):
            msg = (
                f"{root} needs {len(users)} permits of a max_concurrency={total}"
                f" declaration of {users[0].name}, and {len(holders)} of them are"
                " held by yield dependencies until the call's teardown: it would wait"
                " for itself forever"
            )
            raise DeclarationError(
                msg,
                path=users[-1].path,
                callable=users[-1].name,
                hint="raise max_concurrency, let the uses share one cached value"
                " (use_cache=True), or use separate Depends objects",
            )


def _may_overlap(nodes: tuple[Node, ...]) -> bool:
    """Whether two dependencies could run at once: the topological order is not
    unique, i.e. some node does not depend on the one just before it."""
    return any(
        nodes[i - 1].index not in nodes[i].deps for i in range(1, len(nodes) - 1)
    )
