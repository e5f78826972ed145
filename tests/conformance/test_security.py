# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Security scopes: accumulation, ``SecurityScopes`` and the scope part of the cache
key (docs/semantics.md §3 and §9).

The repeated-scope deviation (FastAPI's ``['a', 'a']`` three levels down) is in
``test_deviations.py``; overrides seeing the original's scopes in
``test_overrides.py``.
"""

from typing import Annotated, Any

from .harness import Case, Log, Markers, check, conformance_case


@conformance_case
def case_accumulation(m: Markers) -> Case:
    log = Log()

    def leaf(ss: m.SecurityScopes) -> Any:
        log("leaf", "call", tuple(ss.scopes))
        return {"scopes": ss.scopes, "str": ss.scope_str}

    def mid(
        ss: m.SecurityScopes,
        lf: Any = m.Security(leaf, scopes=["y", "x"]),
    ) -> Any:
        log("mid", "call", tuple(ss.scopes))
        return {"scopes": ss.scopes, "str": ss.scope_str, "leaf": lf}

    def root(
        ss: m.SecurityScopes,
        md: Annotated[Any, m.Security(mid, scopes=["x", "z"])],
    ) -> Any:
        return {"root": [ss.scopes, ss.scope_str], "mid": md}

    return Case(root, log)


async def test_scopes_accumulate_top_down() -> None:
    """A node sees its parent's visible scopes followed by each own scope not
    already there: ``Security(mid, ["x","z"])`` → ``Security(leaf, ["y","x"])`` gives
    mid ``["x","z"]`` / ``"x z"`` and leaf ``["x","z","y"]`` / ``"x z y"``; the root's
    own ``SecurityScopes`` is empty."""
    await check(
        case_accumulation,
        expect={
            "root": [[], ""],
            "mid": {
                "scopes": ["x", "z"],
                "str": "x z",
                "leaf": {"scopes": ["x", "z", "y"], "str": "x z y"},
            },
        },
        expect_log=[("leaf", "call", ("x", "z", "y")), ("mid", "call", ("x", "z"))],
    )


@conformance_case
def case_siblings_dont_share(m: Markers) -> Case:
    log = Log()

    def s1(ss: m.SecurityScopes) -> Any:
        log("s1", "call", tuple(ss.scopes))
        return ss.scopes

    def s2(ss: m.SecurityScopes) -> Any:
        log("s2", "call", tuple(ss.scopes))
        return ss.scopes

    def dep3(
        ss: m.SecurityScopes,
        a: Any = m.Security(s1, scopes=["scope1"]),
        b: Any = m.Security(s2, scopes=["scope2"]),
    ) -> Any:
        log("dep3", "call", tuple(ss.scopes))
        return {"dep3": ss.scopes, "s1": a, "s2": b}

    def root(d: Any = m.Security(dep3, scopes=["scope3"])) -> Any:
        return d

    return Case(root, log)


async def test_sibling_scopes_do_not_propagate() -> None:
    """Scopes never pass between siblings: under ``Security(dep3, ["scope3"])``,
    ``Security(s1, ["scope1"])`` sees ``["scope3","scope1"]`` and
    ``Security(s2, ["scope2"])`` sees ``["scope3","scope2"]``."""
    await check(
        case_siblings_dont_share,
        expect={
            "dep3": ["scope3"],
            "s1": ["scope3", "scope1"],
            "s2": ["scope3", "scope2"],
        },
    )


@conformance_case
def case_depends_children_inherit(m: Markers) -> Case:
    log = Log()

    def who(ss: m.SecurityScopes) -> Any:
        log("who", "call", tuple(ss.scopes))
        return ss.scopes

    def parent(w: Any = m.Depends(who)) -> Any:
        log("parent", "call")
        return w

    def root(
        direct: Any = m.Depends(who),
        under: Any = m.Security(parent, scopes=["x"]),
        again: Any = m.Depends(who),
    ) -> Any:
        return [direct, under, again]

    return Case(root, log)


async def test_plain_depends_children_inherit_scopes() -> None:
    """A plain ``Depends`` child sees its parent's accumulated scopes: the same
    callable sees ``["x"]`` under a ``Security(..., ["x"])`` parent and ``[]`` when
    used directly, and (using scopes) is cached separately: two calls, not three."""
    await check(
        case_depends_children_inherit,
        expect=[[], ["x"], []],
        expect_log=[
            ("who", "call", ()),
            ("who", "call", ("x",)),
            ("parent", "call"),
        ],
    )


# ----------------------------------------------------- the cache key (section 4)


@conformance_case
def case_security_without_scopes_shares(m: Markers) -> Case:
    log = Log()

    def f() -> str:
        log("f", "call")
        return "f"

    def root(a: str = m.Depends(f), b: str = m.Security(f)) -> Any:
        return [a, b]

    return Case(root, log)


async def test_security_without_scopes_shares_the_depends_entry() -> None:
    """``Security(f)`` with no scopes is exactly ``Depends(f)``: one cache entry,
    one call."""
    await check(
        case_security_without_scopes_shares,
        expect=["f", "f"],
        expect_log=[("f", "call")],
    )


@conformance_case
def case_own_scopes_make_the_key_scoped(m: Markers) -> Case:
    log = Log()

    def f() -> str:
        log("f", "call")
        return "f"

    def root(
        a: str = m.Depends(f),
        b: str = m.Security(f, scopes=["s1"]),
        c: str = m.Security(f, scopes=["s2"]),
        d: str = m.Security(f, scopes=["s1"]),
    ) -> Any:
        return [a, b, c, d]

    return Case(root, log)


async def test_own_scopes_alone_make_a_declaration_scope_sensitive() -> None:
    """``Depends(f)``, ``Security(f, ["s1"])``, ``Security(f, ["s2"])`` with ``f`` not
    using scopes are three entries (own scopes alone count), and a second
    ``Security(f, ["s1"])`` reuses the ``{s1}`` entry: three calls."""
    await check(
        case_own_scopes_make_the_key_scoped,
        expect=["f", "f", "f", "f"],
        expect_log=[("f", "call"), ("f", "call"), ("f", "call")],
    )


@conformance_case
def case_scope_set_is_sorted(m: Markers) -> Case:
    log = Log()

    def g(ss: m.SecurityScopes) -> Any:
        log("g", "call", tuple(ss.scopes))
        return ss.scopes

    def root(
        a: Any = m.Security(g, scopes=["a", "b"]),
        b: Any = m.Security(g, scopes=["b", "a"]),
        c: Any = m.Security(g, scopes=["c"]),
        d: Any = m.Depends(g),
    ) -> Any:
        return [a, b, c, d]

    return Case(root, log)


async def test_key_uses_the_sorted_scope_set() -> None:
    """For ``g`` taking ``SecurityScopes``: ``Security(g, ["a","b"])`` and
    ``Security(g, ["b","a"])`` share the ``{a,b}`` entry (the second gets the first's
    value, ``["a","b"]``), ``["c"]`` and ``Depends(g)`` are two more: three calls."""
    await check(
        case_scope_set_is_sorted,
        expect=[["a", "b"], ["a", "b"], ["c"], []],
        expect_log=[
            ("g", "call", ("a", "b")),
            ("g", "call", ("c",)),
            ("g", "call", ()),
        ],
    )


@conformance_case
def case_descendant_uses_scopes(m: Markers) -> Case:
    log = Log()

    def inner(ss: m.SecurityScopes) -> Any:
        log("inner", "call", tuple(ss.scopes))
        return ss.scopes

    def outer(i: Any = m.Depends(inner)) -> Any:
        log("outer", "call")
        return i

    def root(
        a: Any = m.Security(outer, scopes=["a"]),
        b: Any = m.Security(outer, scopes=["b"]),
        c: Any = m.Depends(outer),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_a_descendant_using_scopes_makes_the_key_scoped() -> None:
    """``outer`` has no scopes of its own but its child ``inner`` takes
    ``SecurityScopes``: ``Security(outer, ["a"])``, ``Security(outer, ["b"])`` and
    ``Depends(outer)`` are three entries, outer and inner run three times each."""
    await check(
        case_descendant_uses_scopes,
        expect=[["a"], ["b"], []],
        expect_log=[
            ("inner", "call", ("a",)),
            ("outer", "call"),
            ("inner", "call", ("b",)),
            ("outer", "call"),
            ("inner", "call", ()),
            ("outer", "call"),
        ],
    )


@conformance_case
def case_unscoped_shared_under_security(m: Markers) -> Case:
    log = Log()

    def shared() -> str:
        log("shared", "call")
        return "db"

    def parent(s: str = m.Depends(shared)) -> str:
        log("parent", "call")
        return s + "+parent"

    def other(ss: m.SecurityScopes, s: str = m.Depends(shared)) -> Any:
        log("other", "call", tuple(ss.scopes))
        return [s, ss.scopes]

    def root(
        direct: str = m.Depends(shared),
        p: str = m.Security(parent, scopes=["read"]),
        o: Any = m.Security(other, scopes=["write"]),
    ) -> Any:
        return [direct, p, o]

    return Case(root, log)


async def test_unscoped_dependency_ignores_inherited_scopes() -> None:
    """(FastAPI 0.123+) A dependency that uses no scopes and has no descendant that
    does keeps an empty scope part in its key: ``shared`` used directly, under
    ``Security(parent, ["read"])`` and under a scope-using ``Security(other,
    ["write"])`` is one entry, one call."""
    await check(
        case_unscoped_shared_under_security,
        expect=["db", "db+parent", ["db", ["write"]]],
        expect_log=[
            ("shared", "call"),
            ("parent", "call"),
            ("other", "call", ("write",)),
        ],
    )


@conformance_case
def case_same_scopes_from_different_parents(m: Markers) -> Case:
    log = Log()

    def leaf(ss: m.SecurityScopes) -> Any:
        log("leaf", "call", tuple(ss.scopes))
        return ss.scopes

    def p1(lf: Any = m.Depends(leaf)) -> Any:
        log("p1", "call")
        return lf

    def p2(lf: Any = m.Security(leaf, scopes=["a"])) -> Any:
        log("p2", "call")
        return lf

    def p3(lf: Any = m.Security(leaf, scopes=["b", "a"])) -> Any:
        log("p3", "call")
        return lf

    def root(
        a: Any = m.Security(p1, scopes=["a"]),
        b: Any = m.Depends(p2),
        c: Any = m.Security(p3, scopes=["b"]),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_key_uses_accumulated_scopes_not_the_path() -> None:
    """The key's scope part is the accumulated set, wherever it came from: ``leaf``
    reached with ``{a}`` from an inherited scope and from its own scope is one entry;
    ``{a, b}`` (accumulated as ``["b","a"]``) is another. Two calls."""
    await check(
        case_same_scopes_from_different_parents,
        expect=[["a"], ["a"], ["b", "a"]],
        expect_log=[
            ("leaf", "call", ("a",)),
            ("p1", "call"),
            ("p2", "call"),
            ("leaf", "call", ("b", "a")),
            ("p3", "call"),
        ],
    )


@conformance_case
def case_security_generators(m: Markers) -> Case:
    log = Log()

    async def token(ss: m.SecurityScopes) -> Any:
        log("token", "enter", ss.scope_str)
        yield ss.scope_str
        log("token", "exit", ss.scope_str)

    async def user(t: str = m.Security(token, scopes=["me"])) -> str:
        log("user", "call")
        return "user:" + t

    def root(
        u: str = m.Security(user, scopes=["items"]),
        t: str = m.Security(token, scopes=["items", "me"]),
    ) -> Any:
        log("root", "call")
        return [u, t]

    return Case(root, log)


async def test_scoped_yield_dependency() -> None:
    """A ``yield`` dependency taking ``SecurityScopes`` gets its accumulated scopes
    and is cached by its scope set: reached with ``["items","me"]`` twice, it is
    entered once and torn down once, after the root."""
    await check(
        case_security_generators,
        expect=["user:items me", "items me"],
        expect_log=[
            ("token", "enter", "items me"),
            ("user", "call"),
            ("root", "call"),
            ("token", "exit", "items me"),
        ],
    )


@conformance_case
def case_security_nocache(m: Markers) -> Case:
    log = Log()

    def g(ss: m.SecurityScopes) -> Any:
        log("g", "call", tuple(ss.scopes))
        return ss.scopes

    def root(
        a: Any = m.Security(g, scopes=["a"], use_cache=False),
        b: Any = m.Security(g, scopes=["a"]),
        c: Any = m.Security(g, scopes=["a"], use_cache=False),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_security_use_cache_false() -> None:
    """``Security(..., use_cache=False)`` always calls and seeds its scoped entry:
    ``[nocache, cached, nocache]`` under ``{a}`` is two calls, the cached
    declaration reusing the seeded value."""
    await check(
        case_security_nocache,
        expect=[["a"], ["a"], ["a"]],
        expect_log=[("g", "call", ("a",)), ("g", "call", ("a",))],
    )


@conformance_case
def case_security_scopes_everywhere(m: Markers) -> Case:
    log = Log()

    class ScopedClass:
        def __init__(self, ss: m.SecurityScopes) -> None:
            log("ScopedClass", "init", tuple(ss.scopes))
            self.scopes = ss.scopes

    class ScopedCall:
        async def __call__(self, ss: m.SecurityScopes) -> Any:
            log("ScopedCall", "call", tuple(ss.scopes))
            return ss.scopes

    class MyScopes(m.SecurityScopes):  # type: ignore[misc,name-defined]
        pass

    def subclassed(ss: MyScopes) -> Any:
        log("subclassed", "call", tuple(ss.scopes))
        return ss.scopes

    def not_scopes() -> str:
        log("not_scopes", "call")
        return "a dependency"

    def root(
        c: Annotated[ScopedClass, m.Security(scopes=["cls"])],
        i: Any = m.Security(ScopedCall(), scopes=["inst"]),
        s: Any = m.Security(subclassed, scopes=["sub"]),
        d: Annotated[m.SecurityScopes, m.Depends(not_scopes)] = None,
    ) -> Any:
        return {"class": c.scopes, "instance": i, "subclass": s, "dep": d}

    return Case(root, log)


async def test_security_scopes_in_classes_instances_and_subclasses() -> None:
    """``SecurityScopes`` is injected into a constructor (``Security()`` taking the
    class from the annotation), into an instance's ``async __call__`` and for a
    subclass annotation; ``Annotated[SecurityScopes, Depends(f)]`` is a dependency
    (the marker wins over the injected type)."""
    await check(
        case_security_scopes_everywhere,
        expect={
            "class": ["cls"],
            "instance": ["inst"],
            "subclass": ["sub"],
            "dep": "a dependency",
        },
        expect_log=[
            ("ScopedClass", "init", ("cls",)),
            ("ScopedCall", "call", ("inst",)),
            ("subclassed", "call", ("sub",)),
            ("not_scopes", "call"),
        ],
    )


@conformance_case
def case_security_scheme_instance_uses_scopes(m: Markers) -> Case:
    from fastapi.security import OAuth2PasswordBearer

    log = Log()

    class Scheme(OAuth2PasswordBearer):
        async def __call__(self) -> str:  # type: ignore[override]
            log("scheme", "call")
            return "token"

    scheme = Scheme(tokenUrl="token")

    def parent(t: str = m.Depends(scheme)) -> str:
        return t

    def root(
        a: str = m.Security(parent, scopes=["read"]), b: str = m.Depends(scheme)
    ) -> Any:
        return [a, b]

    return Case(root, log)


async def test_a_security_scheme_instance_counts_as_using_scopes() -> None:
    """FastAPI >= 0.124 counts a ``SecurityBase`` instance (``OAuth2PasswordBearer``)
    as using scopes: under ``Security(parent, ["read"])`` and used directly it has
    two cache keys, so it is called twice."""
    await check(
        case_security_scheme_instance_uses_scopes,
        expect=["token", "token"],
        expect_log=[("scheme", "call"), ("scheme", "call")],
    )
