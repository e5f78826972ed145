# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Declarations: every way of writing a dependency and every kind of dependable.

docs/semantics.md §1 and §2.
"""

import functools
import importlib.util
import itertools
import threading
from pathlib import Path
from typing import Annotated, Any

from .harness import Case, Log, Markers, Outcome, check, conformance_case

# ------------------------------------------------------------------- markers


@conformance_case
def case_default_vs_annotated(m: Markers) -> Case:
    log = Log()

    def f(n: int) -> int:
        log("f", "call")
        return n * 2

    def root(b: Annotated[int, m.Depends(f)], a: int = m.Depends(f)) -> Any:
        return {"a": a, "b": b}

    return Case(root, log, values={"n": 3})


async def test_default_value_and_annotated_are_one_dependency() -> None:
    """``x = Depends(f)`` and ``x: Annotated[T, Depends(f)]`` declare the same
    dependency: same value, one cache entry, so ``f`` runs once."""
    await check(
        case_default_vs_annotated, expect={"a": 6, "b": 6}, expect_log=[("f", "call")]
    )


@conformance_case
def case_last_marker_wins(m: Markers) -> Case:
    log = Log()

    def a() -> int:
        log("a", "call")
        return 1

    def b() -> int:
        log("b", "call")
        return 2

    def c() -> int:
        log("c", "call")
        return 3

    def root(
        x: Annotated[int, m.Depends(a), m.Depends(b)],
        y: Annotated[Annotated[int, m.Depends(a)], m.Depends(c)],
    ) -> Any:
        return {"x": x, "y": y}

    return Case(root, log)


async def test_last_marker_wins_in_annotated() -> None:
    """In ``Annotated`` the last ``Depends`` wins, also across nested (flattened)
    ``Annotated``; the earlier markers' callables are never called."""
    await check(
        case_last_marker_wins,
        expect={"x": 2, "y": 3},
        expect_log=[("b", "call"), ("c", "call")],
    )


@conformance_case
def case_depends_takes_annotation(m: Markers) -> Case:
    log = Log()

    class Pager:
        def __init__(self, size: int = 10) -> None:
            log("Pager", "init", size)
            self.size = size

    def root(
        p2: Annotated[Pager, m.Depends()],
        p1: Pager = m.Depends(),
        p3: Any = m.Depends(Pager),
    ) -> Any:
        return {"size": p1.size, "same": p1 is p2 and p2 is p3}

    return Case(root, log, values={"size": 5})


async def test_depends_without_callable_uses_the_annotation() -> None:
    """``p: Pager = Depends()``, ``Annotated[Pager, Depends()]`` and
    ``Depends(Pager)`` are one dependency with one cache entry: the constructor runs
    once and all three parameters get the same instance."""
    await check(
        case_depends_takes_annotation,
        expect={"size": 5, "same": True},
        expect_log=[("Pager", "init", 5)],
    )


@conformance_case
def case_annotated_with_plain_default(m: Markers) -> Case:
    log = Log()

    def f() -> str:
        log("f", "call")
        return "from f"

    def root(x: Annotated[str, m.Depends(f)] = "default") -> Any:
        return {"x": x}

    return Case(root, log)


async def test_annotated_depends_ignores_a_plain_default() -> None:
    """``x: Annotated[T, Depends(f)] = "default"``: the dependency is called and the
    plain default is ignored."""
    await check(
        case_annotated_with_plain_default,
        expect={"x": "from f"},
        expect_log=[("f", "call")],
    )


# ------------------------------------------------------- kinds of dependables


@conformance_case
def case_function_kinds(m: Markers) -> Case:
    log = Log()

    def sync_f(n: int) -> int:
        log("sync_f", "call")
        return n + 1

    async def async_f(s: int = m.Depends(sync_f)) -> int:
        log("async_f", "call")
        return s * 10

    def sync_gen(a: int = m.Depends(async_f)) -> Any:
        log("sync_gen", "enter")
        yield a + 1
        log("sync_gen", "exit")

    async def async_gen(g: int = m.Depends(sync_gen)) -> Any:
        log("async_gen", "enter")
        yield g + 1
        log("async_gen", "exit")

    async def root(
        a: int = m.Depends(sync_f),
        b: int = m.Depends(async_f),
        c: int = m.Depends(sync_gen),
        d: int = m.Depends(async_gen),
    ) -> Any:
        log("root", "call")
        return [a, b, c, d]

    return Case(root, log, values={"n": 1})


