"""String annotations evaluated without ``eval``: the same values, calls and errors.

``_annotations.evaluate(text, namespace)`` must behave as ``eval(text, namespace)``
(which ``inspect.signature(eval_str=True)`` uses), except that a top-level
``Annotated[T, ...]`` over a plain class may come back split instead of built.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Generic, Optional, get_args, get_origin

import pytest

from anydepends import Depends, Security
from anydepends._annotations import Split, _parse, evaluate


def provider() -> int:
    return 1


class Thing:
    pass


def namespace() -> dict[str, Any]:
    """A module-like namespace for the annotation texts below."""
    ns: dict[str, Any] = {
        "Annotated": Annotated,
        "Any": Any,
        "Optional": Optional,
        "Generic": Generic,
        "Depends": Depends,
        "Security": Security,
        "provider": provider,
        "Thing": Thing,
        "typing": typing,
        "mod": types.SimpleNamespace(Thing=Thing, provider=provider),
    }
    exec("", ns)  # adds __builtins__, as a module has
    return ns


def same(found: Any, expected: Any) -> bool:
    """Whether an evaluated annotation is what eval gave (a split is compared with
    the alias's origin and metadata)."""
    if isinstance(found, Split):
        return get_origin(expected) is Annotated and (
            found.origin,
            *found.metadata,
        ) == get_args(expected)
    return bool(found == expected)


@pytest.mark.parametrize(
    "text",
    [
        "int",
        "len",  # a builtin
        "Thing",
        "mod.Thing",
        "typing.Optional[int]",
        "Optional[Thing]",
        "list[int]",
        "dict[str, list[int]]",
        "tuple[int, ...]",  # literal: eval's job
        "Annotated[int, Depends(provider)]",
        "Annotated[Any, Depends(provider)]",
        "Annotated[Thing, Security(provider)]",
        "typing.Annotated[mod.Thing, Depends(mod.provider)]",
        "  Annotated [ int , Depends ( provider ) ] ",
        "Annotated[int, Depends(provider),]",
        "Annotated[list[int], Depends(provider)]",
        "Annotated[Optional[int], Depends(provider)]",  # built: typing's own alias
        "Annotated[int, Depends(provider), Depends(Thing)]",
        "Annotated[int, Depends(provider, use_cache=False)]",  # keywords: eval
        "Annotated[int, 'a note']",  # a string: eval
        "Annotated[Annotated[int, Depends(provider)], 'outer']",
        "Depends(provider)",
        "Depends()",
        "provider()",
        "not int",  # an operator: eval's job
        "None",
        "__debug__",
        "int | None",
        "Optional[None]",
    ],
)
def test_same_value_as_eval(text: str) -> None:
    """Every supported shape gives what eval gives; others go to eval."""
    assert same(evaluate(text, namespace()), eval(text, namespace()))


@pytest.mark.parametrize(
    "text",
    [
        "nowhere",
        "Annotated[int, Depends(nowhere)]",
        "mod.nowhere",
        "1 / 0",
        "int[",
        "Annotated[int]",
        "Annotated[5, Depends(provider)]",
        "Annotated[Generic, Depends(provider)]",
        "provider(1)",
        "Thing[int]",
        "",
        "int int",
        "Annotated[, Depends(provider)]",
        "Annotated[int,, Depends(provider)]",
        "f()()",
    ],
)
def test_same_error_as_eval(text: str) -> None:
    """Unknown names, failing calls and subscriptions and text that is not Python
    raise what eval raises, with the same message."""
    with pytest.raises(Exception) as expected:
        eval(text, namespace())
    with pytest.raises(type(expected.value)) as found:
        evaluate(text, namespace())
    assert str(found.value) == str(expected.value)


def test_calls_happen_once_and_in_evals_order() -> None:
    """Names are looked up and calls made in eval's order, each exactly once."""
    log: list[str] = []

    def factory(value: Any) -> Any:
        log.append(f"call {value.__name__}")
        return Depends(value)

    class Recording(dict[str, Any]):
        pass

    ns = namespace()
    ns["factory"] = factory
    result = evaluate("Annotated[Thing, factory(provider)]", ns)
    assert isinstance(result, Split)
    assert result.origin is Thing
    assert result.metadata == (Depends(provider),)
    assert log == ["call provider"]
    log.clear()
    # A namespace that is not a plain dict (lookups could run code): eval itself.
    recorded = Recording(ns)
    assert same(
        evaluate("Annotated[Thing, factory(provider)]", recorded),
        Annotated[Thing, Depends(provider)],
    )
    assert log == ["call provider"]


def test_the_subset_parser() -> None:
    """Only names, dotted names, subscriptions and positional calls are parsed; the
    common ``A[T, M(f)]`` shape in one step."""
    assert _parse("Annotated[int, Depends(f)]") == (
        "common",
        "Annotated",
        "int",
        "Depends",
        "f",
    )
    assert _parse("a.b[c, d(e,)]") == (
        "sub",
        ("attr", ("name", "a"), "b"),
        (("name", "c"), ("call", ("name", "d"), (("name", "e"),))),
        True,
    )
    assert _parse("x[y]") == ("sub", ("name", "x"), (("name", "y"),), False)
    assert _parse("x[y,]") == ("sub", ("name", "x"), (("name", "y"),), True)
    for text in ["x[]", "x(a=1)", "x[1]", "x.", "x y", "None", "café", "x\n", "a[b"]:
        assert _parse(text) is None
