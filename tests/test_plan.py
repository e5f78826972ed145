"""The compiler: one root callable -> an immutable, indexed Plan (docs/semantics.md).

Compiling needs no running event loop and no entered container: it only reads
declarations.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest

from anydepends import (
    CallKind,
    Container,
    CycleError,
    DeclarationError,
    Depends,
    LifetimeError,
    Node,
    Plan,
    Scope,
    Security,
    SecurityScopes,
)

from . import synthetic
from .helpers import Pager, add, async_value, sync_value


def by_name(plan: Plan[Any]) -> dict[str, Node]:
    """Nodes keyed by their short name (the last dotted part)."""
    return {node.name.rsplit(".", 1)[-1]: node for node in plan.nodes}


def short(plan: Plan[Any]) -> list[str]:
    """The short names of a plan's nodes, in plan order."""
    return [node.name.rsplit(".", 1)[-1] for node in plan.nodes]


# module-level graph (Annotated markers need names resolvable in module globals) ----


async def leaf() -> int:
    return 1


async def left(x: Annotated[int, Depends(leaf)]) -> int:
    return x + 1


async def right(x: int = Depends(leaf)) -> int:
    return x + 2


async def diamond(a: Annotated[int, Depends(left)], b: int = Depends(right)) -> int:
    return a + b


def test_nodes_are_topological_with_the_root_last() -> None:
    """Nodes come dependencies first, in FastAPI's depth-first declaration order, and
    the root is the last node."""
    plan = Container().compile(diamond)
    assert short(plan) == ["leaf", "left", "right", "diamond"]
    assert plan.root_node is plan.nodes[-1]
    assert plan.root is diamond
    for node in plan.nodes:
        assert all(dep < node.index for dep in node.deps)
        assert plan.nodes[node.index] is node


def test_a_shared_dependency_is_one_node() -> None:
    """A dependency declared twice with the same cache key is one node (a diamond)."""
    nodes = by_name(Container().compile(diamond))
    assert nodes["left"].deps == nodes["right"].deps == (nodes["leaf"].index,)
    assert nodes["diamond"].deps == (nodes["left"].index, nodes["right"].index)
    assert nodes["diamond"].args == (
        ("a", nodes["left"].index),
        ("b", nodes["right"].index),
    )


def test_dependents_index() -> None:
    """``plan.dependents[i]`` lists the nodes that depend on node ``i``."""
    plan = Container().compile(diamond)
    nodes = by_name(plan)
    assert plan.dependents[nodes["leaf"].index] == (
        nodes["left"].index,
        nodes["right"].index,
    )
    assert plan.dependents[plan.root_node.index] == ()


def test_node_fields() -> None:
    """A node exposes its name, kind, key, lifetime, deps and the path it was met at."""
    nodes = by_name(Container().compile(diamond))
    node = nodes["leaf"]
    assert node.call is leaf
    assert node.original is leaf
    assert node.kind is CallKind.ASYNC
    assert node.key == (leaf, (), "")
    assert str(node.lifetime) == "request"
    assert node.use_cache is True
    assert node.deps == ()
    assert [p.rsplit(".", 1)[-1] for p in node.path] == ["diamond", "left", "leaf"]
    root = nodes["diamond"]
    assert root.key is None
    assert str(root.lifetime) == "function"


def test_plan_is_immutable() -> None:
    """Plans and nodes are frozen: the scheduler can share them between calls."""
    plan = Container().compile(diamond)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.nodes = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.nodes[0].call = sync_value  # type: ignore[misc]


def test_compile_is_cached_per_root() -> None:
    """``compile`` returns the same plan object for the same root."""
    container = Container()
    assert container.compile(diamond) is container.compile(diamond)
    assert container.compile(left) is not container.compile(diamond)


def test_compile_is_cached_per_override_set() -> None:
    """Each override set gets its own cached plans; restoring an override set finds
    its plan again instead of recompiling."""
    container = Container()
    plain = container.compile(diamond)

    async def fake_leaf() -> int:
        return 100

    with container.override(leaf, fake_leaf):
        overridden = container.compile(diamond)
        assert overridden is not plain
        assert container.compile(diamond) is overridden
        assert by_name(overridden)["fake_leaf"].original is leaf
    assert container.compile(diamond) is plain
    with container.override(leaf, fake_leaf):
        assert container.compile(diamond) is overridden