async def test_sync_async_functions_and_generators() -> None:
    """Sync and async functions, sync and async generators chained together: the
    generators inject their yielded value and run their rest at teardown, each
    callable runs once, and the root may be async."""
    await check(
        case_function_kinds,
        expect=[2, 20, 21, 22],
        expect_log=[
            ("sync_f", "call"),
            ("async_f", "call"),
            ("sync_gen", "enter"),
            ("async_gen", "enter"),
            ("root", "call"),
            ("async_gen", "exit"),
            ("sync_gen", "exit"),
        ],
        partial_order={"async_gen": ["sync_gen"]},
    )


@conformance_case
def case_sync_root(m: Markers) -> Case:
    log = Log()

    async def dep(n: int) -> int:
        log("dep", "call")
        return n

    def root(k: int, d: int = m.Depends(dep)) -> Any:
        log("root", "call")
        return {"k": k, "d": d}

    return Case(root, log, values={"n": 4, "k": 7})


async def test_sync_root_and_root_values() -> None:
    """A sync root gets its own plain parameters from the values, by name, and its
    dependencies' values."""
    await check(
        case_sync_root,
        expect={"k": 7, "d": 4},
        expect_log=[("dep", "call"), ("root", "call")],
    )


@conformance_case
def case_classes(m: Markers) -> Case:
    log = Log()

    def dsn(host: str = "localhost") -> str:
        log("dsn", "call")
        return f"db://{host}"

    class Settings:
        def __init__(self, debug: bool = False, url: str = m.Depends(dsn)) -> None:
            log("Settings", "init")
            self.debug = debug
            self.url = url

    class WithAsyncCall:
        """A class is never a coroutine: the constructor is the dependable."""

        def __init__(self, n: int) -> None:
            log("WithAsyncCall", "init")
            self.n = n

        async def __call__(self) -> int:
            log("WithAsyncCall", "__call__")
            return -1

    def root(
        s: Settings = m.Depends(Settings),
        w: WithAsyncCall = m.Depends(WithAsyncCall),
    ) -> Any:
        return {"debug": s.debug, "url": s.url, "n": w.n, "type": type(w).__name__}

    return Case(root, log, values={"host": "example", "debug": True, "n": 3})


async def test_classes_are_dependables() -> None:
    """A class is a dependable whose constructor parameters are injected (values and
    dependencies); a class with ``async def __call__`` is still just constructed,
    never called."""
    await check(
        case_classes,
        expect={"debug": True, "url": "db://example", "n": 3, "type": "WithAsyncCall"},
        expect_log=[("dsn", "call"), ("Settings", "init"), ("WithAsyncCall", "init")],
    )


@conformance_case
def case_callable_instances(m: Markers) -> Case:
    log = Log()

    def base(n: int) -> int:
        log("base", "call")
        return n

    class SyncCall:
        def __init__(self, k: int) -> None:
            self.k = k

        def __call__(self, b: int = m.Depends(base)) -> int:
            log("SyncCall", "call")
            return b + self.k

    class AsyncCall:
        async def __call__(self, b: int = m.Depends(base), extra: int = 0) -> int:
            log("AsyncCall", "call")
            return b * 100 + extra

    class GenCall:
        def __call__(self, s: int = m.Depends(SyncCall(1000))) -> Any:
            log("GenCall", "enter")
            yield s + 1
            log("GenCall", "exit")

    class AsyncGenCall:
        async def __call__(self, g: int = m.Depends(GenCall())) -> Any:
            log("AsyncGenCall", "enter")
            yield g + 1
            log("AsyncGenCall", "exit")

    async def root(
        a: int = m.Depends(SyncCall(10)),
        b: int = m.Depends(AsyncCall()),
        c: int = m.Depends(AsyncGenCall()),
    ) -> Any:
        log("root", "call")
        return [a, b, c]

    return Case(root, log, values={"n": 2, "extra": 5})


