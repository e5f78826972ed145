# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Overrides: ``container.overrides`` / ``container.override`` against FastAPI's
``app.dependency_overrides`` (docs/semantics.md §8).

Each case runs anydepends with the overrides set through the mapping (sequential
and concurrent containers) and through nested ``container.override`` context
managers (concurrent container).
"""

import itertools
from typing import Annotated, Any

from .harness import (
    FASTAPI,
    Case,
    Log,
    Markers,
    Outcome,
    anydepends_markers,
    assert_same,
    check,
    conformance_case,
    logged,
    run_fastapi,
    seeded_by_an_uncached_call,
)


@conformance_case
def case_any_depth(m: Markers) -> Case:
    log = Log()

    def leaf(q: int) -> str:
        log("leaf", "call")
        return f"leaf{q}"

    async def mid(lf: str = m.Depends(leaf)) -> str:
        log("mid", "call")
        return "mid+" + lf

    def top() -> str:
        log("top", "call")
        return "top"

    def root(a: str = m.Depends(mid), b: str = m.Depends(top)) -> Any:
        return [a, b]

    def leaf_repl() -> str:
        log("leaf_repl", "call")
        return "LEAF"

    async def top_repl(k: int) -> str:
        log("top_repl", "call")
        return f"TOP{k}"

    # The original leaf's required ``q`` is not needed once it is overridden.
    return Case(root, log, values={"k": 3}, overrides={leaf: leaf_repl, top: top_repl})


async def test_overrides_apply_at_any_depth() -> None:
    """An override replaces its original wherever it is declared (directly under the
    root or deeper), and the original's own values (``q``) are no longer needed."""
    await check(
        case_any_depth,
        expect=["mid+LEAF", "TOP3"],
        expect_log=[("leaf_repl", "call"), ("mid", "call"), ("top_repl", "call")],
    )


@conformance_case
def case_not_chained(m: Markers) -> Case:
    log = Log()

    def x1() -> str:
        log("x1", "call")
        return "x1"

    def x2() -> str:
        log("x2", "call")
        return "x2"

    def x3() -> str:
        log("x3", "call")
        return "x3"

    def root(a: str = m.Depends(x1), b: str = m.Depends(x2)) -> Any:
        return [a, b]

    return Case(root, log, overrides={x1: x2, x2: x3})


async def test_overrides_are_not_chained() -> None:
    """With ``x1 → x2`` and ``x2 → x3``, a declaration of ``x1`` runs ``x2`` (not
    ``x3``) and a declaration of ``x2`` runs ``x3``."""
    await check(
        case_not_chained,
        expect=["x2", "x3"],
        expect_log=[("x2", "call"), ("x3", "call")],
    )


@conformance_case
def case_replacement_signature_decides(m: Markers) -> Case:
    log = Log()

    def x3(z: int = 0) -> str:
        log("x3", "call")
        return f"x3:{z}"

    def x2() -> str:
        log("x2", "call")
        return "x2"

    def original_child() -> str:
        log("original_child", "call")
        return "child"

    def a(c: str = m.Depends(original_child), q: int = 0) -> str:
        log("a", "call")
        return f"a:{c}:{q}"

    async def over_a(k: int, d: str = m.Depends(x2)) -> str:
        log("over_a", "call")
        return f"over_a:{k}:{d}"

    def root(x: str = m.Depends(a)) -> Any:
        return x

    return Case(
        root,
        log,
        values={"k": 7, "q": 1, "z": 5},
        overrides={a: over_a, x2: x3},
    )


async def test_the_replacement_signature_decides_dependencies_and_values() -> None:
    """The replacement's own signature decides: its values (``k``) and its own
    dependencies are resolved (and those are overridden in turn: ``x2 → x3``), the
    original's children and values are not used."""
    await check(
        case_replacement_signature_decides,
        expect="over_a:7:x3:5",
        expect_log=[("x3", "call"), ("over_a", "call")],
    )


@conformance_case
def case_cache_from_original(m: Markers) -> Case:
    log = Log()
    counter = itertools.count(1)

    def f() -> int:
        log("f", "call")  # overridden: never called
        return 0

    def plus_100() -> int:
        value = next(counter) * 100
        log("plus_100", "call", value)
        return value

    def root(
        a: int = m.Depends(f, use_cache=False),
        b: int = m.Depends(f, use_cache=False),
        c: int = m.Depends(f),
    ) -> Any:
        return [a, b, c]

    return Case(root, log, overrides={f: plus_100})