# -- cache keys (docs/semantics.md §3) ----------------------------------------------


def test_depends_and_security_without_scopes_share_a_key() -> None:
    """``Depends(f)`` and ``Security(f)`` (no scopes) are the same node."""

    async def root(a: int = Depends(leaf), b: int = Security(leaf)) -> None: ...

    assert short(Container().compile(root)) == ["leaf", "root"]


def test_own_scopes_make_separate_keys() -> None:
    """Own scopes alone make a declaration scope-sensitive (FastAPI 0.165)."""

    async def root(
        a: int = Depends(leaf),
        b: int = Security(leaf, scopes=["s1"]),
        c: int = Security(leaf, scopes=["s2"]),
        d: int = Security(leaf, scopes=["s1"]),
    ) -> None: ...

    plan = Container().compile(root)
    keys = [node.key for node in plan.nodes[:-1]]
    assert keys == [(leaf, (), ""), (leaf, ("s1",), ""), (leaf, ("s2",), "")]


def test_scopes_in_the_key_are_sorted_and_unique() -> None:
    """The scopes element of the key is the sorted set of visible scopes."""

    def user(ss: SecurityScopes) -> list[str]:
        return ss.scopes

    async def root(
        a: Any = Security(user, scopes=["b", "a"]),
        b: Any = Security(user, scopes=["a", "b"]),
    ) -> None: ...

    plan = Container().compile(root)
    assert [node.key for node in plan.nodes[:-1]] == [(user, ("a", "b"), "")]
    assert plan.nodes[0].scopes == ("b", "a")


def test_scopes_count_only_when_used() -> None:
    """A node under a ``Security`` parent keeps an empty scopes key unless it (or a
    descendant) uses scopes, so it shares the entry with a direct use (0.123+)."""

    async def parent(x: int = Depends(leaf)) -> int:
        return x

    async def root(
        a: int = Depends(leaf), p: int = Security(parent, scopes=["r"])
    ) -> None: ...

    plan = Container().compile(root)
    assert short(plan) == ["leaf", "parent", "root"]
    assert by_name(plan)["parent"].key == (parent, ("r",), "")


def test_scope_use_propagates_up_from_descendants() -> None:
    """A node whose descendant declares ``SecurityScopes`` uses scopes itself."""

    def inner(ss: SecurityScopes) -> list[str]:
        return ss.scopes

    async def outer(x: Any = Depends(inner)) -> Any:
        return x

    async def root(
        a: Any = Security(outer, scopes=["a"]),
        b: Any = Security(outer, scopes=["b"]),
        c: Any = Depends(outer),
    ) -> None: ...

    plan = Container().compile(root)
    assert short(plan).count("outer") == 3
    assert short(plan).count("inner") == 3
    visible = sorted(node.scopes for node in plan.nodes if node.name.endswith("inner"))
    assert visible == [(), ("a",), ("b",)]


def test_visible_scopes_accumulate_without_repeats() -> None:
    """Visible scopes are the parent's followed by each new own scope; a scope never
    appears twice (docs/semantics.md §9, a deviation from FastAPI's ['a', 'a'])."""

    def leaf_scopes(ss: SecurityScopes) -> list[str]:
        return ss.scopes

    async def mid(x: Any = Security(leaf_scopes, scopes=["y", "x"])) -> Any:
        return x

    async def c(x: Any = Depends(leaf_scopes)) -> Any:
        return x

    async def p(x: Any = Security(c, scopes=["a"])) -> Any:
        return x

    async def root(
        m: Any = Security(mid, scopes=["x", "z"]), q: Any = Security(p, scopes=["a"])
    ) -> None: ...

    plan = Container().compile(root)
    scopes = {node.path[-2:]: node.scopes for node in plan.nodes[:-1]}
    leaf_under_mid = next(v for k, v in scopes.items() if k[0].endswith("mid"))
    assert leaf_under_mid == ("x", "z", "y")
    leaf_under_c = next(v for k, v in scopes.items() if k[0].endswith(".c"))
    assert leaf_under_c == ("a",)


