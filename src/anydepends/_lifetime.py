"""Lifetimes: how long a dependency's value (and its teardown) lives.

Three lifetimes, ordered so that "lives shorter" is ``<``: a call's own values
(``scope="function"``), a :class:`Scope`'s (``"request"``, the default) and the
container's (``"app"``). The rules about which may depend on which live here, as plain
functions; the compiler applies them and words the errors.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["Lifetime", "declared", "may_depend_on"]


class Lifetime(enum.StrEnum):
    """How long a node's value lives: ``FUNCTION < REQUEST < APP``.

    Each member is the word used in declarations and messages (``"function"``,
    ``"request"``, ``"app"``) and compares equal to it, as the plain strings that
    ``Node.lifetime`` held before did; ordering is by how long the value lives, not
    alphabetical.
    """

    FUNCTION = "function"  #: until the call that made it returns (``scope="function"``)
    REQUEST = "request"  #: until the :class:`Scope` exits (the default)
    APP = "app"  #: until the :class:`Container` exits (``scope="app"``)

    @property
    def rank(self) -> int:
        """0, 1, 2 from the shortest-lived to the longest."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Lifetime):
            return _RANK[self] < _RANK[other]
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Lifetime):
            return _RANK[self] <= _RANK[other]
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Lifetime):
            return _RANK[self] > _RANK[other]
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Lifetime):
            return _RANK[self] >= _RANK[other]
        return NotImplemented


_RANK: Final = {Lifetime.FUNCTION: 0, Lifetime.REQUEST: 1, Lifetime.APP: 2}
_DECLARED: Final = {
    None: Lifetime.REQUEST,
    "request": Lifetime.REQUEST,
    "function": Lifetime.FUNCTION,
    "app": Lifetime.APP,
}


def declared(scope: str | None) -> Lifetime:
    """The lifetime of a declaration's ``scope=`` (``None`` is the request)."""
    return _DECLARED[scope]


def may_depend_on(parent: Lifetime, child: Lifetime, parent_is_generator: bool) -> bool:
    """Whether a *parent* may take a direct dependency on a *child*.

    Nothing app-scoped depends on anything shorter (it would outlive its input). A
    request-scoped ``yield`` dependency may not take an explicit ``scope="function"``
    one either: that one is torn down when the call returns, before its dependent's
    teardown runs (FastAPI's rule).
    """
    if parent is Lifetime.APP:
        return child is Lifetime.APP
    return not (
        parent is Lifetime.REQUEST
        and parent_is_generator
        and child is Lifetime.FUNCTION
    )
