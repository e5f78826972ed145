# ruff: noqa: I002  (annotations here must be real objects, not strings)
"""Hostile input: a catalogue of malformed declarations and misuses.

Each entry is one mistake a user can make (a non-callable, a misplaced marker, a
cycle, a variadic parameter, a generator that never yields, a lifetime mismatch, a
closed scope, ...). One test runs every entry on both backends and checks that the
answer is the documented exception (a :class:`DependencyError` subclass) whose message
names where the mistake is (the callables on the dependency path) and how to fix it;
never a bare internal exception, never a hang. ``docs/errors.md`` lists the same
catalogue for users; a test keeps the two in sync.
"""

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
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
    Security,
    UsageError,
    YieldError,
)


@dataclass(frozen=True)
class Hostile:
    """One catalogue entry: a misuse and the answer it must get."""

    id: str
    misuse: str  # what the user did (for docs/errors.md)
    error: type[BaseException]  # the documented exception
    excerpt: str  # part of the message
    fix: str  # part of the message's "fix:" line
    names: tuple[str, ...]  # what the message must name (path, callable, parameter)
    trigger: Callable[[], Awaitable[Any]]


CATALOGUE: list[Hostile] = []


def hostile(
    id: str,
    misuse: str,
    error: type[BaseException],
    excerpt: str,
    fix: str,
    names: tuple[str, ...] = (),
) -> Callable[[Callable[[], Awaitable[Any]]], Callable[[], Awaitable[Any]]]:
    """Register the decorated coroutine function as a catalogue entry."""

    def register(trigger: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        CATALOGUE.append(Hostile(id, misuse, error, excerpt, fix, names, trigger))
        return trigger

    return register


async def call_in_container(fn: Callable[..., Any], **values: Any) -> Any:
    """The common case: one call in a fresh container."""
    async with Container() as container:
        return await container.call(fn, **values)


def ok() -> str:
    return "ok"


# -- what Depends is given -------------------------------------------------------------


def h_not_callable(x: int = Depends(42)) -> int:  # type: ignore[arg-type]
    return x


@hostile(
    "not-callable",
    "`Depends(42)`: the dependency is not callable",
    DeclarationError,
    "42 is not callable",
    "pass a function, class or callable object",
    ("h_not_callable",),
)
async def _() -> Any:
    return await call_in_container(h_not_callable)


def h_string(db: Any = Depends("get_db")) -> Any:  # type: ignore[arg-type]
    return db


@hostile(
    "string-dependency",
    '`Depends("get_db")`: a name instead of the callable',
    DeclarationError,
    "'get_db' is not callable",
    "pass a function, class or callable object",
    ("h_string",),
)
async def _() -> Any:
    return await call_in_container(h_string)


def h_nested_marker(x: Any = Depends(Depends(ok))) -> Any:
    return x


@hostile(
    "marker-in-marker",
    "`Depends(Depends(f))`: a marker wrapped in a marker",
    DeclarationError,
    "is not callable",
    "pass a function, class or callable object",
    ("h_nested_marker",),
)
async def _() -> Any:
    return await call_in_container(h_nested_marker)


async def h_coroutine_fn() -> int:
    return 1


@hostile(
    "coroutine-object",
    "`Depends(get_db())`: a coroutine object (the function was called)",
    DeclarationError,
    "is not callable",
    "pass a function, class or callable object",
    ("coroutine",),
)
async def _() -> Any:
    coro = h_coroutine_fn()
    try:

        def root(x: Any = Depends(coro)) -> Any:  # type: ignore[arg-type]
            return x

        return await call_in_container(root)
    finally:
        coro.close()


def h_no_annotation(x=Depends()) -> Any:  # type: ignore[no-untyped-def]
    return x


@hostile(
    "depends-without-callable-or-annotation",
    "`x = Depends()` with no annotation to take the callable from",
    DeclarationError,
    "has no callable and no annotation",
    "write Depends(some_callable)",
    ("h_no_annotation", "x"),
)
async def _() -> Any:
    return await call_in_container(h_no_annotation)


def h_union_annotation(x: Annotated[int | None, Depends()]) -> Any:
    return x


@hostile(
    "depends-uncallable-annotation",
    "`x: Annotated[int | None, Depends()]`: the annotation is not callable",
    DeclarationError,
    "is not callable",
    "annotate x with a class",
    ("h_union_annotation", "x"),
)
async def _() -> Any:
    return await call_in_container(h_union_annotation)


def h_both(x: Annotated[str, Depends(ok)] = Depends(ok)) -> Any:
    return x


@hostile(
    "annotated-and-default",
    "`x: Annotated[T, Depends(a)] = Depends(b)`: two declarations for one parameter",
    DeclarationError,
    "both in Annotated and as default",
    "keep one",
    ("h_both", "x"),
)
async def _() -> Any:
    return await call_in_container(h_both)


def h_marker_as_annotation(x: Depends(ok)) -> Any:  # type: ignore[valid-type]
    return x


@hostile(
    "marker-as-annotation",
    "`x: Depends(f)`: the marker written as the annotation",
    DeclarationError,
    "marker as its annotation",
    "Annotated[T, Depends(f)]",
    ("h_marker_as_annotation", "x"),
)
async def _() -> Any:
    return await call_in_container(h_marker_as_annotation)


def h_unresolvable(x: "Annotated[int, Depends(nowhere)]") -> Any:  # type: ignore[name-defined]  # noqa: F821
    return x


@hostile(
    "unresolvable-annotation-hides-marker",
    "a string annotation holding `Depends(...)` that cannot be evaluated (a name"
    " imported under `TYPE_CHECKING`, a type local to a function under"
    " `from __future__ import annotations`): FastAPI silently makes the parameter a"
    " plain value; anydepends refuses it",
    DeclarationError,
    "declares a dependency but could not be evaluated",
    "module level",
    ("h_unresolvable", "x"),
)
async def _() -> Any:
    return await call_in_container(h_unresolvable)


def h_raising_annotation(x: "1 / 0") -> Any:  # type: ignore[valid-type]
    return x


@hostile(
    "annotation-raises",
    'an annotation whose evaluation raises (`x: "1 / 0"`)',
    DeclarationError,
    "cannot evaluate the annotations of",
    "fix the annotation",
    ("h_raising_annotation",),
)
async def _() -> Any:
    return await call_in_container(h_raising_annotation, x=1)


def h_bad_syntax_annotation(x: "int[") -> Any:  # type: ignore[valid-type]  # noqa: F722
    return x


@hostile(
    "annotation-syntax-error",
    'an annotation string that is not Python (`x: "int["`)',
    DeclarationError,
    "cannot evaluate the annotations of",
    "fix the annotation",
    ("h_bad_syntax_annotation",),
)
async def _() -> Any:
    return await call_in_container(h_bad_syntax_annotation, x=1)


@hostile(
    "no-signature",
    "`Depends(max)`: a builtin whose signature cannot be read",
    DeclarationError,
    "cannot read the signature",
    "depend on a function, class or callable object with a signature",
    ("max",),
)
async def _() -> Any:
    def root(x: Any = Depends(max)) -> Any:
        return x

    return await call_in_container(root)


# -- parameters ------------------------------------------------------------------------


def h_posonly(a: int, /) -> int:
    return a


@hostile(
    "positional-only",
    "a dependable with a positional-only parameter (`def f(a, /)`)",
    DeclarationError,
    "positional-only parameter 'a'",
    "make it a regular or keyword-only parameter",
    ("h_posonly", "a"),
)
async def _() -> Any:
    def root(x: int = Depends(h_posonly)) -> int:
        return x

    return await call_in_container(root)


def h_varargs(*args: int) -> int:
    return len(args)


@hostile(
    "var-positional",
    "a dependable taking `*args`",
    DeclarationError,
    "variadic (*args) parameter 'args'",
    "make it a regular or keyword-only parameter",
    ("h_varargs", "args"),
)
async def _() -> Any:
    def root(x: int = Depends(h_varargs)) -> int:
        return x

    return await call_in_container(root)


class HKwargs:
    def __init__(self, **options: Any) -> None:
        self.options = options


@hostile(
    "var-keyword",
    "a class dependable whose `__init__` takes `**kwargs`",
    DeclarationError,
    "variadic (**kwargs) parameter 'options'",
    "make it a regular or keyword-only parameter",
    ("HKwargs", "options"),
)
async def _() -> Any:
    def root(x: HKwargs = Depends()) -> Any:
        return x

    return await call_in_container(root)


@hostile(
    "root-not-callable",
    "`container.call(42)`",
    DeclarationError,
    "42 is not callable",
    "pass a function",
    ("42",),
)
async def _() -> Any:
    return await call_in_container(42)  # type: ignore[arg-type]


def h_root_gen() -> Iterator[int]:
    yield 1


@hostile(
    "root-generator",
    "`container.call(gen)` where `gen` yields: only dependencies may yield",
    DeclarationError,
    "is a generator",
    "call a function that takes the yield dependency as a parameter",
    ("h_root_gen",),
)
async def _() -> Any:
    return await call_in_container(h_root_gen)


# -- cycles ----------------------------------------------------------------------------


def cycle_self(x: Any = None) -> Any:
    return x


cycle_self.__defaults__ = (Depends(cycle_self),)


@hostile(
    "cycle-of-one",
    "a dependable that depends on itself",
    CycleError,
    "dependency cycle: ",
    "break the cycle",
    ("cycle_self -> ", "cycle_self"),
)
async def _() -> Any:
    def root(x: Any = Depends(cycle_self)) -> Any:
        return x

    return await call_in_container(root)


def cycle_a(b: Any = None) -> Any:
    return b


def cycle_b(a: Any = Depends(cycle_a)) -> Any:
    return a


cycle_a.__defaults__ = (Depends(cycle_b),)


@hostile(
    "cycle-of-two",
    "`a -> b -> a`",
    CycleError,
    "dependency cycle: ",
    "break the cycle",
    ("cycle_a", "cycle_b"),
)
async def _() -> Any:
    def root(x: Any = Depends(cycle_a)) -> Any:
        return x

    return await call_in_container(root)


class CycleP:
    def __init__(self, q: "CycleQ" = None) -> None:  # type: ignore[assignment]
        self.q = q


class CycleQ:
    def __init__(self, r: Any = None) -> None:
        self.r = r


def cycle_r(p: Annotated[CycleP, Depends()]) -> Any:
    return p


CycleP.__init__.__defaults__ = (Depends(CycleQ),)
CycleQ.__init__.__defaults__ = (Depends(cycle_r),)


@hostile(
    "cycle-of-three",
    "`P -> Q -> r -> P` through classes and `Annotated[P, Depends()]`",
    CycleError,
    "dependency cycle: ",
    "break the cycle",
    ("CycleP", "CycleQ", "cycle_r"),
)
async def _() -> Any:
    def root(x: Any = Depends(cycle_r)) -> Any:
        return x

    return await call_in_container(root)


def cyc_override_orig() -> int:
    return 1


def cyc_override_repl(x: int = Depends(cyc_override_orig)) -> int:
    return x


@hostile(
    "cycle-through-override",
    "an override whose replacement depends on the callable it replaces",
    CycleError,
    "dependency cycle: ",
    "break the cycle",
    ("cyc_override_orig",),
)
async def _() -> Any:
    def root(x: int = Depends(cyc_override_orig)) -> int:
        return x

    async with Container() as container:
        container.overrides[cyc_override_orig] = cyc_override_repl
        return await container.call(root)


# -- marker options --------------------------------------------------------------------


@hostile(
    "unknown-lifetime",
    '`Depends(f, scope="session")`',
    DeclarationError,
    "Depends(scope='session') is not a lifetime",
    'use one of None, "function", "request" or "app"',
    ("ok",),
)
async def _() -> Any:
    return Depends(ok, scope="session")  # type: ignore[arg-type]


@hostile(
    "max-concurrency-zero",
    "`Depends(f, max_concurrency=0)`",
    DeclarationError,
    "is not a positive int",
    "pass a positive int, or None for no limit",
    ("ok",),
)
async def _() -> Any:
    return Depends(ok, max_concurrency=0)


@hostile(
    "max-concurrency-bool",
    "`Depends(f, max_concurrency=True)`",
    DeclarationError,
    "is not a positive int",
    "pass a positive int, or None for no limit",
    ("ok",),
)
async def _() -> Any:
    return Depends(ok, max_concurrency=True)


@hostile(
    "security-scopes-string",
    '`Security(f, scopes="read")`: a string, not a list of scopes',
    DeclarationError,
    "must be a sequence of strings",
    "write scopes=['read']",
    ("ok",),
)
async def _() -> Any:
    return Security(ok, scopes="read")


def h_limited_gen() -> Iterator[int]:
    yield 1


h_limited = Depends(h_limited_gen, use_cache=False, max_concurrency=1)


def h_self_deadlock(a: int = h_limited, b: int = h_limited) -> int:
    return a + b


@hostile(
    "max-concurrency-self-deadlock",
    "one call needs two permits of a `max_concurrency=1` yield dependency (permits"
    " are held until teardown, so the second wait could never end)",
    DeclarationError,
    "needs 2 permits of a max_concurrency=1 declaration",
    "raise max_concurrency",
    ("h_self_deadlock", "h_limited_gen"),
)
async def _() -> Any:
    return await call_in_container(h_self_deadlock)


# -- lifetimes -------------------------------------------------------------------------


def lt_request() -> int:
    return 1


def lt_app_on_request(x: int = Depends(lt_request)) -> int:
    return x


@hostile(
    "app-depends-on-request",
    'an app-scoped dependency (`scope="app"`) depending on a request-scoped one',
    LifetimeError,
    "which lives shorter",
    'scope="app"',
    ("lt_app_on_request", "lt_request"),
)
async def _() -> Any:
    def root(x: int = Depends(lt_app_on_request, scope="app")) -> int:
        return x

    return await call_in_container(root)


def lt_app_on_function(x: int = Depends(lt_request, scope="function")) -> int:
    return x


@hostile(
    "app-depends-on-function",
    "an app-scoped dependency depending on a function-scoped one",
    LifetimeError,
    "which lives shorter",
    'scope="app"',
    ("lt_app_on_function", "lt_request"),
)
async def _() -> Any:
    def root(x: int = Depends(lt_app_on_function, scope="app")) -> int:
        return x

    return await call_in_container(root)


def lt_request_gen(x: int = Depends(lt_request, scope="function")) -> Iterator[int]:
    yield x


@hostile(
    "request-generator-on-function",
    'a request-scoped `yield` dependency depending on an explicit `scope="function"`'
    " one (torn down first)",
    LifetimeError,
    'has scope="function" and is torn down first',
    'give tests.test_hostile.lt_request_gen scope="function" too',
    ("lt_request_gen", "lt_request"),
)
async def _() -> Any:
    def root(x: int = Depends(lt_request_gen)) -> int:
        return x

    return await call_in_container(root)


def lt_app_value(user_id: int) -> int:
    return user_id


@hostile(
    "app-takes-value",
    "an app-scoped dependency with a required per-call value parameter",
    LifetimeError,
    "takes the per-call value 'user_id'",
    "give the parameter a default",
    ("lt_app_value", "user_id"),
)
async def _() -> Any:
    def root(x: int = Depends(lt_app_value, scope="app")) -> int:
        return x

    return await call_in_container(root, user_id=1)


def lt_app_context(scope: Scope) -> int:
    return 1


@hostile(
    "app-takes-context",
    "an app-scoped dependency taking a per-scope context object by type",
    LifetimeError,
    "takes Scope by type, which belongs to a scope",
    "make the dependency request-scoped",
    ("lt_app_context", "scope"),
)
async def _() -> Any:
    def root(x: int = Depends(lt_app_context, scope="app")) -> int:
        return x

    return await call_in_container(root)


# -- callables that cannot key the cache -----------------------------------------------


@dataclass  # eq=True and not frozen: __hash__ is None
class Unhashable:
    label: str

    def __call__(self) -> str:
        return self.label


@hostile(
    "unhashable-cached",
    "an unhashable callable instance (a non-frozen dataclass) with `use_cache=True`",
    DeclarationError,
    "is unhashable, so it cannot key the cache",
    "declare it with use_cache=False",
    ("Unhashable",),
)
async def _() -> Any:
    def root(x: str = Depends(Unhashable("a"))) -> str:
        return x

    return await call_in_container(root)


# -- overrides -------------------------------------------------------------------------


@hostile(
    "override-not-callable",
    "`container.overrides[f] = 42`",
    DeclarationError,
    "cannot be used: 42 is not callable",
    "pass a function, class or callable object",
    ("ok",),
)
async def _() -> Any:
    async with Container() as container:
        container.overrides[ok] = 42  # type: ignore[assignment]


@hostile(
    "override-unhashable-original",
    "overriding an unhashable callable instance",
    DeclarationError,
    "it is unhashable",
    "override a hashable callable",
    ("Unhashable",),
)
async def _() -> Any:
    async with Container() as container:
        container.overrides[Unhashable("a")] = ok


def h_override_variadic(*args: Any) -> str:
    return "x"


@hostile(
    "override-variadic",
    "an override whose replacement takes `*args`",
    DeclarationError,
    "variadic (*args) parameter 'args'",
    "make it a regular or keyword-only parameter",
    ("h_override_variadic", "ok"),
)
async def _() -> Any:
    async with Container() as container:
        with container.override(ok, h_override_variadic):
            pass


def h_override_needs_value(tenant: str) -> str:
    return tenant


@hostile(
    "override-needs-value",
    "an override whose replacement needs a value the call does not pass",
    MissingValuesError,
    "'tenant' (needed by ",
    "pass them by name",
    ("h_override_needs_value", "tenant"),
)
async def _() -> Any:
    def root(x: str = Depends(ok)) -> str:
        return x

    async with Container() as container:
        with container.override(ok, h_override_needs_value):
            return await container.call(root)


# -- yield dependencies that misbehave -------------------------------------------------


def gen_never_yields() -> Iterator[int]:
    if False:
        yield 1


async def agen_never_yields() -> AsyncIterator[int]:
    if False:
        yield 1


def gen_yields_twice() -> Iterator[int]:
    yield 1
    yield 2


async def agen_yields_twice() -> AsyncIterator[int]:
    yield 1
    yield 2


def gen_swallows() -> Iterator[int]:
    try:
        yield 1
    except ValueError:
        pass  # neither re-raised nor replaced


async def agen_swallows() -> AsyncIterator[int]:
    try:
        yield 1
    except ValueError:
        pass


def _yield_case(
    dep: Callable[..., Any], lifetime: str | None, fail: bool
) -> Callable[[], Awaitable[Any]]:
    async def trigger() -> Any:
        def root(x: int = Depends(dep, scope=lifetime)) -> int:  # type: ignore[arg-type]
            if fail:
                raise ValueError("the handler failed")
            return x

        return await call_in_container(root)

    return trigger


for _dep, _lifetime, _fail, _id, _misuse, _excerpt, _fix in [
    (
        gen_never_yields,
        None,
        False,
        "generator-never-yields",
        "a sync generator dependency that returns without yielding",
        "finished without yielding",
        "must yield exactly once",
    ),
    (
        agen_never_yields,
        None,
        False,
        "async-generator-never-yields",
        "an async generator dependency that returns without yielding",
        "finished without yielding",
        "must yield exactly once",
    ),
    (
        agen_never_yields,
        "app",
        False,
        "app-generator-never-yields",
        "an app-scoped async generator (set up in a helper task) that never yields",
        "finished without yielding",
        "must yield exactly once",
    ),
    (
        gen_yields_twice,
        None,
        False,
        "generator-yields-twice",
        "a sync generator dependency that yields twice",
        "yielded more than once",
        "yield exactly once",
    ),
    (
        agen_yields_twice,
        None,
        False,
        "async-generator-yields-twice",
        "an async generator dependency that yields twice",
        "yielded more than once",
        "yield exactly once",
    ),
    (
        agen_yields_twice,
        "app",
        False,
        "app-generator-yields-twice",
        "an app-scoped async generator that yields twice (found at container exit)",
        "yielded more than once",
        "yield exactly once",
    ),
    (
        gen_swallows,
        None,
        True,
        "generator-swallows-exception",
        "a sync generator that catches the caller's exception at its `yield` and"
        " neither re-raises it nor raises another",
        "neither re-raised it nor raised another exception",
        "add a bare `raise`",
    ),
    (
        agen_swallows,
        "function",
        True,
        "async-generator-swallows-exception",
        "the same in a function-scoped async generator",
        "neither re-raised it nor raised another exception",
        "add a bare `raise`",
    ),
]:
    hostile(_id, _misuse, YieldError, _excerpt, _fix, (_dep.__name__,))(
        _yield_case(_dep, _lifetime, _fail)
    )


# -- values and context ----------------------------------------------------------------


def needs_values(user_id: int, tenant: str) -> str:
    return f"{tenant}/{user_id}"


def h_missing_values(x: str = Depends(needs_values), verbose: bool = False) -> str:
    return x


@hostile(
    "missing-values",
    "calling without the values the graph needs",
    MissingValuesError,
    "'user_id' (needed by ",
    "pass them by name",
    ("h_missing_values", "needs_values", "user_id", "tenant"),
)
async def _() -> Any:
    return await call_in_container(h_missing_values)


class Tenant:
    """A context type (like FastAPI's Request)."""


def needs_tenant(tenant: Tenant) -> Tenant:
    return tenant


@hostile(
    "missing-context",
    "a dependable takes a registered context type the scope was not given",
    MissingContextError,
    "no Tenant in this scope",
    "container.scope(context={Tenant: obj})",
    ("needs_tenant",),
)
async def _() -> Any:
    def root(t: Tenant = Depends(needs_tenant)) -> Tenant:
        return t

    async with (
        Container(context_types=[Tenant]) as container,
        container.scope() as scope,
    ):
        return await scope.call(root)


@hostile(
    "unregistered-context-type",
    "`container.scope(context={T: obj})` with a type not in `context_types`",
    UsageError,
    "is not one of this container's context types",
    "Container(context_types=[...])",
    ("Tenant",),
)
async def _() -> Any:
    async with Container() as container, container.scope(context={Tenant: Tenant()}):
        pass


@hostile(
    "context-type-not-a-type",
    "`Container(context_types=[42])`: something that is not a type",
    DeclarationError,
    "got 42, which is not a type",
    "context_types=[Request]",
    (),
)
async def _() -> Any:
    def root(x: int) -> int:
        return x

    async with Container(context_types=[42]) as container:  # type: ignore[list-item]
        return await container.call(root, x=1)


@hostile(
    "extra-dependency-not-a-marker",
    "`Container(dependencies=[verify])`: a bare callable instead of `Depends(verify)`",
    DeclarationError,
    "is not Depends(<callable>)",
    "dependencies=[Depends(verify)]",
    ("ok",),
)
async def _() -> Any:
    Container(dependencies=[ok])


@hostile(
    "extra-dependency-without-callable",
    "`container.compile(f, dependencies=[Depends()])`",
    DeclarationError,
    "is not Depends(<callable>)",
    "dependencies=[Depends(verify)]",
    ("Depends()",),
)
async def _() -> Any:
    async with Container() as container:
        container.compile(ok, dependencies=[Depends()])


# -- scopes and containers used out of order -------------------------------------------


@hostile(
    "scope-not-entered",
    "`container.scope().call(f)` without `async with`",
    UsageError,
    "scope.call() on a scope that is not entered yet",
    "use `async with container.scope() as scope:`",
    ("ok",),
)
async def _() -> Any:
    async with Container() as container:
        return await container.scope().call(ok)


@hostile(
    "scope-closed",
    "calling a scope after its `async with` block",
    UsageError,
    "scope.call() on a scope that is closed",
    "use `async with container.scope() as scope:`",
    ("ok",),
)
async def _() -> Any:
    async with Container() as container:
        async with container.scope() as scope:
            pass
        return await scope.call(ok)


@hostile(
    "scope-reentered",
    "entering one `Scope` twice",
    UsageError,
    "this scope was already entered",
    "open a new one with container.scope()",
    (),
)
async def _() -> Any:
    async with Container() as container:
        scope = container.scope()
        async with scope, scope:
            pass


@hostile(
    "scope-of-closed-container",
    "opening a scope of a container that has exited",
    UsageError,
    "the container is closed",
    "use `async with Container() as container:`",
    (),
)
async def _() -> Any:
    async with Container() as container:
        pass
    async with container.scope():
        pass


async def outliving_gen() -> AsyncIterator[int]:
    yield 1


@hostile(
    "scope-outlives-container",
    "calling a scope that is still open after its container exited",
    UsageError,
    "on a scope whose container is closed",
    "async with",
    ("h_outlive",),
)
async def _() -> Any:
    async def h_outlive(x: int = Depends(outliving_gen, scope="app")) -> int:
        return x

    async with Container() as container:
        scope = container.scope()
        await scope.__aenter__()
    try:
        return await scope.call(h_outlive)
    finally:
        await scope.__aexit__(None, None, None)


@hostile(
    "container-not-entered",
    "`Container().call(f)` without `async with`",
    UsageError,
    "the container is not entered yet",
    "use `async with Container() as container:`",
    (),
)
async def _() -> Any:
    return await Container().call(ok)


@hostile(
    "container-closed",
    "calling a container after its `async with` block",
    UsageError,
    "the container is closed",
    "use `async with Container() as container:`",
    (),
)
async def _() -> Any:
    async with Container() as container:
        pass
    return await container.call(ok)


@hostile(
    "container-reentered",
    "entering one `Container` twice",
    UsageError,
    "this container was already entered",
    "create a new Container()",
    (),
)
async def _() -> Any:
    container = Container()
    async with container:
        pass
    async with container:
        pass


# -- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda case: case.id)
async def test_hostile_input_gets_a_precise_error(case: Hostile) -> None:
    """Each misuse is answered, within seconds (never a hang), by its documented
    exception, a :class:`DependencyError` subclass, never a bare internal one; the
    message says what is wrong, names where (the callables on the dependency path,
    the parameter) and says how to fix it."""
    with pytest.raises(BaseException) as info:
        with anyio.fail_after(3):
            await case.trigger()
    exc = info.value
    assert isinstance(exc, case.error), f"expected {case.error.__name__}, got {exc!r}"
    assert isinstance(exc, DependencyError), f"a bare {type(exc).__name__}: {exc}"
    message = str(exc)
    assert case.excerpt in message, message
    for name in case.names:
        assert name in message, f"{name!r} not named in:\n{message}"
    assert exc.hint, f"no fix in:\n{message}"
    assert f"  fix: {exc.hint}" in message
    assert case.fix in exc.hint, message


def test_catalogue_is_large_and_unique() -> None:
    """At least 30 distinct misuses, each with a unique id."""
    ids = [case.id for case in CATALOGUE]
    assert len(ids) >= 30
    assert len(ids) == len(set(ids))


def test_errors_page_lists_the_catalogue() -> None:
    """``docs/errors.md`` has one table row per catalogue entry (and no other),
    naming the same exception class."""
    page = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
    rows: dict[str, str] = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([a-z0-9-]+)`\s*\|", line)
        if match:
            rows[match.group(1)] = line
    assert set(rows) == {case.id for case in CATALOGUE}
    for case in CATALOGUE:
        assert f"`{case.error.__name__}`" in rows[case.id], (case.id, rows[case.id])


def test_partial_and_wraps_are_not_hostile() -> None:
    """Guard against over-eager checks: ``functools.partial`` and ``functools.wraps``
    dependables are valid and compile."""

    def base(a: int, b: int = 2) -> int:
        return a + b

    @functools.wraps(base)
    def wrapped(**kwargs: Any) -> int:
        return base(**kwargs)

    def root(
        x: int = Depends(functools.partial(base, a=1)), y: int = Depends(wrapped)
    ) -> int:
        return x + y

    Container().compile(root)


def _gated_conn() -> tuple[
    list[str], anyio.Event, anyio.Event, Callable[[], AsyncIterator[str]]
]:
    """A request-scoped ``yield`` dependency whose setup starts (``setup_started``)
    and then waits for ``release``; it logs its setup and its teardown."""
    log: list[str] = []
    setup_started = anyio.Event()
    release = anyio.Event()

    async def conn() -> AsyncIterator[str]:
        setup_started.set()
        await release.wait()
        log.append("setup")
        try:
            yield "conn"
        finally:
            log.append("teardown")

    return log, setup_started, release, conn


async def test_scope_closed_with_a_call_in_flight_leaks_nothing() -> None:
    """Closing a scope while another task's ``scope.call`` is still setting up a
    request-scoped ``yield`` dependency: whatever the in-flight call gets (its value,
    or a :class:`UsageError`), a setup that completes is torn down exactly once,
    at the latest when the container exits; nothing is left open."""
    log, setup_started, release, conn = _gated_conn()

    async def handler(c: str = Depends(conn)) -> str:
        return c

    outcome: list[object] = []
    with anyio.fail_after(5):
        async with Container() as container, anyio.create_task_group() as tg:
            scope = container.scope()
            await scope.__aenter__()

            async def in_flight() -> None:
                try:
                    outcome.append(await scope.call(handler))
                except UsageError as exc:
                    outcome.append(exc)

            tg.start_soon(in_flight)
            await setup_started.wait()
            await scope.__aexit__(None, None, None)  # the call is still running
            release.set()
    assert len(outcome) == 1
    assert outcome[0] == "conn" or isinstance(outcome[0], UsageError), outcome
    assert log.count("setup") == log.count("teardown"), log


@pytest.mark.parametrize("entry", ["call", "call_in"])
async def test_a_call_failing_after_its_scope_closed_leaves_nothing_set_up(
    entry: str,
) -> None:
    """A call whose scope is closed under it, and which then fails after setting up a
    request-scoped ``yield`` dependency: that dependency is torn down once, before
    the caller gets a :class:`UsageError` (its ``__context__`` the failure), the same
    through ``scope.call`` and ``scope.call_in`` (they once differed: ``call`` let
    the failure through and left the teardown undone for good)."""
    log, setup_started, release, conn = _gated_conn()

    async def fail(c: str = Depends(conn)) -> str:
        raise ValueError(c)

    async def handler(f: str = Depends(fail)) -> str:
        return f

    outcome: list[BaseException] = []
    with anyio.fail_after(5):
        async with Container() as container, anyio.create_task_group() as tg:
            scope = container.scope()
            await scope.__aenter__()

            async def in_flight() -> None:
                try:
                    if entry == "call":
                        await scope.call(handler)
                    else:
                        await scope.call_in({}, handler)
                except Exception as exc:  # what it is, is the point
                    outcome.append(exc)

            tg.start_soon(in_flight)
            await setup_started.wait()
            await scope.__aexit__(None, None, None)  # the call is still running
            release.set()
            await anyio.wait_all_tasks_blocked()
            assert log == ["setup", "teardown"]  # before the container exits
    assert len(outcome) == 1
    assert isinstance(outcome[0], UsageError), outcome
    assert isinstance(outcome[0].__context__, ValueError)