async def test_callable_instances() -> None:
    """Instances are called through their ``__call__``, whether sync, async, a
    generator or an async generator; ``__call__``'s own parameters are injected and
    generator ``__call__``s are torn down after the root."""
    await check(
        case_callable_instances,
        expect=[12, 205, 1004],
        expect_log=[
            ("base", "call"),
            ("SyncCall", "call"),
            ("AsyncCall", "call"),
            ("SyncCall", "call"),
            ("GenCall", "enter"),
            ("AsyncGenCall", "enter"),
            ("root", "call"),
            ("AsyncGenCall", "exit"),
            ("GenCall", "exit"),
        ],
        partial_order={"AsyncGenCall": ["GenCall"]},
    )


@conformance_case
def case_partials(m: Markers) -> Case:
    log = Log()

    def scaled(factor: int, n: int) -> int:
        log("scaled", "call", factor)
        return factor * n

    async def offset(by: int, n: int) -> int:
        log("offset", "call", by)
        return n + by

    async def agen(label: str, n: int) -> Any:
        log("agen", "enter", label)
        yield f"{label}{n}"
        log("agen", "exit", label)

    def root(
        a: int = m.Depends(functools.partial(scaled, 3)),
        b: int = m.Depends(functools.partial(offset, 100)),
        c: str = m.Depends(functools.partial(functools.partial(agen, "x"))),
    ) -> Any:
        log("root", "call")
        return [a, b, c]

    return Case(root, log, values={"n": 2})


async def test_functools_partial() -> None:
    """``functools.partial`` (also nested) of sync, async and async-generator
    functions: positionally bound arguments are not injected, the rest are; a partial
    of an async generator is a ``yield`` dependency."""
    await check(
        case_partials,
        expect=[6, 102, "x2"],
        expect_log=[
            ("scaled", "call", 3),
            ("offset", "call", 100),
            ("agen", "enter", "x"),
            ("root", "call"),
            ("agen", "exit", "x"),
        ],
    )


