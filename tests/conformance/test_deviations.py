# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Documented deviations: FastAPI gives X, anydepends gives Y (docs/semantics.md).

Each test asserts both sides explicitly, so a change on either side shows up:
FastAPI's behaviour is pinned, and anydepends' documented behaviour is checked in
the sequential and the concurrent container.
"""

import functools
from typing import Annotated, Any

import anyio

from .harness import (
    FASTAPI,
    Builder,
    Case,
    ErrorResponse,
    Log,
    Markers,
    Outcome,
    anydepends_markers,
    logged,
    run_anydepends,
    run_fastapi,
)


async def _anydepends_both(build: Builder) -> list[Outcome]:
    m = anydepends_markers()
    return [
        await run_anydepends(build(m), sequential=True),
        await run_anydepends(build(m), sequential=False),
    ]


# --------------------------------------------- the re-walk quirk (docs/semantics.md §3)


def case_rewalk(m: Markers) -> Case:
    log = Log()

    def child() -> str:
        log("child", "call")
        return "child"

    def gen_child() -> Any:
        with logged(log, "gen_child"):
            yield "gen_child"

    async def parent(
        c: str = m.Depends(child, use_cache=False),
        g: str = m.Depends(gen_child, use_cache=False),
    ) -> str:
        log("parent", "call")
        return f"parent({c},{g})"

    def grandparent(p: str = m.Depends(parent)) -> str:
        log("grandparent", "call")
        return "gp:" + p

    def root(
        a: str = m.Depends(parent),
        b: str = m.Depends(parent),
        c: str = m.Depends(grandparent),
    ) -> Any:
        log("root", "call")
        return [a, b, c]

    return Case(root, log)


async def test_cache_hit_never_reruns_its_subtree() -> None:
    """FastAPI walks a cached dependency's subtree again on every declaration, so
    ``use_cache=False`` descendants of the cached ``parent`` run (and a ``yield``
    one is entered and torn down) three times though ``parent`` runs once.
    anydepends (docs/semantics.md §3, deviation) runs them once: a cache hit never
    re-runs its subtree. Results are the same."""
    expected = ["parent(child,gen_child)"] * 2 + ["gp:parent(child,gen_child)"]
    fa = await run_fastapi(case_rewalk(FASTAPI))
    assert fa.exc is None, fa
    assert fa.result == expected
    assert fa.log.count(("parent", "call")) == 1
    assert fa.log.count(("child", "call")) == 3
    assert fa.log.count(("gen_child", "enter")) == 3
    assert fa.log.count(("gen_child", "exit")) == 3

    for ad in await _anydepends_both(case_rewalk):
        assert ad.exc is None, ad
        assert ad.result == expected, ad
        assert ad.log.count(("parent", "call")) == 1, ad
        assert ad.log.count(("child", "call")) == 1, ad
        assert ad.log.count(("gen_child", "enter")) == 1, ad
        assert ad.log.count(("gen_child", "exit")) == 1, ad
        assert ad.log.count(("grandparent", "call")) == 1, ad


# ------------------------------------ repeated scopes three levels down (Sem. 9)


def case_repeated_scope(m: Markers) -> Case:
    log = Log()

    def leaf(ss: m.SecurityScopes) -> Any:
        log("leaf", "call", tuple(ss.scopes))
        return [ss.scopes, ss.scope_str]

    def c(ss: m.SecurityScopes, lf: Any = m.Depends(leaf)) -> Any:
        log("c", "call", tuple(ss.scopes))
        return {"c": ss.scopes, "leaf": lf}

    def p(x: Any = m.Security(c, scopes=["a"])) -> Any:
        return x

    def root(x: Annotated[Any, m.Security(p, scopes=["a"])]) -> Any:
        return x

    return Case(root, log)


async def test_scopes_never_repeat() -> None:
    """``Security(p, ["a"])`` → ``Security(c, ["a"])`` → ``Depends(leaf)``: FastAPI
    0.165 gives ``c`` ``['a']`` but ``leaf`` ``['a', 'a']`` (``"a a"``), because a
    child's parent list is concatenated without de-duplication. anydepends
    (docs/semantics.md §9, deviation) never repeats a scope: ``leaf`` sees
    ``['a']``."""
    fa = await run_fastapi(case_repeated_scope(FASTAPI))
    assert fa.exc is None, fa
    assert fa.result == {"c": ["a"], "leaf": [["a", "a"], "a a"]}

    for ad in await _anydepends_both(case_repeated_scope):
        assert ad.exc is None, ad
        assert ad.result == {"c": ["a"], "leaf": [["a"], "a"]}, ad
        assert ad.log == [("leaf", "call", ("a",)), ("c", "call", ("a",))], ad


# ----------------------------------------------- swallowed exceptions (Sem. 5)


def case_swallow(scope: str | None) -> Builder:
    def build(m: Markers) -> Case:
        log = Log()

        def swallow() -> Any:
            log("swallow", "enter")
            try:
                yield "s"
            except ValueError as exc:
                log("swallow", "swallowed", type(exc).__name__)

        def root(s: str = m.Depends(swallow, scope=scope)) -> Any:
            log("root", "raise")
            raise ValueError("boom")

        return Case(root, log)

    return build


async def test_swallowing_yield_dependency_is_an_error_in_every_scope() -> None:
    """A ``yield`` dependency that catches the exception and neither re-raises nor
    raises another: FastAPI raises ``FastAPIError("Response not awaited...")`` in
    request scope and an accidental ``UnboundLocalError`` in function scope.
    anydepends (docs/semantics.md §5) makes it an error in every scope: the caller
    gets an exception, never a normal return."""
    fastapi_errors = {
        None: ("FastAPIError", "Response not awaited."),
        "function": ("UnboundLocalError", "cannot access local variable 'response'"),
    }
    for scope, (name, message) in fastapi_errors.items():
        fa = await run_fastapi(case_swallow(scope)(FASTAPI))
        assert fa.exc is not None, fa
        assert type(fa.exc).__name__ == name, fa
        assert str(fa.exc).startswith(message), fa
        assert ("swallow", "swallowed", "ValueError") in fa.log

        for ad in await _anydepends_both(case_swallow(scope)):
            assert ad.exc is not None, ad
            assert ad.log == [
                ("swallow", "enter"),
                ("root", "raise"),
                ("swallow", "swallowed", "ValueError"),
            ], ad


# ------------------------------------------------ missing values (Public API)


def case_missing_values(m: Markers) -> Case:
    log = Log()

    def gen() -> Any:
        with logged(log, "gen"):
            yield "g"

    def needs_q(q: int) -> int:
        log("needs_q", "call")
        return q

    def root(g: str = m.Depends(gen), n: int = m.Depends(needs_q), *, z: int) -> Any:
        log("root", "call")
        return [g, n, z]

    return Case(root, log)


async def test_missing_values_fail_before_anything_runs() -> None:
    """Required values missing in two places: FastAPI enters the ``yield``
    dependency, collects both input errors (422, ``q`` then ``z``) and throws
    ``RequestValidationError`` into the generator. anydepends (Public API,
    ``values``) fails before any dependency runs, with one ``DependencyError``
    naming every missing value."""
    from anydepends import DependencyError

    fa = await run_fastapi(case_missing_values(FASTAPI))
    assert isinstance(fa.exc, ErrorResponse), fa
    assert fa.exc.status == 422
    assert [e["loc"] for e in fa.exc.body["detail"]] == [["query", "q"], ["query", "z"]]
    assert [e[:3] for e in fa.log] == [
        ("gen", "enter"),
        ("gen", "exit", "RequestValidationError"),
    ]

    for ad in await _anydepends_both(case_missing_values):
        assert isinstance(ad.exc, DependencyError), ad
        assert "'q'" in str(ad.exc) or " q" in str(ad.exc), ad
        assert "'z'" in str(ad.exc) or " z" in str(ad.exc), ad
        assert ad.log == [], ad


# ------------------------------------------- compile-time errors (Sem. 1, 2)


def case_depends_without_annotation(m: Markers) -> Case:
    log = Log()

    def dep() -> str:
        log("dep", "call")
        return "dep"

    def root(d: str = m.Depends(dep), x=m.Depends()) -> Any:
        return [d, x]

    return Case(root, log)


def case_positional_only(m: Markers) -> Case:
    log = Log()

    def dep() -> str:
        log("dep", "call")
        return "dep"

    def posonly(a: int, /) -> int:
        log("posonly", "call")
        return a

    def root(d: str = m.Depends(dep), p: int = m.Depends(posonly)) -> Any:
        return [d, p]

    return Case(root, log, values={"a": 1})


def case_variadic(m: Markers) -> Case:
    log = Log()

    def dep() -> str:
        log("dep", "call")
        return "dep"

    def variadic(*args: Any, **kwargs: Any) -> int:
        log("variadic", "call")
        return len(args) + len(kwargs)

    def root(d: str = m.Depends(dep), v: int = m.Depends(variadic)) -> Any:
        return [d, v]

    return Case(root, log, values={"args": 1, "kwargs": 2})


async def test_broken_declarations_fail_at_compile_time() -> None:
    """Declarations FastAPI accepts at registration and fails on per request --
    ``Depends()`` without an annotation (``typing.Any``: 422 for ``args``/``kwargs``),
    a positional-only parameter (``TypeError``) -- and ``*args``/``**kwargs`` (query
    inputs in FastAPI) are compile-time ``DependencyError``s in anydepends
    (docs/semantics.md §1 and §2): nothing runs, not even the valid sibling."""
    from anydepends import DependencyError

    fa = await run_fastapi(case_depends_without_annotation(FASTAPI))
    assert isinstance(fa.exc, ErrorResponse), fa
    assert [e["loc"] for e in fa.exc.body["detail"]] == [
        ["query", "args"],
        ["query", "kwargs"],
    ]
    fa = await run_fastapi(case_positional_only(FASTAPI))
    assert isinstance(fa.exc, TypeError), fa
    assert "positional-only" in str(fa.exc)
    fa = await run_fastapi(case_variadic(FASTAPI))
    assert fa.exc is None and fa.result == ["dep", 2], fa

    for build in (case_depends_without_annotation, case_positional_only, case_variadic):
        for ad in await _anydepends_both(build):
            assert isinstance(ad.exc, DependencyError), ad
            assert ad.log == [], ad


def case_annotated_and_default(m: Markers) -> Case:
    log = Log()

    def a() -> str:
        log("a", "call")
        return "a"

    def b() -> str:
        log("b", "call")
        return "b"

    def root(x: Annotated[str, m.Depends(a)] = m.Depends(b)) -> Any:
        return x

    return Case(root, log)


def case_self_cycle(m: Markers) -> Case:
    log = Log()

    def loop(x: Any = None) -> str:
        return "never"

    # ``loop`` depends on itself.
    loop.__defaults__ = (m.Depends(loop),)

    def root(x: str = m.Depends(loop)) -> Any:
        return x

    return Case(root, log)


async def test_both_refuse_conflicting_markers_and_cycles() -> None:
    """``Annotated[..., Depends(a)] = Depends(b)`` and a dependency cycle are refused
    by both before anything runs: FastAPI at registration (``AssertionError``,
    ``RecursionError``), anydepends at compile time with a ``DependencyError``
    (docs/semantics.md §1 and §12)."""
    from anydepends import DependencyError

    fa = await run_fastapi(case_annotated_and_default(FASTAPI))
    assert isinstance(fa.exc, AssertionError), fa
    assert "Cannot specify `Depends` in `Annotated` and default value" in str(fa.exc)
    fa = await run_fastapi(case_self_cycle(FASTAPI))
    assert isinstance(fa.exc, RecursionError), fa

    for build in (case_annotated_and_default, case_self_cycle):
        for ad in await _anydepends_both(build):
            assert isinstance(ad.exc, DependencyError), ad
            assert ad.log == [], ad


# ------------------------------------------------------ concurrency (Sem. 4)


def case_handshake(m: Markers, *, blocking: bool) -> Case:
    log = Log()
    first_started = anyio.Event()
    second_started = anyio.Event()

    async def first() -> str:
        log("first", "start")
        first_started.set()
        if blocking:
            await second_started.wait()
        log("first", "end")
        return "first"

    async def second() -> str:
        log("second", "start")
        second_started.set()
        if blocking:
            await first_started.wait()
        log("second", "end")
        return "second"

    async def root(a: str = m.Depends(first), b: str = m.Depends(second)) -> Any:
        return [a, b]

    return Case(root, log)


async def test_independent_async_dependencies_overlap() -> None:
    """FastAPI resolves strictly one after another (first ends before second
    starts), and so does ``Container(sequential=True)``. The default container runs
    independent async dependencies concurrently (docs/semantics.md §4): two
    dependencies that each wait for the other to have started both complete."""
    fa = await run_fastapi(case_handshake(FASTAPI, blocking=False))
    sequential_log = [
        ("first", "start"),
        ("first", "end"),
        ("second", "start"),
        ("second", "end"),
    ]
    assert fa.exc is None and fa.result == ["first", "second"], fa
    assert fa.log == sequential_log

    m = anydepends_markers()
    seq = await run_anydepends(case_handshake(m, blocking=False), sequential=True)
    assert seq.exc is None and seq.result == ["first", "second"], seq
    assert seq.log == sequential_log

    # The timeout only keeps a broken build from hanging the suite; the handshake
    # itself (each waits for the other's start event) is the proof of overlap.
    with anyio.fail_after(30):
        conc = await run_anydepends(case_handshake(m, blocking=True), sequential=False)
    assert conc.exc is None and conc.result == ["first", "second"], conc
    assert {e[0] for e in conc.log[:2]} == {"first", "second"}, conc
    assert all(e[1] == "start" for e in conc.log[:2]), conc


def case_failure_while_sibling_runs(m: Markers, *, concurrent: bool) -> Case:
    log = Log()
    waiting_started = anyio.Event()
    raised = OSError("failed while a sibling runs")

    async def opened() -> Any:
        with logged(log, "opened"):
            yield "opened"

    async def waiting(o: str = m.Depends(opened)) -> str:
        log("waiting", "start")
        waiting_started.set()
        if concurrent:
            await anyio.Event().wait()  # only cancellation ends this
        log("waiting", "end")
        return "waited"

    async def failing() -> str:
        if concurrent:
            await waiting_started.wait()
        log("failing", "raise")
        raise raised

    async def root(w: str = m.Depends(waiting), f: str = m.Depends(failing)) -> Any:
        log("root", "call")
        return [w, f]

    case = Case(root, log)
    case.raised = raised  # type: ignore[attr-defined]
    return case


async def test_a_failure_cancels_running_siblings() -> None:
    """FastAPI never has a sibling running when a dependency fails (it resolves one
    at a time), and neither has ``Container(sequential=True)``. Concurrently
    (docs/semantics.md §5) a sibling still running is cancelled, the ``yield``
    dependency whose setup completed sees the original exception, and the caller
    gets the original exception object, not an ``ExceptionGroup``."""
    from anydepends import Container

    fa = await run_fastapi(case_failure_while_sibling_runs(FASTAPI, concurrent=False))
    expected_log = [
        ("opened", "enter"),
        ("waiting", "start"),
        ("waiting", "end"),
        ("failing", "raise"),
        ("opened", "exit", "OSError", "failed while a sibling runs"),
    ]
    assert fa.exc_summary == ("OSError", "failed while a sibling runs"), fa
    assert fa.log == expected_log

    m = anydepends_markers()
    seq = await run_anydepends(
        case_failure_while_sibling_runs(m, concurrent=False), sequential=True
    )
    assert seq.exc_summary == fa.exc_summary, seq
    assert seq.log == expected_log, seq

    case = case_failure_while_sibling_runs(m, concurrent=True)
    with anyio.fail_after(30):  # a safety net against a hang, not a proof
        async with Container() as container:
            try:
                await container.call(case.root)
            except OSError as exc:
                assert exc is case.raised  # type: ignore[attr-defined]
            else:  # pragma: no cover
                raise AssertionError("no exception")
    assert case.log.entries == [
        ("opened", "enter"),
        ("waiting", "start"),
        ("failing", "raise"),
        ("opened", "exit", "OSError", "failed while a sibling runs"),
    ]


# ------------------------ keyword-bound partial arguments (docs/semantics.md §2)


def case_partial_keyword_bound(m: Markers) -> Case:
    log = Log()

    def scaled(factor: int, n: int) -> int:
        log("scaled", "call", factor)
        return factor * n

    def root(a: int = m.Depends(functools.partial(scaled, factor=3))) -> Any:
        return {"a": a}

    return Case(root, log, values={"n": 2, "factor": 5})


async def test_partial_keyword_bound_arguments_are_never_injected() -> None:
    """A keyword bound by ``functools.partial`` stays in FastAPI's signature as a
    default, so a request input of that name replaces it (``partial(scaled,
    factor=3)`` with ``factor=5`` computes ``5 * n``). anydepends never injects a
    bound argument (docs/semantics.md §2): the partial keeps ``factor=3``."""
    fastapi = await run_fastapi(case_partial_keyword_bound(FASTAPI))
    assert fastapi.result == {"a": 10}
    assert fastapi.log == [("scaled", "call", 5)]
    for outcome in await _anydepends_both(case_partial_keyword_bound):
        assert outcome.result == {"a": 6}, outcome
        assert outcome.log == [("scaled", "call", 3)], outcome


# ------------------------- a request generator reaching a function-scoped one (S. 7)


def case_indirect_function_scope(m: Markers) -> Case:
    log = Log()

    async def fgen() -> Any:
        with logged(log, "fgen"):
            yield "f"

    def plain(f: str = m.Depends(fgen, scope="function")) -> str:
        log("plain", "call")
        return "plain+" + f

    async def rgen(p: str = m.Depends(plain)) -> Any:
        with logged(log, "rgen"):
            yield "rgen+" + p

    def root(r: str = m.Depends(rgen)) -> Any:
        log("root", "call")
        return r

    return Case(root, log)


async def test_a_request_generator_may_not_reach_a_function_scoped_one() -> None:
    """FastAPI's scope rule looks at direct children only: a request-scoped generator
    over a plain dependency over a ``scope="function"`` generator is accepted, and the
    function-scoped one is torn down *before* the generator that indirectly uses it.
    anydepends checks the whole path and refuses the graph before anything runs."""
    fastapi = await run_fastapi(case_indirect_function_scope(FASTAPI))
    assert fastapi.result == "rgen+plain+f"
    assert fastapi.log.index(("fgen", "exit")) < fastapi.log.index(("rgen", "exit"))
    for outcome in await _anydepends_both(case_indirect_function_scope):
        assert outcome.exc is not None, outcome
        assert type(outcome.exc).__name__ == "LifetimeError", outcome
        assert outcome.log == [], outcome