async def test_use_cache_and_key_come_from_the_original() -> None:
    """``[nocache, nocache, cached]`` declarations of an overridden ``f`` with a
    replacement returning +100 per call give ``[100, 200, 100]``: ``use_cache`` and
    the cache key are the original declaration's. (Concurrently, the cached
    declaration gets whichever uncached value was stored first.)"""
    await check(
        case_cache_from_original,
        expect=[100, 200, 100],
        expect_log=[("plus_100", "call", 100), ("plus_100", "call", 200)],
        concurrent=seeded_by_an_uncached_call("plus_100"),
    )


@conformance_case
def case_key_is_the_original(m: Markers) -> Case:
    log = Log()

    def a() -> str:
        return "a"  # overridden

    def b() -> str:
        return "b"  # overridden

    def r() -> str:
        log("r", "call")
        return "r"

    async def nested(x: str = m.Depends(a)) -> str:
        log("nested", "call")
        return "nested:" + x

    def root(
        x: str = m.Depends(a),
        y: str = m.Depends(b),
        z: str = m.Depends(r),
        n: str = m.Depends(nested),
    ) -> Any:
        return [x, y, z, n]

    return Case(root, log, overrides={a: r, b: r})


async def test_one_replacement_for_two_originals_is_two_entries() -> None:
    """The cache key is the original's: one replacement for ``a`` and ``b`` runs
    once for ``a`` (also when ``a`` is declared again deeper), once for ``b``, and
    once more for a direct ``Depends(r)``."""
    await check(
        case_key_is_the_original,
        expect=["r", "r", "r", "nested:r"],
        expect_log=[
            ("r", "call"),
            ("r", "call"),
            ("r", "call"),
            ("nested", "call"),
        ],
    )


@conformance_case
def case_skip_original_children(m: Markers) -> Case:
    log = Log()

    def child() -> str:
        log("child", "call")
        return "child"

    async def mid(c: str = m.Depends(child)) -> str:
        log("mid", "call")
        return "mid:" + c

    def elsewhere(c: str = m.Depends(child)) -> str:
        log("elsewhere", "call")
        return "elsewhere:" + c

    def mid_repl() -> str:
        log("mid_repl", "call")
        return "MID"

    def root(x: str = m.Depends(mid), y: str = m.Depends(elsewhere)) -> Any:
        return [x, y]

    return Case(root, log, overrides={mid: mid_repl})


async def test_overriding_mid_skips_its_original_children() -> None:
    """Overriding ``mid`` means ``mid``'s original children are not resolved for
    it; another declaration of the same child still is."""
    await check(
        case_skip_original_children,
        expect=["MID", "elsewhere:child"],
        expect_log=[("mid_repl", "call"), ("child", "call"), ("elsewhere", "call")],
    )


@conformance_case
def case_kind_changes(m: Markers) -> Case:
    log = Log()

    async def async_orig() -> str:
        log("async_orig", "call")
        return "async"

    def plain_orig() -> str:
        log("plain_orig", "call")
        return "plain"

    def scoped_orig() -> str:
        log("scoped_orig", "call")
        return "scoped"

    async def gen_orig() -> Any:
        log("gen_orig", "enter")
        yield "gen"

    def sync_repl() -> str:
        log("sync_repl", "call")
        return "SYNC"

    async def agen_repl(s: str = m.Depends(async_orig)) -> Any:
        with logged(log, "agen_repl"):
            yield "AGEN+" + s

    def gen_repl() -> Any:
        with logged(log, "gen_repl"):
            yield "GEN"

    async def plain_repl() -> str:
        log("plain_repl", "call")
        return "PLAIN"

    async def rgen() -> Any:
        with logged(log, "rgen"):
            yield "r"

    def root(
        r: str = m.Depends(rgen),
        a: str = m.Depends(async_orig),
        p: str = m.Depends(plain_orig),
        s: str = m.Depends(scoped_orig, scope="function"),
        g: str = m.Depends(gen_orig),
    ) -> Any:
        log("root", "call")
        return [r, a, p, s, g]

    return Case(
        root,
        log,
        overrides={
            async_orig: sync_repl,
            plain_orig: agen_repl,
            scoped_orig: gen_repl,
            gen_orig: plain_repl,
        },
    )