@conformance_case
def case_wraps(m: Markers) -> Case:
    log = Log()

    def sync_sync(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            log("wrapper", fn.__name__)
            return fn(*args, **kwargs)

        return wrapper

    def async_over_sync(fn: Any) -> Any:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            log("wrapper", fn.__name__)
            return fn(*args, **kwargs)

        return wrapper

    def sync_over_async(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            log("wrapper", fn.__name__)
            return fn(*args, **kwargs)  # a coroutine: awaited by the resolver

        return wrapper

    def async_over_async(fn: Any) -> Any:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            log("wrapper", fn.__name__)
            return await fn(*args, **kwargs)

        return wrapper

    def base(n: int) -> int:
        log("base", "call")
        return n

    @sync_sync
    def s1(b: int = m.Depends(base), k: int = 1) -> int:
        log("s1", "call")
        return b + k

    @async_over_sync
    def s2(b: int = m.Depends(base)) -> int:
        log("s2", "call")
        return b * 10

    @sync_over_async
    async def s3(x: int = m.Depends(s1)) -> int:
        log("s3", "call")
        return x * 100

    @async_over_async
    async def s4(y: int = m.Depends(s2), k: int = 1) -> int:
        log("s4", "call")
        return y + k

    def root(
        a: int = m.Depends(s1),
        b: int = m.Depends(s2),
        c: int = m.Depends(s3),
        d: int = m.Depends(s4),
    ) -> Any:
        return [a, b, c, d]

    return Case(root, log, values={"n": 2, "k": 3})


async def test_functools_wraps_wrappers() -> None:
    """``functools.wraps`` wrappers take the wrapped function's signature (their own
    ``*args, **kwargs`` are not parameters); an async wrapper of a sync function,
    a sync wrapper of an async function and the two plain combinations all work,
    the wrapper is what gets called and its key is the wrapper."""
    await check(
        case_wraps,
        expect=[5, 20, 500, 23],
        expect_log=[
            ("base", "call"),
            ("wrapper", "s1"),
            ("s1", "call"),
            ("wrapper", "s2"),
            ("s2", "call"),
            ("wrapper", "s3"),
            ("s3", "call"),
            ("wrapper", "s4"),
            ("s4", "call"),
        ],
    )


# ---------------------------------------------------------- string annotations

_FUTURE_SOURCE = Path(__file__).with_name("future_dependables.py")


def load_future_module(m: Markers, log: Log) -> Any:
    """A fresh copy of ``future_dependables.py`` with ``M`` and ``LOG`` injected."""
    spec = importlib.util.spec_from_file_location(
        f"_conformance_future_{m.name}_{id(log)}", _FUTURE_SOURCE
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.M = m  # type: ignore[attr-defined]
    module.LOG = log  # type: ignore[attr-defined]
    spec.loader.exec_module(module)
    return module


@conformance_case
def case_string_annotations(m: Markers) -> Case:
    log = Log()
    module = load_future_module(m, log)
    return Case(module.root, log, values={"n": 1, "size": 7, "k": 9})


async def test_string_annotations() -> None:
    """With ``from __future__ import annotations`` every annotation is a string that
    is resolved against the module globals: ``Annotated`` markers, ``Depends()``
    taking a string annotation, ``Security`` and ``SecurityScopes`` all work."""
    await check(
        case_string_annotations,
        expect={
            "d": 4,
            "size": 7,
            "same": True,
            "s": ["read", 2],
            "k": 9,
            "sess": "session",
        },
        expect_log=[
            ("base", "call"),
            ("doubled", "call"),
            ("Pager", "init"),
            ("scoped", "call", ("read",)),
            ("session", "enter"),
            ("root", "call"),
            ("session", "exit"),
        ],
    )


# ------------------------------------------------------------ more declarations


@conformance_case
def case_annotated_alias(m: Markers) -> Case:
    log = Log()

    def get_token(token: str = "anon") -> str:
        log("get_token", "call")
        return "tok:" + token

    Token = Annotated[str, m.Depends(get_token)]

    async def user(t: Token) -> str:
        log("user", "call")
        return "user:" + t

    def perms(t: Token, u: Annotated[str, m.Depends(user)]) -> list[str]:
        log("perms", "call")
        return [t, u]

    def root(t: Token, p: Annotated[list[str], m.Depends(perms)]) -> Any:
        return {"t": t, "p": p}

    return Case(root, log, values={"token": "xyz"})


async def test_an_annotated_alias_is_one_dependency() -> None:
    """An ``Annotated`` alias (``Token = Annotated[str, Depends(get_token)]``) used by
    several dependables is one dependency: ``get_token`` runs once."""
    await check(
        case_annotated_alias,
        expect={"t": "tok:xyz", "p": ["tok:xyz", "user:tok:xyz"]},
        expect_log=[("get_token", "call"), ("user", "call"), ("perms", "call")],
    )


@conformance_case
def case_threads(m: Markers) -> Case:
    log = Log()

    async def loop_thread() -> int:
        return threading.get_ident()

    def sync_f(loop: int = m.Depends(loop_thread)) -> bool:
        return threading.get_ident() != loop

    class Ctor:
        def __init__(self, loop: int = m.Depends(loop_thread)) -> None:
            self.in_worker = threading.get_ident() != loop

    def sync_gen(loop: int = m.Depends(loop_thread)) -> Any:
        log("sync_gen", "setup in worker", threading.get_ident() != loop)
        yield threading.get_ident() != loop
        log("sync_gen", "teardown in worker", threading.get_ident() != loop)

    async def async_f(loop: int = m.Depends(loop_thread)) -> bool:
        return threading.get_ident() != loop

    async def agen(loop: int = m.Depends(loop_thread)) -> Any:
        yield threading.get_ident() != loop
        log("agen", "teardown in worker", threading.get_ident() != loop)

    async def root(
        a: bool = m.Depends(sync_f),
        b: Ctor = m.Depends(Ctor),
        c: bool = m.Depends(sync_gen),
        d: bool = m.Depends(async_f),
        e: bool = m.Depends(agen),
    ) -> Any:
        return {"sync": a, "ctor": b.in_worker, "gen": c, "async": d, "agen": e}

    return Case(root, log)


async def test_sync_callables_run_in_worker_threads() -> None:
    """By default (FastAPI parity) sync functions, constructors and both halves of
    sync generators run in a worker thread, never on the event loop's thread;
    async functions and async generators run on the loop's thread."""
    await check(
        case_threads,
        expect={"sync": True, "ctor": True, "gen": True, "async": False, "agen": False},
        expect_log=[
            ("sync_gen", "setup in worker", True),
            ("agen", "teardown in worker", False),
            ("sync_gen", "teardown in worker", True),
        ],
    )


@conformance_case
def case_values_do_not_replace_dependencies(m: Markers) -> Case:
    log = Log()

    def a() -> str:
        log("a", "call")
        return "from a"

    def b(ss: m.SecurityScopes) -> Any:
        log("b", "call")
        return ss.scopes

    def root(a: str = m.Depends(a), b: Any = m.Security(b, scopes=["s"])) -> Any:
        return [a, b]

    return Case(root, log, values={"a": "value a", "b": "value b"})


async def test_a_value_never_replaces_a_dependency() -> None:
    """Values fill plain parameters only: a value named like a dependency
    parameter (``a``) or a ``SecurityScopes`` parameter is not used for it."""
    await check(
        case_values_do_not_replace_dependencies,
        expect=["from a", ["s"]],
        expect_log=[("a", "call"), ("b", "call")],
    )


@conformance_case
def case_unused_values(m: Markers) -> Case:
    log = Log()

    def dep(x: int = 1) -> int:
        log("dep", "call")
        return x

    def root(d: int = m.Depends(dep)) -> Any:
        return d

    return Case(root, log, values={"x": 2, "unused": 3})


async def test_values_nobody_declares_are_ignored() -> None:
    """A value no dependable declares is ignored, like an unknown query
    parameter."""
    await check(case_unused_values, expect=2, expect_log=[("dep", "call")])


@conformance_case
def case_wide_and_deep(m: Markers) -> Case:
    log = Log()

    def make_link(i: int, below: Any) -> Any:
        if i % 2:

            async def link(x: int = m.Depends(below)) -> int:
                log("link", i)
                return x + i

        else:

            def link(x: int = m.Depends(below)) -> int:
                log("link", i)
                return x + i

        return link

    def bottom(n: int) -> int:
        log("bottom", "call")
        return n

    chain: Any = bottom
    for i in range(1, 41):
        chain = make_link(i, chain)

    def make_leaf(i: int) -> Any:
        async def leaf(b: int = m.Depends(bottom)) -> int:
            log("leaf", i)
            return b * i

        return leaf

    leaves = [make_leaf(i) for i in range(30)]
    namespace: dict[str, Any] = {"m": m, "leaves": leaves, "chain": chain}
    params = ", ".join(f"l{i}: int = m.Depends(leaves[{i}])" for i in range(30))
    source = (
        f"async def root(deep: int = m.Depends(chain), {params}) -> list[int]:\n"
        f"    return [deep, {', '.join(f'l{i}' for i in range(30))}]\n"
    )
    exec(compile(source, "<wide>", "exec", dont_inherit=True), namespace)
    return Case(namespace["root"], log, values={"n": 2})


async def test_a_deep_chain_and_a_wide_fan_out() -> None:
    """A 40-level chain of alternating sync and async dependencies and 30 sibling
    async dependencies sharing one leaf give FastAPI's values and calls."""
    await check(
        case_wide_and_deep,
        expect=[2 + sum(range(1, 41))] + [2 * i for i in range(30)],
    )


@conformance_case
def case_more_callables(m: Markers) -> Case:
    log = Log()

    class Pager:
        def __init__(self, size: int, page: int = 1) -> None:
            log("Pager", "init", size, page)
            self.size = size
            self.page = page

    class WithGenCall:
        """A class whose ``__call__`` is a generator is still just constructed."""

        def __init__(self) -> None:
            log("WithGenCall", "init")

        def __call__(self) -> Any:
            log("WithGenCall", "__call__")
            yield -1

    class AsyncCall:
        async def __call__(self, k: int, n: int) -> int:
            log("AsyncCall", "call", k)
            return k * n

    def gen_body(n: int) -> Any:
        log("gen_body", "enter")
        yield n * 3
        log("gen_body", "exit")

    @functools.wraps(gen_body)
    def wrapped_gen(*args: Any, **kwargs: Any) -> Any:
        log("wrapped_gen", "call")
        return gen_body(*args, **kwargs)

    def root(
        p: Any = m.Depends(functools.partial(Pager, 3)),
        w: Any = m.Depends(WithGenCall),
        a: int = m.Depends(functools.partial(AsyncCall(), 5)),
        g: int = m.Depends(wrapped_gen),
    ) -> Any:
        log("root", "call")
        return {"p": [p.size, p.page], "w": type(w).__name__, "a": a, "g": g}

    return Case(root, log, values={"n": 2, "page": 4})


async def test_partials_of_classes_and_instances_and_wrapped_generators() -> None:
    """A ``partial`` of a class is its constructor with the bound argument; a class
    with a generator ``__call__`` is only constructed; a ``partial`` of an instance
    with ``async def __call__`` is awaited; a ``functools.wraps`` wrapper of a
    generator function is a ``yield`` dependency (its generator is entered and
    torn down)."""
    await check(
        case_more_callables,
        expect={"p": [3, 4], "w": "WithGenCall", "a": 10, "g": 6},
        expect_log=[
            ("Pager", "init", 3, 4),
            ("WithGenCall", "init"),
            ("AsyncCall", "call", 5),
            ("wrapped_gen", "call"),
            ("gen_body", "enter"),
            ("root", "call"),
            ("gen_body", "exit"),
        ],
    )


@conformance_case
def case_depends_options_with_annotation(m: Markers) -> Case:
    log = Log()
    counter = itertools.count(1)

    class Pager:
        def __init__(self) -> None:
            self.n = next(counter)
            log("Pager", "init")

    def root(
        a: Annotated[Pager, m.Depends(use_cache=False)],
        b: Annotated[Pager, m.Depends()],
        c: Pager = m.Depends(use_cache=False),
        d: Pager = m.Depends(dependency=Pager),
    ) -> Any:
        return [a.n, b.n, c.n, d.n]

    return Case(root, log)


async def test_depends_options_without_a_callable() -> None:
    """``Depends(use_cache=False)`` with no callable takes the annotation and keeps
    its option: ``[nocache, cached, nocache, cached]`` of one class gives
    ``[1, 1, 2, 1]`` (the first uncached call seeds the cache; concurrently, the
    first to be stored)."""

    def first_stored(outcome: Outcome) -> None:
        a, b, c, d = outcome.result
        assert a != c and b == d and b in (a, c), outcome
        assert outcome.log == [("Pager", "init")] * 2, outcome

    await check(
        case_depends_options_with_annotation,
        expect=[1, 1, 2, 1],
        expect_log=[("Pager", "init")] * 2,
        concurrent=first_stored,
    )


@conformance_case
def case_sync_root_thread(m: Markers) -> Case:
    log = Log()

    async def loop_thread() -> int:
        return threading.get_ident()

    def root(loop: int = m.Depends(loop_thread)) -> Any:
        return {"root in worker thread": threading.get_ident() != loop}

    return Case(root, log)


async def test_a_sync_root_runs_in_a_worker_thread() -> None:
    """A sync root (FastAPI: a sync endpoint) runs in a worker thread by default,
    like every other sync callable."""
    await check(case_sync_root_thread, expect={"root in worker thread": True})