def test_siblings_do_not_share_scopes() -> None:
    """Scopes pass to descendants, never between siblings."""

    def s(ss: SecurityScopes) -> list[str]:
        return ss.scopes

    def t(ss: SecurityScopes) -> list[str]:
        return ss.scopes

    async def dep3(
        a: Any = Security(s, scopes=["scope1"]), b: Any = Security(t, scopes=["scope2"])
    ) -> None: ...

    async def root(x: Any = Security(dep3, scopes=["scope3"])) -> None: ...

    nodes = by_name(Container().compile(root))
    assert nodes["s"].scopes == ("scope3", "scope1")
    assert nodes["t"].scopes == ("scope3", "scope2")


def test_lifetime_is_part_of_the_key() -> None:
    """The lifetime element: the explicit scope, else "request" for generators, else
    empty; a plain function under three lifetimes is three nodes."""

    async def gen() -> AsyncIterator[int]:
        yield 1

    async def root(
        a: int = Depends(leaf),
        b: int = Depends(leaf, scope="function"),
        c: int = Depends(leaf, scope="request"),
        d: int = Depends(gen),
        e: int = Depends(gen, scope="request"),
        f: int = Depends(gen, scope="function"),
    ) -> None: ...

    plan = Container().compile(root)
    keys = [node.key for node in plan.nodes[:-1]]
    assert keys == [
        (leaf, (), ""),
        (leaf, (), "function"),
        (leaf, (), "request"),
        (gen, (), "request"),
        (gen, (), "function"),
    ]
    lifetimes = [str(node.lifetime) for node in plan.nodes[:-1]]
    assert lifetimes == ["request", "function", "request", "request", "function"]


def test_depends_without_callable_shares_the_key_of_the_class() -> None:
    """``p: Pager = Depends()``, ``Annotated[Pager, Depends()]`` and ``Depends(Pager)``
    are one dependency."""

    def root(a: Pager = Depends(), b: Any = Depends(Pager)) -> None: ...

    assert short(Container().compile(root)) == ["Pager", "root"]


def test_bound_methods_share_a_key_partials_do_not() -> None:
    """Equal callables share a key: bound methods of one object compare equal;
    partials compare by identity."""

    class Service:
        def get(self) -> int:
            return 1

    svc = Service()
    p1 = functools.partial(add, 1, 2)
    p2 = functools.partial(add, 1, 2)

    async def root(
        a: int = Depends(svc.get),
        b: int = Depends(svc.get),
        c: int = Depends(p1),
        d: int = Depends(p1),
        e: int = Depends(p2),
    ) -> None: ...

    assert len(Container().compile(root).nodes) == 4


def test_use_cache_false_is_a_node_per_declaration() -> None:
    """Every ``use_cache=False`` declaration is its own node, always called; a cached
    declaration after it reads the value it seeded (it is ordered after it)."""

    async def root(
        a: int = Depends(leaf, use_cache=False),
        b: int = Depends(leaf),
        c: int = Depends(leaf, use_cache=False),
    ) -> None: ...

    plan = Container().compile(root)
    uncached1, cached, uncached2 = plan.nodes[:-1]
    assert (uncached1.use_cache, cached.use_cache, uncached2.use_cache) == (
        False,
        True,
        False,
    )
    assert uncached1.index in cached.deps
    assert uncached1.key == cached.key == uncached2.key


def test_required_values_and_where_they_are_needed() -> None:
    """Plain parameters without a default are required values, with every place that
    needs them; ones with defaults are not required."""

    async def dep(token: str, limit: int = 10) -> str:
        return token

    async def root(token: str, job: str, d: str = Depends(dep)) -> None: ...

    plan = Container().compile(root)
    assert set(plan.required_values) == {"token", "job"}
    assert len(plan.required_values["token"]) == 2
    assert any("dep" in where for where in plan.required_values["token"])
    assert "limit" not in plan.required_values


def test_context_types_needed_by_the_plan() -> None:
    """Parameters annotated with a context type (or a subclass) are injected by type
    and listed in ``plan.context_types``."""

    async def dep(s: Scope, c: Container) -> None: ...

    async def root(d: None = Depends(dep)) -> None: ...

    plan = Container().compile(root)
    assert plan.context_types == frozenset({Scope, Container})
    assert plan.required_values == {}


