"""Introspection: a callable's kind and its parameters (docs/semantics.md §1, §2).

``introspect`` is internal, but it is the phase that decides what every dependable
*is*; these tests pin its answers for each kind of dependable and parameter.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import pytest

from anydepends import CallKind, DeclarationError, Depends, Security, SecurityScopes
from anydepends._introspect import EMPTY, ParamKind, introspect, qualname

from . import helpers
from .helpers import (
    AsyncCallable,
    AsyncGenCallable,
    GenCallable,
    Pager,
    SyncCallable,
    Thing,
    add,
    async_add,
    async_gen_value,
    async_value,
    async_wrapper_of_sync,
    sync_gen_value,
    sync_value,
    sync_wrapper_of_async,
)

if TYPE_CHECKING:
    from decimal import Decimal  # only for type checkers: unresolvable at run time


# -- kinds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        pytest.param(async_value, CallKind.ASYNC, id="async-fn"),
        pytest.param(sync_value, CallKind.SYNC, id="sync-fn"),
        pytest.param(async_gen_value, CallKind.ASYNC_GEN, id="async-gen"),
        pytest.param(sync_gen_value, CallKind.SYNC_GEN, id="sync-gen"),
        pytest.param(Thing, CallKind.SYNC, id="class"),
        pytest.param(AsyncCallable(), CallKind.ASYNC, id="instance-async"),
        pytest.param(SyncCallable(), CallKind.SYNC, id="instance-sync"),
        pytest.param(GenCallable(), CallKind.SYNC_GEN, id="instance-gen"),
        pytest.param(AsyncGenCallable(), CallKind.ASYNC_GEN, id="instance-async-gen"),
        pytest.param(functools.partial(add, 1), CallKind.SYNC, id="partial-sync"),
        pytest.param(
            functools.partial(async_add, b=1), CallKind.ASYNC, id="partial-async"
        ),
        pytest.param(
            functools.partial(functools.partial(async_add, b=1), a=2),
            CallKind.ASYNC,
            id="partial-of-partial",
        ),
        pytest.param(
            async_wrapper_of_sync(sync_value), CallKind.ASYNC, id="wraps-async-of-sync"
        ),
        pytest.param(
            sync_wrapper_of_async(async_value), CallKind.ASYNC, id="wraps-sync-of-async"
        ),
        pytest.param(AsyncCallable().__call__, CallKind.ASYNC, id="bound-method"),
    ],
)
def test_kinds(call: Any, kind: CallKind) -> None:
    """Every kind of dependable is classified as FastAPI does (docs/semantics.md §2):
    partials and ``functools.wraps`` wrappers are looked through (async if either
    layer is), callable instances by their ``__call__``."""
    assert introspect(call).kind is kind


class _DecoratedAsyncCall:
    @sync_wrapper_of_async
    async def __call__(self) -> int:
        return 1


class _DecoratedGenCall:
    @sync_wrapper_of_async
    def __call__(self) -> Iterator[int]:
        yield 1


class _DecoratedAsyncGenCall:
    @sync_wrapper_of_async
    async def __call__(self) -> AsyncIterator[int]:
        yield 1


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        pytest.param(_DecoratedAsyncCall(), CallKind.ASYNC, id="async"),
        pytest.param(_DecoratedGenCall(), CallKind.SYNC_GEN, id="gen"),
        pytest.param(_DecoratedAsyncGenCall(), CallKind.ASYNC_GEN, id="async-gen"),
    ],
)
def test_instance_with_a_decorated_call(call: Any, kind: CallKind) -> None:
    """A callable instance whose ``__call__`` is a ``functools.wraps`` sync wrapper is
    classified by the wrapped method, as FastAPI does (its test_dependency_wrapped):
    awaited when it wraps an async method, a generator when it wraps one."""
    assert introspect(call).kind is kind


def test_a_class_is_never_async_or_a_generator() -> None:
    """A class is called for its constructor: SYNC even with an async or generator
    ``__call__`` (FastAPI #14458)."""
    assert introspect(AsyncCallable).kind is CallKind.SYNC
    assert introspect(AsyncGenCallable).kind is CallKind.SYNC
    assert introspect(GenCallable).kind is CallKind.SYNC


def test_generator_kinds_have_teardown() -> None:
    """Only the two generator kinds have a teardown."""
    assert [k.is_generator for k in CallKind] == [False, False, True, True]


# -- parameters ------------------------------------------------------------------------


def test_parameter_classification() -> None:
    """Markers (default or Annotated) are dependencies; ``SecurityScopes`` is injected;
    anything else is a value, with its default kept."""

    def f(
        a: Annotated[str, Depends(async_value)],
        b: str = Depends(sync_value),
        ss: SecurityScopes = SecurityScopes(),
        plain: int = 3,
        required: str = "x",
    ) -> None: ...

    params = {p.name: p for p in introspect(f).params}
    assert params["a"].kind is ParamKind.DEPENDENCY
    assert params["a"].marker == Depends(async_value)
    assert params["a"].annotation is str
    assert params["b"].kind is ParamKind.DEPENDENCY
    assert params["b"].marker == Depends(sync_value)
    assert params["ss"].kind is ParamKind.SECURITY_SCOPES
    assert params["plain"].kind is ParamKind.VALUE
    assert params["plain"].default == 3
    assert [p.name for p in introspect(f).params] == [
        "a",
        "b",
        "ss",
        "plain",
        "required",
    ]


def test_required_value_has_no_default() -> None:
    """A plain parameter without a default is required (its default is EMPTY)."""

    def f(token: str) -> None: ...

    (param,) = introspect(f).params
    assert param.kind is ParamKind.VALUE
    assert param.default is EMPTY


def test_last_marker_in_annotated_wins() -> None:
    """In ``Annotated[T, Depends(a), Depends(b)]`` the dependency is ``b``."""

    def f(
        x: Annotated[str, Depends(async_value), "doc", Depends(sync_value)],
    ) -> None: ...

    (param,) = introspect(f).params
    assert param.marker is not None
    assert param.marker.dependency is sync_value


def test_annotated_security_marker() -> None:
    """``Security`` in ``Annotated`` keeps its scopes."""

    def f(x: Annotated[str, Security(async_value, scopes=["a"])]) -> None: ...

    (param,) = introspect(f).params
    assert param.marker is not None
    assert param.marker.own_scopes == ("a",)


def test_annotated_without_marker_is_a_value() -> None:
    """``Annotated`` metadata that is not a marker leaves a plain value."""

    def f(x: Annotated[int, "meta"] = 5) -> None: ...

    (param,) = introspect(f).params
    assert param.kind is ParamKind.VALUE
    assert param.annotation is int
    assert param.default == 5


def test_depends_in_both_forms_is_an_error() -> None:
    """``Annotated[..., Depends(a)] = Depends(b)`` is a compile-time error."""

    def f(
        x: Annotated[str, Depends(async_value)] = Depends(sync_value),
    ) -> None: ...

    with pytest.raises(DeclarationError) as info:
        introspect(f)
    assert info.value.parameter == "x"


def test_depends_without_callable_uses_the_annotation() -> None:
    """``p: Pager = Depends()`` and ``Annotated[Pager, Depends()]`` depend on Pager."""

    def f(
        p: Pager = Depends(), q: Annotated[Pager, Depends(use_cache=False)] = 0
    ) -> None: ...

    p, q = introspect(f).params
    assert p.marker is not None and p.marker.dependency is Pager
    assert q.marker is not None and q.marker.dependency is Pager
    assert q.marker.use_cache is False


def test_depends_without_callable_or_annotation_is_an_error() -> None:
    """``Depends()`` with no annotation is an error (FastAPI falls back to Any)."""

    def f(p=Depends()) -> None: ...  # type: ignore[no-untyped-def]

    with pytest.raises(DeclarationError) as info:
        introspect(f)
    assert info.value.parameter == "p"


@pytest.mark.parametrize("annotation", [int | None, 3, "Unresolved"])
def test_depends_with_uncallable_annotation_is_an_error(annotation: Any) -> None:
    """``Depends()`` whose annotation is not callable is a compile-time error."""

    def f(p: Any = Depends()) -> None: ...

    f.__annotations__["p"] = annotation
    with pytest.raises(DeclarationError) as info:
        introspect(f)
    assert info.value.parameter == "p"


@pytest.mark.parametrize(
    "source",
    [
        "def f(a, /): ...",
        "def f(*args): ...",
        "def f(**kwargs): ...",
        "def f(a=1, /, b=2): ...",
    ],
)
def test_positional_only_and_variadic_parameters_are_errors(source: str) -> None:
    """Arguments are passed by name: positional-only and variadic parameters are
    compile-time errors naming the parameter."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(DeclarationError) as info:
        introspect(namespace["f"])
    assert info.value.parameter in {"a", "args", "kwargs"}


def test_keyword_only_parameters_are_fine() -> None:
    """Keyword-only parameters are regular named parameters."""

    def f(*, a: str = Depends(async_value), b: int = 1) -> None: ...

    assert [p.kind for p in introspect(f).params] == [
        ParamKind.DEPENDENCY,
        ParamKind.VALUE,
    ]


def test_partial_bound_arguments_are_not_parameters() -> None:
    """``functools.partial``'s bound arguments are never injected."""
    assert [p.name for p in introspect(functools.partial(add, b=2)).params] == ["a"]
    assert [p.name for p in introspect(functools.partial(add, 1)).params] == ["b"]
    nested = functools.partial(functools.partial(async_add, b=1), a=2)
    assert introspect(nested).params == ()


def test_wraps_wrapper_exposes_the_wrapped_signature() -> None:
    """A ``functools.wraps`` wrapper has the wrapped function's parameters."""
    callee = introspect(async_wrapper_of_sync(add))
    assert [p.name for p in callee.params] == ["a", "b"]


def test_string_annotations_resolve_in_the_defining_module() -> None:
    """``from __future__ import annotations`` strings resolve against the module of the
    dependable: markers in ``Annotated`` and ``Depends()`` from a class."""
    thing, pager = introspect(helpers.annotated_chain).params
    assert thing.kind is ParamKind.DEPENDENCY
    assert thing.marker is not None and thing.marker.dependency is Thing
    assert pager.marker is not None and pager.marker.dependency is Pager
    (scopes,) = introspect(helpers.needs_scopes).params
    assert scopes.kind is ParamKind.SECURITY_SCOPES


def needs_decimal(amount: Decimal, other: int = 1) -> None:
    """A dependable annotated with a name imported only under TYPE_CHECKING."""


def test_unresolvable_string_annotations_fall_back_to_strings() -> None:
    """A name imported only under ``TYPE_CHECKING`` does not break introspection
    (FastAPI falls back to the unevaluated strings): the parameters are values."""
    amount, other = introspect(needs_decimal).params
    assert amount.kind is ParamKind.VALUE
    assert amount.default is EMPTY
    assert other.default == 1


def test_not_callable_is_an_error() -> None:
    """Introspecting something that is not callable is a DeclarationError."""
    with pytest.raises(DeclarationError):
        introspect(5)  # type: ignore[arg-type]


def test_qualname() -> None:
    """Names in messages are module-qualified, for functions, partials and instances."""
    assert qualname(async_value) == "tests.helpers.async_value"
    assert qualname(functools.partial(add, 1)) == "partial(tests.helpers.add)"
    assert qualname(SyncCallable()) == "tests.helpers.SyncCallable(...)"
    assert qualname(Thing) == "tests.helpers.Thing"


def test_generators_written_as_methods() -> None:
    """Bound methods of every kind are classified like functions."""

    class Service:
        async def get(self) -> str:
            return "x"

        def gen(self) -> Iterator[str]:
            yield "x"

        async def agen(self) -> AsyncIterator[str]:
            yield "x"

    svc = Service()
    assert introspect(svc.get).kind is CallKind.ASYNC
    assert introspect(svc.gen).kind is CallKind.SYNC_GEN
    assert introspect(svc.agen).kind is CallKind.ASYNC_GEN
    assert introspect(svc.get).params == ()
