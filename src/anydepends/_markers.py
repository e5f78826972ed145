"""The declaration markers: ``Depends``, ``Security`` and ``SecurityScopes``.

FastAPI's own markers (``fastapi.Depends(...)``, ``fastapi.Security(...)``) and its
``SecurityScopes`` class are recognised too, through ``sys.modules``: nothing here ever
imports FastAPI, and if the program never imported it no object can be one of its
markers.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

from ._errors import DeclarationError

__all__ = [
    "Dependency",
    "Depends",
    "LifetimeName",
    "Security",
    "SecurityDependency",
    "SecurityScopes",
    "as_marker",
    "is_security_scopes_type",
]

LifetimeName = Literal["function", "request", "app"]
_LIFETIMES: Final = (None, "function", "request", "app")


class Dependency:
    """A declared dependency: what ``Depends(...)`` returns.

    Instances are immutable and hashable (by value, like FastAPI's). Each carries its
    own concurrency token, so ``max_concurrency`` is a limit per declaration object,
    shared wherever that same object is reused (an ``Annotated`` alias, say).
    """

    __slots__ = (
        "_limit_token",
        "dependency",
        "max_concurrency",
        "scope",
        "sync_to_thread",
        "use_cache",
    )

    dependency: Callable[..., Any] | None
    use_cache: bool
    scope: LifetimeName | None
    max_concurrency: int | None
    sync_to_thread: bool | None
    _limit_token: object

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: LifetimeName | None = None,
        max_concurrency: int | None = None,
        sync_to_thread: bool | None = None,
        _limit_token: object = None,
    ) -> None:
        if scope not in _LIFETIMES:
            msg = f"Depends(scope={scope!r}) is not a lifetime"
            raise DeclarationError(
                msg,
                callable=_name(dependency),
                hint='use one of None, "function", "request" or "app"',
            )
        limit: object = max_concurrency
        if limit is not None and (type(limit) is not int or limit < 1):
            msg = f"Depends(max_concurrency={max_concurrency!r}) is not a positive int"
            raise DeclarationError(
                msg,
                callable=_name(dependency),
                hint="pass a positive int, or None for no limit",
            )
        _set = object.__setattr__
        _set(self, "dependency", dependency)
        _set(self, "use_cache", bool(use_cache))
        _set(self, "scope", scope)
        _set(self, "max_concurrency", max_concurrency)
        _set(self, "sync_to_thread", sync_to_thread)
        _set(self, "_limit_token", object() if _limit_token is None else _limit_token)

    def __setattr__(self, name: str, value: object) -> None:
        msg = f"{type(self).__name__} is immutable"
        raise AttributeError(msg)

    def _fields(self) -> tuple[object, ...]:
        return (
            self.dependency,
            self.use_cache,
            self.scope,
            self.max_concurrency,
            self.sync_to_thread,
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Dependency)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), *self._fields()))

    def __repr__(self) -> str:
        parts = [_name(self.dependency) if self.dependency is not None else ""]
        if not self.use_cache:
            parts.append("use_cache=False")
        if self.scope is not None:
            parts.append(f"scope={self.scope!r}")
        if self.max_concurrency is not None:
            parts.append(f"max_concurrency={self.max_concurrency}")
        if self.sync_to_thread is not None:
            parts.append(f"sync_to_thread={self.sync_to_thread}")
        return f"Depends({', '.join(p for p in parts if p)})"

    @property
    def own_scopes(self) -> tuple[str, ...]:
        """The security scopes this declaration adds (none for plain ``Depends``)."""
        return ()

    def with_dependency(self, dependency: Callable[..., Any]) -> Dependency:
        """A copy naming *dependency*, keeping this object's concurrency token."""
        return Dependency(
            dependency,
            use_cache=self.use_cache,
            scope=self.scope,
            max_concurrency=self.max_concurrency,
            sync_to_thread=self.sync_to_thread,
            _limit_token=self._limit_token,
        )


class SecurityDependency(Dependency):
    """A declared dependency with security scopes: what ``Security(...)`` returns."""

    __slots__ = ("scopes",)

    scopes: tuple[str, ...]

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        scopes: Sequence[str] | None = None,
        use_cache: bool = True,
        scope: LifetimeName | None = None,
        max_concurrency: int | None = None,
        sync_to_thread: bool | None = None,
        _limit_token: object = None,
    ) -> None:
        if isinstance(scopes, str):
            msg = f"Security(scopes={scopes!r}) must be a sequence of strings"
            raise DeclarationError(
                msg, callable=_name(dependency), hint=f"write scopes=[{scopes!r}]"
            )
        super().__init__(
            dependency,
            use_cache=use_cache,
            scope=scope,
            max_concurrency=max_concurrency,
            sync_to_thread=sync_to_thread,
            _limit_token=_limit_token,
        )
        object.__setattr__(self, "scopes", tuple(scopes or ()))

    def _fields(self) -> tuple[object, ...]:
        return (*super()._fields(), self.scopes)

    def __repr__(self) -> str:
        return f"Security({super().__repr__()[8:-1]}, scopes={list(self.scopes)!r})"

    @property
    def own_scopes(self) -> tuple[str, ...]:
        """The security scopes this declaration adds to those of its parents."""
        return self.scopes

    def with_dependency(self, dependency: Callable[..., Any]) -> SecurityDependency:
        """A copy naming *dependency*, keeping scopes and the concurrency token."""
        return SecurityDependency(
            dependency,
            scopes=self.scopes,
            use_cache=self.use_cache,
            scope=self.scope,
            max_concurrency=self.max_concurrency,
            sync_to_thread=self.sync_to_thread,
            _limit_token=self._limit_token,
        )


