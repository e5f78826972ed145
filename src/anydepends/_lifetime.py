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


class Lifetime(enum.IntEnum):
    """How long a node's value lives: ``FUNCTION < REQUEST < APP``.

    ``str()`` and f-strings give the word used in declarations and messages
    (``"function"``, ``"request"``, ``"app"``).
    """

    FUNCTION = 0  #: until the call that made it returns (``scope="function"``)
    REQUEST = 1  #: until the :class:`Scope` exits (the default)
    APP = 2  #: until the :class:`Container` exits (``scope="app"``)

    @property
    def name_text(self) -> str:
        """``"function"``, ``"request"`` or ``"app"``."""
        return _TEXT[self]

    @property
    def memo(self) -> int:
        """The engine's memo slot: 0 the Scope, 1 the call, 2 the Container."""
        return _MEMO[self]

    def __str__(self) -> str:
        return _TEXT[self]

    def __format__(self, spec: str) -> str:
        return format(_TEXT[self], spec)


_TEXT: Final = ("function", "request", "app")
_MEMO: Final = (1, 0, 2)
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
