"""The public API: ``__all__`` and the contract's names and signatures (design API)."""

from __future__ import annotations
import __future__

import inspect
import types

import anydepends

CONTRACT = {
    "Container",
    "CycleError",
    "DeclarationError",
    "DependencyError",
    "Depends",
    "LifetimeError",
    "MissingContextError",
    "MissingValuesError",
    "Plan",
    "Scope",
    "Security",
    "SecurityScopes",
    "UsageError",
    "YieldError",
}


def public_names() -> set[str]:
    """Names the package namespace exposes: no underscore, not a submodule, not the
    ``from __future__ import annotations`` feature flag."""
    return {
        name
        for name, obj in vars(anydepends).items()
        if not name.startswith("_")
        and not isinstance(obj, (types.ModuleType, __future__._Feature))
    }


def test_all_is_sorted_and_unique() -> None:
    """``__all__`` is sorted and has no duplicates."""
    assert anydepends.__all__ == sorted(anydepends.__all__)
    assert len(set(anydepends.__all__)) == len(anydepends.__all__)


def test_all_equals_the_public_names() -> None:
    """``__all__`` lists exactly the public names of the package."""
    assert set(anydepends.__all__) == public_names()


def test_the_contract_names_are_exported() -> None:
    """Every name of the API contract is in ``__all__``."""
    assert set(anydepends.__all__) >= CONTRACT


def test_public_objects_show_the_package_as_their_module() -> None:
    """Public classes and functions say ``anydepends``, not a private module."""
    for name in anydepends.__all__:
        obj = getattr(anydepends, name)
        assert getattr(obj, "__module__", "anydepends") == "anydepends", name


def test_every_error_is_a_dependency_error() -> None:
    """Every exported exception class derives from DependencyError."""
    errors = [
        getattr(anydepends, name)
        for name in anydepends.__all__
        if name.endswith("Error")
    ]
    assert len(errors) == 8
    for error in errors:
        assert issubclass(error, anydepends.DependencyError), error


def test_depends_signature() -> None:
    """``Depends(dependency=None, *, use_cache=True, scope=None, max_concurrency=None,
    ...)``: FastAPI's parameters, keyword-only options."""
    params = inspect.signature(anydepends.Depends).parameters
    assert list(params)[:5] == [
        "dependency",
        "use_cache",
        "scope",
        "max_concurrency",
        "sync_to_thread",
    ]
    assert params["dependency"].default is None
    assert params["use_cache"].default is True
    assert params["scope"].default is None
    assert params["max_concurrency"].default is None
    for name in list(params)[1:]:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_security_signature() -> None:
    """``Security(dependency=None, *, scopes=None, use_cache=True, ...)``."""
    params = inspect.signature(anydepends.Security).parameters
    assert list(params)[:3] == ["dependency", "scopes", "use_cache"]
    assert params["scopes"].default is None
    assert params["use_cache"].default is True
    for name in list(params)[1:]:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_container_signature() -> None:
    """``Container(*, sync_to_thread=True, sequential=False, context_types=())``."""
    params = inspect.signature(anydepends.Container).parameters
    assert params["sync_to_thread"].default is True
    assert params["sequential"].default is False
    assert tuple(params["context_types"].default) == ()
    for param in params.values():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY


def test_call_takes_the_callable_positionally_only() -> None:
    """``call(fn, /, **values)``: any value name is free, even ``fn``."""
    for method in (anydepends.Container.call, anydepends.Scope.call):
        params = list(inspect.signature(method).parameters.values())
        assert params[1].kind is inspect.Parameter.POSITIONAL_ONLY
        assert params[-1].kind is inspect.Parameter.VAR_KEYWORD


async def test_a_value_may_be_named_like_the_callable_parameter() -> None:
    """Because ``fn`` is positional-only, a dependable may take a value named ``fn``
    (or ``self``)."""

    async def root(fn: str, self: int) -> tuple[str, int]:
        return fn, self

    async with anydepends.Container() as container:
        assert await container.call(root, fn="x", self=1) == ("x", 1)
        async with container.scope() as scope:
            assert await scope.call(root, fn="y", self=2) == ("y", 2)