async def test_the_kind_may_change() -> None:
    """A replacement may be of another kind: async → sync, plain → async generator
    (entered once, torn down after the root; request scope), plain with
    ``scope="function"`` → generator (torn down with the function scope, before the
    request-scoped ``rgen``), generator → plain coroutine (nothing to tear down)."""
    await check(
        case_kind_changes,
        expect=["r", "SYNC", "AGEN+SYNC", "GEN", "PLAIN"],
        expect_log=[
            ("rgen", "enter"),
            ("sync_repl", "call"),
            ("agen_repl", "enter"),
            ("gen_repl", "enter"),
            ("plain_repl", "call"),
            ("root", "call"),
            ("gen_repl", "exit"),
            ("agen_repl", "exit"),
            ("rgen", "exit"),
        ],
    )


@conformance_case
def case_override_sees_original_scopes(m: Markers) -> Case:
    log = Log()

    def orig(ss: m.SecurityScopes) -> Any:
        log("orig", "call")
        return ["orig", ss.scopes]

    def repl(ss: m.SecurityScopes) -> Any:
        log("repl", "call", tuple(ss.scopes))
        return [ss.scopes, ss.scope_str]

    def repl_child(ss: m.SecurityScopes) -> Any:
        log("repl_child", "call", tuple(ss.scopes))
        return ss.scopes

    def plain_orig() -> str:
        return "plain"  # overridden

    def plain_repl(c: Any = m.Security(repl_child, scopes=["c"])) -> Any:
        log("plain_repl", "call")
        return c

    def parent(
        o: Any = m.Security(orig, scopes=["b"]),
        p: Any = m.Security(plain_orig, scopes=["p"]),
    ) -> Any:
        return [o, p]

    def root(x: Annotated[Any, m.Security(parent, scopes=["a"])]) -> Any:
        return x

    return Case(root, log, overrides={orig: repl, plain_orig: plain_repl})


async def test_overrides_see_the_original_scopes() -> None:
    """A replacement receives the original declaration's accumulated scopes
    (``["a","b"]``), and its own children accumulate on top of them
    (``["a","p","c"]``)."""
    await check(
        case_override_sees_original_scopes,
        expect=[[["a", "b"], "a b"], ["a", "p", "c"]],
        expect_log=[
            ("repl", "call", ("a", "b")),
            ("repl_child", "call", ("a", "p", "c")),
            ("plain_repl", "call"),
        ],
    )


@conformance_case
def case_bound_method_key(m: Markers) -> Case:
    log = Log()

    class Service:
        def get(self) -> str:
            log("Service.get", "call")
            return "real"

    svc = Service()

    def fake() -> str:
        log("fake", "call")
        return "fake"

    def root(a: str = m.Depends(svc.get), b: str = m.Depends(svc.get)) -> Any:
        return [a, b]

    # A third, equal bound-method object is the key.
    return Case(root, log, overrides={svc.get: fake})


async def test_override_keyed_by_a_bound_method() -> None:
    """Overrides are looked up with dict equality: an override keyed by
    ``svc.get`` (another, equal bound-method object) replaces ``Depends(svc.get)``."""
    await check(
        case_bound_method_key,
        expect=["fake", "fake"],
        expect_log=[("fake", "call")],
    )


def _switchable(m: Markers) -> tuple[Case, Any, Any, Any]:
    log = Log()

    def dep() -> str:
        log("dep", "call")
        return "dep"

    def first() -> str:
        log("first", "call")
        return "first"

    async def second() -> str:
        log("second", "call")
        return "second"

    def root(d: str = m.Depends(dep)) -> Any:
        return d

    return Case(root, log), dep, first, second


async def test_nested_override_restores_previous_state() -> None:
    """``container.override`` is nestable and restores the previous state: inside
    the inner block the inner replacement wins, then the outer one again, then the
    original; each state gives what FastAPI gives with the same overrides, and the
    mapping reflects it."""
    from anydepends import Container

    expected = {}
    for label in ("none", "first", "second"):
        case, dep, first, second = _switchable(FASTAPI)
        if label != "none":
            case.overrides = {dep: {"first": first, "second": second}[label]}
        expected[label] = await run_fastapi(case, label=f"fastapi[{label}]")
    assert [expected[k].result for k in ("none", "first", "second")] == [
        "dep",
        "first",
        "second",
    ]

    case, dep, first, second = _switchable(anydepends_markers())

    async def run(label: str) -> Outcome:
        start = len(case.log.entries)
        outcome = Outcome(f"anydepends[{label}]")
        outcome.result = await container.call(case.root)
        outcome.log = case.log.entries[start:]
        return outcome

    async with Container() as container:
        assert_same(expected["none"], await run("none"))
        with container.override(dep, first):
            assert container.overrides[dep] is first
            assert_same(expected["first"], await run("first"))
            with container.override(dep, second):
                assert container.overrides[dep] is second
                assert_same(expected["second"], await run("second"))
            assert container.overrides[dep] is first
            assert_same(expected["first"], await run("first again"))
        assert dep not in container.overrides
        assert_same(expected["none"], await run("none again"))
        container.overrides[dep] = second
        assert_same(expected["second"], await run("mapping"))
        del container.overrides[dep]
        assert_same(expected["none"], await run("mapping removed"))


