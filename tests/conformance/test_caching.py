# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Caching: the cache key and ``use_cache`` (docs/semantics.md §3, checked against
FastAPI itself).

Several cases return call counters. ``Container(sequential=True)`` must match FastAPI
exactly; in the concurrent container the order of independent calls is free, so
there the counters may be permuted, but the same declarations must share a value
and the same number of calls must happen (``concurrent="pattern"``).
"""

import functools
import itertools
from dataclasses import dataclass
from typing import Any

from .harness import (
    Case,
    Log,
    Markers,
    check,
    conformance_case,
    seeded_by_an_uncached_call,
)


def _counting(log: Log, name: str = "f") -> Any:
    counter = itertools.count(1)

    def f() -> int:
        value = next(counter)
        log(name, "call", value)
        return value

    return f


@conformance_case
def case_nocache_seeds(m: Markers) -> Case:
    log = Log()
    f = _counting(log)

    def root(
        a: int = m.Depends(f, use_cache=False),
        b: int = m.Depends(f),
        c: int = m.Depends(f),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_nocache_first_seeds_the_cache() -> None:
    """``[nocache, cached, cached]``: the uncached declaration calls ``f`` and, the key
    being absent, seeds the cache, so the cached ones reuse it: one call, ``[1, 1,
    1]``."""
    await check(
        case_nocache_seeds,
        concurrent="pattern",
        expect=[1, 1, 1],
        expect_log=[("f", "call", 1)],
    )


@conformance_case
def case_cached_nocache_cached(m: Markers) -> Case:
    log = Log()
    f = _counting(log)

    def root(
        a: int = m.Depends(f),
        b: int = m.Depends(f, use_cache=False),
        c: int = m.Depends(f),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_cached_nocache_cached() -> None:
    """``[cached, nocache, cached]`` gives ``[1, 2, 1]``: the uncached declaration
    always calls, and never replaces the stored first value."""
    await check(
        case_cached_nocache_cached,
        concurrent="pattern",
        expect=[1, 2, 1],
        expect_log=[("f", "call", 1), ("f", "call", 2)],
    )


@conformance_case
def case_nocache_nocache_cached(m: Markers) -> Case:
    log = Log()
    f = _counting(log)

    def root(
        a: int = m.Depends(f, use_cache=False),
        b: int = m.Depends(f, use_cache=False),
        c: int = m.Depends(f),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_first_stored_value_wins() -> None:
    """``[nocache, nocache, cached]`` gives ``[1, 2, 1]``: the first uncached call
    seeds the cache, the second does not overwrite it. (Concurrently, the two
    uncached calls may complete in either order: the cached declaration gets
    whichever value was stored first.)"""
    await check(
        case_nocache_nocache_cached,
        concurrent=seeded_by_an_uncached_call("f"),
        expect=[1, 2, 1],
        expect_log=[("f", "call", 1), ("f", "call", 2)],
    )


@conformance_case
def case_diamond(m: Markers) -> Case:
    log = Log()

    async def shared() -> int:
        # A constant: under concurrency which declaration runs first is not fixed.
        log("shared", "call")
        return 1

    async def left(s: int = m.Depends(shared)) -> int:
        log("left", "call")
        return s + 10

    async def right(s: int = m.Depends(shared)) -> int:
        log("right", "call")
        return s + 20

    def uncached_left(s: int = m.Depends(shared, use_cache=False)) -> int:
        log("uncached_left", "call")
        return s

    def uncached_right(s: int = m.Depends(shared, use_cache=False)) -> int:
        log("uncached_right", "call")
        return s

    async def root(
        a: int = m.Depends(left),
        b: int = m.Depends(right),
        c: int = m.Depends(uncached_left),
        d: int = m.Depends(uncached_right),
    ) -> Any:
        return [a, b, c, d]

    return Case(root, log)


async def test_diamond_shares_one_value() -> None:
    """A dependency needed by two branches runs once and both get its value (also
    when the branches run concurrently); two ``use_cache=False`` declarations in two
    other branches each call it again."""
    await check(
        case_diamond,
        expect=[11, 21, 1, 1],
        expect_log=[
            ("shared", "call"),
            ("left", "call"),
            ("right", "call"),
            ("shared", "call"),
            ("uncached_left", "call"),
            ("shared", "call"),
            ("uncached_right", "call"),
        ],
    )


@conformance_case
def case_bound_methods(m: Markers) -> Case:
    log = Log()

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name
            self.counter = itertools.count(1)

        def get(self, n: int) -> str:
            value = next(self.counter)
            log(self.name, "call", value)
            return f"{self.name}{n}:{value}"

    one = Service("one")
    two = Service("two")

    def root(
        a: str = m.Depends(one.get),
        b: str = m.Depends(one.get),  # a new, equal bound-method object
        c: str = m.Depends(two.get),
    ) -> Any:
        return [a, b, c]

    return Case(root, log, values={"n": 5})


async def test_bound_methods_share_a_key() -> None:
    """``Depends(svc.get)`` written twice creates two equal bound-method objects:
    they share one cache entry. The same method of another instance is another
    entry."""
    await check(
        case_bound_methods,
        expect=["one5:1", "one5:1", "two5:1"],
        expect_log=[("one", "call", 1), ("two", "call", 1)],
    )


@conformance_case
def case_partials_by_identity(m: Markers) -> Case:
    log = Log()
    counter = itertools.count(1)

    def f(k: int) -> list[int]:
        value = next(counter)
        log("f", "call", k, value)
        return [k, value]

    p1 = functools.partial(f, 1)
    p2 = functools.partial(f, 1)  # looks the same, is another object

    def root(
        a: list[int] = m.Depends(p1),
        b: list[int] = m.Depends(p2),
        c: list[int] = m.Depends(p1),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_partials_compare_by_identity() -> None:
    """Two equal-looking ``functools.partial`` objects are two cache entries; the
    same partial object declared twice is one."""
    await check(
        case_partials_by_identity,
        concurrent="pattern",
        expect=[[1, 1], [1, 2], [1, 1]],
        expect_log=[("f", "call", 1, 1), ("f", "call", 1, 2)],
    )


@conformance_case
def case_frozen_dataclass_instances(m: Markers) -> Case:
    log = Log()
    counter = itertools.count(1)

    @dataclass(frozen=True)
    class Getter:
        k: int

        def __call__(self, n: int) -> int:
            value = next(counter)
            log("Getter", "call", self.k, value)
            return self.k * n * 100 + value

    def root(
        a: int = m.Depends(Getter(1)),
        b: int = m.Depends(Getter(1)),  # equal instance: same key
        c: int = m.Depends(Getter(2)),
    ) -> Any:
        return [a, b, c]

    return Case(root, log, values={"n": 1})


async def test_equal_frozen_dataclass_instances_share_a_key() -> None:
    """Callable instances are compared with their own ``__eq__``/``__hash__``: two
    equal frozen-dataclass instances share one entry, an unequal one is another."""
    await check(
        case_frozen_dataclass_instances,
        concurrent="pattern",
        expect=[101, 101, 202],
        expect_log=[("Getter", "call", 1, 1), ("Getter", "call", 2, 2)],
    )


@conformance_case
def case_generator_scopes(m: Markers) -> Case:
    log = Log()
    counter = itertools.count(1)

    def gen() -> Any:
        value = next(counter)
        log("gen", "enter", value)
        yield value
        log("gen", "exit", value)

    def root(
        a: int = m.Depends(gen),
        b: int = m.Depends(gen, scope="request"),
        c: int = m.Depends(gen, scope="function"),
    ) -> Any:
        log("root", "call")
        return [a, b, c]

    return Case(root, log)


async def test_generator_default_scope_is_request_in_the_key() -> None:
    """A generator's key uses ``"request"`` when no scope is given: ``Depends(gen)``
    and ``Depends(gen, scope="request")`` are one entry, ``scope="function"``
    another: two setups, two teardowns, the function-scoped one first."""
    await check(
        case_generator_scopes,
        concurrent="pattern",
        expect=[1, 1, 2],
        expect_log=[
            ("gen", "enter", 1),
            ("gen", "enter", 2),
            ("root", "call"),
            ("gen", "exit", 2),
            ("gen", "exit", 1),
        ],
    )


@conformance_case
def case_plain_scopes(m: Markers) -> Case:
    log = Log()
    f = _counting(log)

    def root(
        a: int = m.Depends(f),
        b: int = m.Depends(f, scope="function"),
        c: int = m.Depends(f, scope="request"),
    ) -> Any:
        return [a, b, c]

    return Case(root, log)


async def test_scope_is_in_the_key_of_plain_functions() -> None:
    """For a plain function, ``Depends(f)``, ``Depends(f, scope="function")`` and
    ``Depends(f, scope="request")`` are three cache entries: three calls."""
    await check(
        case_plain_scopes,
        concurrent="pattern",
        expect=[1, 2, 3],
        expect_log=[("f", "call", 1), ("f", "call", 2), ("f", "call", 3)],
    )


@conformance_case
def case_values_shared_by_name(m: Markers) -> Case:
    log = Log()

    def dep(x: int, y: int = 2) -> list[int]:
        log("dep", "call")
        return [x, y]

    async def other(x: int, z: str = "z") -> list[Any]:
        log("other", "call")
        return [x, z]

    def root(x: int, d: list[int] = m.Depends(dep), o: Any = m.Depends(other)) -> Any:
        return {"x": x, "d": d, "o": o}

    return Case(root, log, values={"x": 9, "z": "given"})


async def test_one_value_reaches_every_parameter_of_that_name() -> None:
    """A value is given by name to every dependable that declares a plain parameter
    of that name (the root included); others keep their defaults."""
    await check(
        case_values_shared_by_name,
        expect={"x": 9, "d": [9, 2], "o": [9, "given"]},
        expect_log=[("dep", "call"), ("other", "call")],
    )