def Depends(
    dependency: Callable[..., Any] | None = None,
    *,
    use_cache: bool = True,
    scope: LifetimeName | None = None,
    max_concurrency: int | None = None,
    sync_to_thread: bool | None = None,
) -> Any:
    """Declare a dependency on *dependency* (FastAPI's ``Depends``, plus lifetimes).

    Use it as a default (``db = Depends(get_db)``) or in ``Annotated``
    (``db: Annotated[DB, Depends(get_db)]``); with no callable the annotation is the
    dependency. It returns ``Any`` so type checkers accept it as any parameter's
    default.

    Args:
        dependency: The dependable: a function, generator, class or callable object.
        use_cache: Reuse a value already computed for the same cache key in the scope.
            ``False`` always calls, and seeds the memo when the key is absent.
        scope: The lifetime: ``"function"`` (torn down when the call that made it
            returns), ``"request"`` (when the :class:`Scope` exits; the default for
            ``yield`` dependencies) or ``"app"`` (created at most once per container,
            torn down when it exits).
        max_concurrency: At most this many of this declaration run at once across all
            scopes of a container; a ``yield`` dependency holds its permit until its
            teardown.
        sync_to_thread: Run a sync dependable in a worker thread (``True``) or inline on
            the event loop (``False``); ``None`` takes the container's setting.
    """
    return Dependency(
        dependency,
        use_cache=use_cache,
        scope=scope,
        max_concurrency=max_concurrency,
        sync_to_thread=sync_to_thread,
    )


def Security(
    dependency: Callable[..., Any] | None = None,
    *,
    scopes: Sequence[str] | None = None,
    use_cache: bool = True,
    scope: LifetimeName | None = None,
    max_concurrency: int | None = None,
    sync_to_thread: bool | None = None,
) -> Any:
    """Declare a dependency with security *scopes* (FastAPI's ``Security``).

    The dependable and everything below it see the accumulated scopes through a
    parameter annotated with :class:`SecurityScopes`. Other arguments are as for
    :func:`Depends`.
    """
    return SecurityDependency(
        dependency,
        scopes=scopes,
        use_cache=use_cache,
        scope=scope,
        max_concurrency=max_concurrency,
        sync_to_thread=sync_to_thread,
    )


class SecurityScopes:
    """The security scopes visible to a dependable, injected by type.

    Attributes:
        scopes: The scopes, parents' first, each once.
        scope_str: The scopes joined by spaces (as in an OAuth2 ``scope`` field).
    """

    __slots__ = ("scope_str", "scopes")

    def __init__(self, scopes: list[str] | None = None) -> None:
        self.scopes: list[str] = scopes or []
        self.scope_str: str = " ".join(self.scopes)

    def __repr__(self) -> str:
        return f"SecurityScopes({self.scopes!r})"


def as_marker(obj: object) -> Dependency | None:
    """Return *obj* as one of our markers if it is ours or FastAPI's, else ``None``."""
    if isinstance(obj, Dependency):
        return obj
    params = sys.modules.get("fastapi.params")
    if params is None or not isinstance(obj, params.Depends):
        return None
    # A FastAPI marker: copy its fields. Its concurrency token (0.163+) keys the limit,
    # so reusing one fastapi.Depends object shares a limit exactly as FastAPI does.
    token = getattr(obj, "_concurrency", None) or obj
    common: dict[str, Any] = {
        "use_cache": getattr(obj, "use_cache", True),
        "scope": getattr(obj, "scope", None),
        "max_concurrency": getattr(obj, "max_concurrency", None),
        "sync_to_thread": getattr(obj, "sync_to_thread", None),
        "_limit_token": token,
    }
    dependency = getattr(obj, "dependency", None)
    if isinstance(obj, params.Security):
        return SecurityDependency(
            dependency, scopes=getattr(obj, "scopes", None), **common
        )
    return Dependency(dependency, **common)


def is_security_scopes_type(annotation: object) -> bool:
    """Whether *annotation* is our ``SecurityScopes`` or FastAPI's, or a subclass."""
    if not isinstance(annotation, type):
        return False
    if issubclass(annotation, SecurityScopes):
        return True
    oauth2 = sys.modules.get("fastapi.security.oauth2")
    theirs = getattr(oauth2, "SecurityScopes", None)
    return theirs is not None and issubclass(annotation, theirs)


def is_security_scheme(call: object) -> bool:
    """Whether *call* is a FastAPI security scheme instance (``OAuth2PasswordBearer()``
    and the like), which FastAPI >= 0.124 counts as using security scopes."""
    base = sys.modules.get("fastapi.security.base")
    scheme = getattr(base, "SecurityBase", None)
    while isinstance(call, functools.partial):
        call = call.func
    return scheme is not None and isinstance(call, scheme)


def _name(obj: object) -> str:
    """The qualified name of a callable, for messages."""
    return getattr(obj, "__qualname__", None) or repr(obj)