@conformance_case
def case_scope_using_replacement(m: Markers) -> Case:
    log = Log()

    def orig() -> Any:
        log("orig", "call")  # overridden: never called
        return []

    def repl(ss: m.SecurityScopes) -> Any:
        log("repl", "call", tuple(ss.scopes))
        return ss.scopes

    def mid(x: Any = m.Depends(orig)) -> Any:
        log("mid", "call")
        return x

    def root(x: Any = m.Security(mid, scopes=["a"])) -> Any:
        return x

    return Case(root, log, overrides={orig: repl})


async def test_a_scope_using_replacement_of_a_scopeless_original() -> None:
    """The original uses no scopes, its replacement declares ``SecurityScopes``: the
    replacement still receives the scopes accumulated at the original's place
    (``["a"]`` from a ``Security(mid, ["a"])`` ancestor)."""
    await check(
        case_scope_using_replacement,
        expect=["a"],
        expect_log=[("repl", "call", ("a",)), ("mid", "call")],
    )


@conformance_case
def case_scope_using_replacement_key(m: Markers) -> Case:
    log = Log()

    def orig() -> Any:
        log("orig", "call")  # overridden: never called
        return []

    def repl(ss: m.SecurityScopes) -> Any:
        log("repl", "call", tuple(ss.scopes))
        return ss.scopes

    def mid(x: Any = m.Depends(orig)) -> Any:
        log("mid", "call")
        return x

    def root(
        a: Any = m.Security(mid, scopes=["a"]),
        b: Any = m.Depends(orig),
        c: Any = m.Security(mid, scopes=["b"]),
    ) -> Any:
        return [a, b, c]

    return Case(root, log, overrides={orig: repl})


async def test_the_key_of_a_scope_using_replacement_is_the_original_key() -> None:
    """The cache key comes from the original declaration: the original uses no
    scopes, so its key has no scope part and the scope-using replacement runs once,
    with the scopes of the first place it is needed (``["a"]``); later places reuse
    that value. (Concurrently, the first place is whichever needs it first.)"""

    def one_shared_value(outcome: Outcome) -> None:
        a, b, c = outcome.result
        assert a == b == c and a in (["a"], [], ["b"]), outcome
        assert [e[0] for e in outcome.log].count("repl") == 1, outcome
        assert outcome.log.count(("mid", "call")) == 2, outcome

    await check(
        case_scope_using_replacement_key,
        expect=[["a"], ["a"], ["a"]],
        expect_log=[("repl", "call", ("a",)), ("mid", "call"), ("mid", "call")],
        concurrent=one_shared_value,
    )


@conformance_case
def case_override_annotation_dependency(m: Markers) -> Case:
    log = Log()

    class Settings:
        def __init__(self) -> None:
            log("Settings", "init")
            self.name = "real"

    class FakeSettings:
        def __init__(self, name: str = "fake") -> None:
            log("FakeSettings", "init")
            self.name = name

    def uses(s: Annotated[Settings, m.Depends()]) -> str:
        return "uses:" + s.name

    def root(s: Settings = m.Depends(), u: str = m.Depends(uses)) -> Any:
        return [s.name, u]

    return Case(root, log, values={"name": "given"}, overrides={Settings: FakeSettings})


async def test_override_of_a_dependency_taken_from_the_annotation() -> None:
    """``Depends()`` whose callable comes from the annotation is overridden by that
    class: the replacement class is constructed once (one cache entry) with its own
    parameters."""
    await check(
        case_override_annotation_dependency,
        expect=["given", "uses:given"],
        expect_log=[("FakeSettings", "init")],
    )
