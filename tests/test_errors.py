"""Errors: the hierarchy; every error says where and how to fix (docs/semantics.md §12).

Every compile-time error must name the dependency path (root -> ... -> offending
dependable), the callable by its qualified name, the parameter, and a fix. Each case
below nests the mistake under an intermediate dependable, so the path is checked
beyond the root. The dependables are at module level: their string annotations
(``from __future__ import annotations``) must resolve here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import pytest

from anydepends import (
    Container,
    CycleError,
    DeclarationError,
    DependencyError,
    Depends,
    LifetimeError,
    MissingContextError,
    MissingValuesError,
    Scope,
    UsageError,
    YieldError,
)


async def leaf() -> int:
    return 1


# -- the broken dependables (each one's problem is its parameter ``bad``) -------------


async def both_forms(bad: Annotated[int, Depends(leaf)] = Depends(leaf)) -> None: ...


async def no_annotation(bad=Depends()) -> None: ...  # type: ignore[no-untyped-def]


async def uncallable_annotation(bad: int | None = Depends()) -> None: ...


async def signatureless_annotation(bad: Annotated[str, Depends()]) -> None: ...


async def not_callable(bad: int = Depends(5)) -> None:  # type: ignore[arg-type]
    ...


async def positional_only(bad: int, /) -> None: ...


async def star_args(*bad: int) -> None: ...


async def star_kwargs(**bad: int) -> None: ...


async def request_scoped(x: int = Depends(leaf)) -> int:
    return x


async def app_over_request(bad: int = Depends(request_scoped)) -> int:
    return bad


async def function_scoped() -> int:
    return 1


async def gen_over_function(
    bad: int = Depends(function_scoped, scope="function"),
) -> AsyncIterator[int]:
    yield bad


async def app_with_value(bad: str) -> str:
    return bad


async def app_with_context(bad: Scope) -> None: ...


@dataclass
class UnhashableDep:
    n: int = 0

    def __call__(self) -> int:
        return self.n


async def unhashable_user(bad: int = Depends(UnhashableDep())) -> int:
    return bad


async def cycle_a(bad: Any = None) -> Any:
    return bad


async def cycle_b(bad: Any = Depends(cycle_a)) -> Any:
    return bad


cycle_a.__defaults__ = (Depends(cycle_b),)


def wrap(marker: Any) -> Callable[..., Any]:
    """A root -> mid -> (marker) chain: ``mid`` declares *marker* as ``m``."""

    async def mid(m: Any = marker) -> Any:
        return m

    async def root(r: Any = Depends(mid)) -> Any:
        return r

    return root


@dataclass(frozen=True)
class Case:
    """One broken graph: its error type, the offending callable, the parameter."""

    root: Callable[..., Any]
    error: type[DependencyError]
    callable: str  # the dependable whose parameter is wrong
    parameter: str
    dependency: str | None = None  # or the dependency it names, as the callable


CASES = {
    "both forms": Case(
        wrap(Depends(both_forms)), DeclarationError, "both_forms", "bad"
    ),
    "Depends() without annotation": Case(
        wrap(Depends(no_annotation)), DeclarationError, "no_annotation", "bad"
    ),
    "Depends() with uncallable annotation": Case(
        wrap(Depends(uncallable_annotation)),
        DeclarationError,
        "uncallable_annotation",
        "bad",
    ),
    "Depends() on a type without signature": Case(
        wrap(Depends(signatureless_annotation)),
        DeclarationError,
        "signatureless_annotation",
        "bad",
        "str",
    ),
    "Depends(5)": Case(
        wrap(Depends(not_callable)), DeclarationError, "not_callable", "bad", "5"
    ),
    "positional-only": Case(
        wrap(Depends(positional_only)), DeclarationError, "positional_only", "bad"
    ),
    "*args": Case(wrap(Depends(star_args)), DeclarationError, "star_args", "bad"),
    "**kwargs": Case(
        wrap(Depends(star_kwargs)), DeclarationError, "star_kwargs", "bad"
    ),
    "app over request": Case(
        wrap(Depends(app_over_request, scope="app")),
        LifetimeError,
        "app_over_request",
        "bad",
    ),
    "request generator over function": Case(
        wrap(Depends(gen_over_function)), LifetimeError, "gen_over_function", "bad"
    ),
    "app-scoped with a value": Case(
        wrap(Depends(app_with_value, scope="app")),
        LifetimeError,
        "app_with_value",
        "bad",
    ),
    "app-scoped with a context": Case(
        wrap(Depends(app_with_context, scope="app")),
        LifetimeError,
        "app_with_context",
        "bad",
    ),
    "unhashable callable": Case(
        wrap(Depends(unhashable_user)),
        DeclarationError,
        "unhashable_user",
        "bad",
        "UnhashableDep",
    ),
    "cycle": Case(wrap(Depends(cycle_a)), CycleError, "cycle_", "bad"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_compile_errors_name_path_callable_parameter_and_fix(case: Case) -> None:
    """A broken graph fails to compile with an error naming the path from the root
    through ``mid`` to the offending dependable, the callable (qualified: the
    dependable whose parameter is wrong, or the dependency that parameter names), the
    parameter and a fix; the rendered message carries all four."""
    with pytest.raises(case.error) as info:
        Container().compile(case.root)
    error = info.value
    text = str(error)
    assert error.parameter == case.parameter, text
    assert error.path, "no path"
    assert error.path[0].endswith("wrap.<locals>.root"), error.path
    assert any(p.endswith("wrap.<locals>.mid") for p in error.path), error.path
    assert any(case.callable in p for p in error.path[2:]), error.path
    assert error.callable is not None
    names = (
        [case.callable] if case.dependency is None else [case.callable, case.dependency]
    )
    assert any(name in error.callable for name in names), error.callable
    if case.callable in error.callable:
        assert error.callable.startswith("tests.test_errors."), error.callable
    assert error.hint
    for part in ("path:", "callable:", "parameter:", "fix:", case.callable):
        assert part in text, text


def test_lifetime_errors_name_both_dependables() -> None:
    """A lifetime mismatch names the longer-lived dependent and the shorter-lived
    dependency."""
    with pytest.raises(LifetimeError) as info:
        Container().compile(CASES["app over request"].root)
    assert "app_over_request" in str(info.value)
    assert "request_scoped" in str(info.value)
    with pytest.raises(LifetimeError) as info:
        Container().compile(CASES["request generator over function"].root)
    assert "gen_over_function" in str(info.value)
    assert "function_scoped" in str(info.value)


def test_a_cycle_error_shows_the_loop() -> None:
    """A cycle error shows the loop itself, e.g. ``cycle_a -> cycle_b -> cycle_a``."""
    with pytest.raises(CycleError) as info:
        Container().compile(CASES["cycle"].root)
    summary = info.value.summary
    assert "cycle_a" in summary and "cycle_b" in summary
    assert summary.count("cycle_a") == 2


def test_root_generator_error() -> None:
    """A generator root names itself and says what to do instead."""

    async def root() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(DeclarationError) as info:
        Container().compile(root)
    assert info.value.callable is not None and "root" in info.value.callable
    assert info.value.path
    assert info.value.hint


def test_a_broken_root_parameter_names_the_root() -> None:
    """A mistake in the root's own signature names the root as the callable and the
    path."""

    async def root(bad: int, /) -> None: ...

    with pytest.raises(DeclarationError) as info:
        Container().compile(root)
    assert info.value.parameter == "bad"
    assert info.value.callable is not None and info.value.callable.endswith("root")
    assert info.value.path[-1].endswith("root")


async def test_missing_values_error_names_everything() -> None:
    """MissingValuesError names every missing value, where each is needed (paths),
    the root, and how to pass them."""

    async def dep(token: str) -> str:
        return token

    async def root(job: str, d: str = Depends(dep)) -> None: ...

    async with Container() as container:
        with pytest.raises(MissingValuesError) as info:
            await container.call(root)
    error = info.value
    assert error.missing.keys() == {"job", "token"}
    assert all(paths for paths in error.missing.values())
    assert error.callable is not None and error.callable.endswith("root")
    assert error.path
    assert error.parameter is not None
    assert "job" in error.parameter and "token" in error.parameter
    assert error.hint and "job=" in error.hint and "token=" in error.hint
    assert "dep" in str(error)


class Request:
    """A context type (module level: string annotations must resolve)."""


async def test_missing_context_error_names_the_type_and_the_user() -> None:
    """MissingContextError names the missing type, who needs it, and the fix."""

    async def needs(req: Request) -> None: ...

    async def root(x: None = Depends(needs)) -> None: ...

    async with Container(context_types=[Request]) as container:
        with pytest.raises(MissingContextError) as info:
            await container.call(root)
    error = info.value
    assert "Request" in str(error)
    assert "needs" in str(error)
    assert error.hint and "context=" in error.hint


async def test_yield_errors_name_the_dependable() -> None:
    """A YieldError names the misbehaving dependable and how to fix it."""

    async def never_yields() -> AsyncIterator[None]:
        if False:
            yield

    async def root(x: None = Depends(never_yields)) -> None: ...

    async with Container() as container:
        with pytest.raises(YieldError) as info:
            await container.call(root)
    assert info.value.callable is not None and "never_yields" in info.value.callable
    assert info.value.hint


def test_error_hierarchy() -> None:
    """Every error is a DependencyError, and also the builtin it behaves like."""
    assert issubclass(DeclarationError, DependencyError)
    assert issubclass(DeclarationError, TypeError)
    assert issubclass(CycleError, DependencyError)
    assert issubclass(LifetimeError, DependencyError)
    assert issubclass(MissingValuesError, DependencyError)
    assert issubclass(MissingValuesError, LookupError)
    assert issubclass(MissingContextError, DependencyError)
    assert issubclass(MissingContextError, LookupError)
    assert issubclass(YieldError, DependencyError)
    assert issubclass(YieldError, RuntimeError)
    assert issubclass(UsageError, DependencyError)
    assert issubclass(UsageError, RuntimeError)
    assert issubclass(DependencyError, Exception)


def test_rendering() -> None:
    """The message has the summary, then one line each for path, callable, parameter
    and fix; absent fields are left out."""
    error = DependencyError(
        "summary", path=("a", "b"), callable="b", parameter="p", hint="do this"
    )
    assert str(error).splitlines() == [
        "summary",
        "  path: a -> b",
        "  callable: b",
        "  parameter: p",
        "  fix: do this",
    ]
    assert str(DependencyError("only")) == "only"
    assert error.path == ("a", "b")
    assert error.summary == "summary"
