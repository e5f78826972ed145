"""Lifetimes: their order, their names, and which may depend on which."""

from __future__ import annotations

import pytest

from anydepends import Container, Depends
from anydepends._lifetime import Lifetime, declared, may_depend_on

FUNCTION, REQUEST, APP = Lifetime.FUNCTION, Lifetime.REQUEST, Lifetime.APP


def test_shorter_lived_is_smaller() -> None:
    """``FUNCTION < REQUEST < APP``: "lives shorter" is ``<``."""
    assert FUNCTION < REQUEST < APP
    assert sorted([APP, FUNCTION, REQUEST]) == [FUNCTION, REQUEST, APP]


def test_names_as_declared() -> None:
    """``str()`` and f-strings give the word of ``Depends(scope=...)``, and each
    lifetime equals that word (``Node.lifetime`` compared with strings before)."""
    assert [str(x) for x in Lifetime] == ["function", "request", "app"]
    assert [x == x.value for x in Lifetime] == [True, True, True]
    assert APP == "app" and FUNCTION != "request"
    assert f"{APP} / {REQUEST:>8}" == "app /  request"


@pytest.mark.parametrize(
    ("scope", "lifetime"),
    [(None, REQUEST), ("request", REQUEST), ("function", FUNCTION), ("app", APP)],
)
def test_declared(scope: str | None, lifetime: Lifetime) -> None:
    """A declaration's ``scope=`` is its lifetime; none is the request."""
    assert declared(scope) is lifetime


@pytest.mark.parametrize("parent_is_generator", [False, True])
@pytest.mark.parametrize("parent", list(Lifetime))
@pytest.mark.parametrize("child", list(Lifetime))
def test_may_depend_on(
    parent: Lifetime, child: Lifetime, parent_is_generator: bool
) -> None:
    """Nothing app-scoped depends on anything shorter; a request-scoped yield
    dependency does not depend on a function-scoped one; all else is allowed."""
    forbidden = (parent is APP and child is not APP) or (
        parent is REQUEST and parent_is_generator and child is FUNCTION
    )
    assert may_depend_on(parent, child, parent_is_generator) is not forbidden


def test_nodes_carry_their_lifetime() -> None:
    """A plan's nodes carry a Lifetime (the root's is the call's: function)."""

    async def leaf() -> int:
        return 1

    async def root(
        a: int = Depends(leaf, scope="app"),
        b: int = Depends(leaf, scope="function"),
        c: int = Depends(leaf),
    ) -> None: ...

    plan = Container().compile(root)
    assert [node.lifetime for node in plan.nodes] == [APP, FUNCTION, REQUEST, FUNCTION]