def test_thread_choice_is_compiled() -> None:
    """Sync dependables go to a thread by default; ``Container(sync_to_thread=False)``
    and ``Depends(sync_to_thread=...)`` choose per container and per declaration;
    async ones never do."""

    def s1() -> int:
        return 1

    def s2() -> int:
        return 2

    def g() -> Iterator[int]:
        yield 3

    async def root(
        a: int = Depends(s1),
        b: int = Depends(s2, sync_to_thread=False),
        c: int = Depends(g),
        d: str = Depends(async_value),
    ) -> None: ...

    threaded = by_name(Container().compile(root))
    assert (threaded["s1"].thread, threaded["s2"].thread, threaded["g"].thread) == (
        True,
        False,
        True,
    )
    assert threaded["async_value"].thread is False

    async def root2(
        a: int = Depends(s1), b: int = Depends(s2, sync_to_thread=True)
    ) -> None: ...

    inline = by_name(Container(sync_to_thread=False).compile(root2))
    assert (inline["s1"].thread, inline["s2"].thread) == (False, True)


def test_max_concurrency_is_per_declaration_object() -> None:
    """The limit is keyed by the declaration object: one object reused shares a limit,
    two equal declarations do not."""
    shared = Depends(leaf, max_concurrency=2)

    async def a(x: int = shared) -> None: ...

    async def b(x: int = Depends(leaf, max_concurrency=2)) -> None: ...

    la = Container().compile(a).nodes[0].limit
    la2 = Container().compile(a).nodes[0].limit
    lb = Container().compile(b).nodes[0].limit
    assert la is not None and lb is not None and la2 is not None
    assert la[1] == lb[1] == 2
    assert la[0] is la2[0]
    assert la[0] is not lb[0]


def test_overrides_keep_the_original_key_and_lifetime() -> None:
    """An override's node runs the replacement with the replacement's own deps, but
    keeps the original's key, ``use_cache`` and lifetime (docs/semantics.md §8)."""

    async def original(x: int = Depends(leaf)) -> int:
        return x

    def replacement(y: str = Depends(sync_value)) -> Iterator[str]:
        yield y

    async def root(
        a: int = Depends(original, use_cache=False, scope="function"),
    ) -> None: ...

    container = Container()
    container.overrides[original] = replacement
    nodes = by_name(container.compile(root))
    assert "leaf" not in nodes
    node = nodes["replacement"]
    assert node.call is replacement
    assert node.original is original
    assert node.key == (original, (), "function")
    assert node.use_cache is False
    assert str(node.lifetime) == "function"
    assert node.kind is CallKind.SYNC_GEN


def test_overrides_are_not_chained() -> None:
    """With ``a -> b`` and ``b -> c`` overridden, a declaration of ``a`` runs ``b``."""

    async def a() -> str:
        return "a"

    async def b() -> str:
        return "b"

    async def c() -> str:
        return "c"

    async def root(x: str = Depends(a)) -> None: ...

    container = Container()
    container.overrides[a] = b
    container.overrides[b] = c
    assert by_name(container.compile(root))["b"].call is b


def test_app_nodes_are_flagged() -> None:
    """``has_app_nodes`` tells the scheduler whether app-scoped memos are involved."""

    async def root(x: int = Depends(leaf, scope="app")) -> None: ...

    plan = Container().compile(root)
    assert plan.has_app_nodes
    assert str(plan.nodes[0].lifetime) == "app"
    assert not Container().compile(diamond).has_app_nodes


def test_a_sync_root_and_a_class_root() -> None:
    """The root may be sync, or a class."""
    plan = Container().compile(Pager)
    assert plan.root_node.kind is CallKind.SYNC
    assert plan.required_values == {}


# -- compile-time errors (details of messages are in test_errors) ----------------------


def test_cycles_are_compile_time_errors() -> None:
    """A dependency that (indirectly) depends on itself is a CycleError."""

    def a(b: Any = None) -> Any:
        return b

    def b(a_: Any = Depends(a)) -> Any:
        return a_

    a.__defaults__ = (Depends(b),)

    def root(x: Any = Depends(a)) -> None: ...

    with pytest.raises(CycleError):
        Container().compile(root)


def test_self_dependency_is_a_cycle() -> None:
    """A function that depends on itself is a CycleError, not a RecursionError."""

    def me(x: Any = None) -> Any:
        return x

    me.__defaults__ = (Depends(me),)

    async def root(x: Any = Depends(me)) -> None: ...

    with pytest.raises(CycleError):
        Container().compile(root)


