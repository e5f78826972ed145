"""The generated runners: every way a dependable takes its arguments binds them as
a keyword call would (the generated code passes them positionally where a plain
function's leading parameters are exactly them, by keyword otherwise)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from anydepends import Container, Depends


async def one() -> int:
    return 1


async def two() -> int:
    return 2


async def swapped(b: int = Depends(two), a: int = Depends(one)) -> tuple[int, int]:
    return a, b


async def keyword_only(a: int = Depends(one), *, b: int = Depends(two)) -> Any:
    return a, b


async def with_value(
    a: int = Depends(one), extra: int = 10, b: int = Depends(two)
) -> Any:
    return a, extra, b


class Service:
    def __init__(self, base: int) -> None:
        self.base = base

    async def method(self, a: int = Depends(one), b: int = Depends(two)) -> Any:
        return self.base, a, b


def by_kwargs(**kwargs: int) -> Any:
    return sorted(kwargs.items())


def takes(a: int = Depends(one), b: int = Depends(two)) -> Any:
    return by_kwargs(a=a, b=b)


@functools.wraps(swapped)
async def wrapper(*args: Any, **kwargs: Any) -> Any:
    return await swapped(*args, **kwargs)


@pytest.mark.parametrize(
    ("fn", "values", "expected"),
    [
        (swapped, {}, (1, 2)),
        (keyword_only, {}, (1, 2)),
        (with_value, {}, (1, 10, 2)),
        (with_value, {"extra": 7}, (1, 7, 2)),
        (Service(5).method, {}, (5, 1, 2)),
        (functools.partial(swapped, b=20), {}, (1, 20)),
        (takes, {}, [("a", 1), ("b", 2)]),
        (wrapper, {}, (1, 2)),
    ],
)
@pytest.mark.parametrize("sequential", [False, True])
async def test_arguments_reach_their_parameters(
    fn: Any, values: dict[str, Any], expected: Any, sequential: bool
) -> None:
    """Dependencies declared out of order, keyword-only ones, plain values between
    them, bound methods, partials (a bound keyword wins), sync functions
    and ``functools.wraps`` wrappers: each parameter gets its own value, through
    ``container.call`` and ``scope.call``, in both modes."""

    async def root(result: Any = Depends(fn)) -> Any:
        return result

    async with Container(sequential=sequential) as container:
        assert await container.call(root, **values) == expected
        async with container.scope() as scope:
            assert await scope.call(root, **values) == expected
        assert await container.call(fn, **values) == expected