def test_the_same_callable_twice_on_a_path_with_other_keys_is_still_a_cycle() -> None:
    """Different declarations of one callable on one path still loop forever."""

    def me(x: Any = None) -> Any:
        return x

    me.__defaults__ = (Depends(me, use_cache=False),)

    async def root(x: Any = Depends(me)) -> None: ...

    with pytest.raises(CycleError):
        Container().compile(root)


def test_root_generator_is_an_error() -> None:
    """The root cannot yield: only dependencies have a teardown."""

    async def root() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(DeclarationError):
        Container().compile(root)


def test_lifetime_errors() -> None:
    """Nothing app-scoped depends on something shorter; a request-scoped generator
    cannot depend on an explicit ``scope="function"`` dependency
    (docs/semantics.md §7)."""

    async def app_dep(x: int = Depends(leaf)) -> int:
        return x

    async def root1(a: int = Depends(app_dep, scope="app")) -> None: ...

    with pytest.raises(LifetimeError):
        Container().compile(root1)

    async def gen(x: int = Depends(leaf, scope="function")) -> AsyncIterator[int]:
        yield x

    async def root2(g: int = Depends(gen)) -> None: ...

    with pytest.raises(LifetimeError):
        Container().compile(root2)


def test_allowed_lifetime_combinations() -> None:
    """Allowed (FastAPI): a function-scoped generator over anything, a non-generator
    over a function-scoped dependency, app over app, request over app."""

    async def fgen(x: int = Depends(leaf, scope="function")) -> AsyncIterator[int]:
        yield x

    async def plain(x: int = Depends(leaf, scope="function")) -> int:
        return x

    async def app_parent(x: int = Depends(leaf, scope="app")) -> int:
        return x

    async def root(
        a: int = Depends(fgen, scope="function"),
        b: int = Depends(plain),
        c: int = Depends(app_parent, scope="app"),
        d: int = Depends(plain, scope="request"),
    ) -> None: ...

    Container().compile(root)


def test_app_scoped_dependable_cannot_take_call_values() -> None:
    """An app-scoped dependable cannot take a per-call value (it outlives the call)
    nor a per-scope context object; defaults and the Container are fine."""

    async def needs_value(token: str) -> str:
        return token

    async def root1(x: str = Depends(needs_value, scope="app")) -> None: ...

    with pytest.raises(LifetimeError):
        Container().compile(root1)

    async def needs_scope(s: Scope) -> None: ...

    async def root2(x: None = Depends(needs_scope, scope="app")) -> None: ...

    with pytest.raises(LifetimeError):
        Container().compile(root2)

    async def fine(c: Container, limit: int = 3) -> int:
        return limit

    async def root3(x: int = Depends(fine, scope="app")) -> None: ...

    plan = Container().compile(root3)
    assert plan.required_values == {}


def test_unhashable_callable_with_use_cache_is_an_error() -> None:
    """An unhashable callable cannot key the cache: a compile-time error unless it is
    declared with ``use_cache=False``."""

    @dataclasses.dataclass
    class Unhashable:
        n: int = 0

        def __call__(self) -> int:
            return self.n

    async def root1(x: int = Depends(Unhashable())) -> None: ...

    with pytest.raises(DeclarationError):
        Container().compile(root1)

    async def root2(x: int = Depends(Unhashable(), use_cache=False)) -> None: ...

    Container().compile(root2)


# -- paths (nodes keep a parent site; the path is built when read) ------------------


def test_paths_are_where_the_walk_first_met_each_node() -> None:
    """``node.path`` names every dependable from the root to the node, along the
    first way FastAPI's depth-first, declaration-order walk reaches it (checked on a
    300-node DAG against a separate walk)."""
    *_, root = synthetic.layered(300, width=12)
    plan = Container().compile(root)
    expected: dict[Any, tuple[str, ...]] = {}
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while stack:
        call, above = stack.pop()
        if call in expected:
            continue
        here = (*above, f"synthetic.{call.__qualname__}")
        expected[call] = here
        markers = call.__defaults__ or ()
        stack.extend((marker.dependency, here) for marker in reversed(markers))
    assert {node.call: node.path for node in plan.nodes} == expected
    assert plan.root_node.path == ("synthetic.root",)
