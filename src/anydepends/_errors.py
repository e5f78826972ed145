"""The errors anydepends raises about graphs, declarations, values and lifetimes.

Every error is a :class:`DependencyError`::

    DependencyError
    ├── DeclarationError     a marker or parameter that cannot be compiled
    ├── CycleError           a dependency that (indirectly) depends on itself
    ├── LifetimeError        a dependency that depends on one that lives shorter
    ├── MissingValuesError   required values absent from a call
    ├── MissingContextError  a context object (injected by type) absent from a scope
    ├── YieldError           a ``yield`` dependency that misbehaved (no yield,
    │                        two yields, a swallowed exception)
    └── UsageError           a closed scope or container, a container not entered, ...

Each error carries the dependency *path* (root → … → offending dependable), the
*callable*, the *parameter* and a *hint* saying how to fix it, and renders them in its
message so a log line alone is enough to find the mistake.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CycleError",
    "DeclarationError",
    "DependencyError",
    "LifetimeError",
    "MissingContextError",
    "MissingValuesError",
    "UsageError",
    "YieldError",
]


class DependencyError(Exception):
    """Base class of every error anydepends raises about graphs, values and lifetimes.

    Attributes:
        path: Qualified names from the root callable to the offending dependable.
        callable: Qualified name of the offending callable, if there is one.
        parameter: The parameter concerned, if there is one.
        hint: How to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Sequence[str] = (),
        callable: str | None = None,
        parameter: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.summary = message
        self.path = tuple(path)
        self.callable = callable
        self.parameter = parameter
        self.hint = hint
        super().__init__(self._render())

    def located(self, parameter: str) -> DependencyError:
        """Name the declaring *parameter*, if the error does not name one yet."""
        if self.parameter is None:
            self.parameter = parameter
            self.args = (self._render(),)
        return self

    def _render(self) -> str:
        lines = [self.summary]
        if self.path:
            lines.append(f"  path: {' -> '.join(self.path)}")
        if self.callable is not None:
            lines.append(f"  callable: {self.callable}")
        if self.parameter is not None:
            lines.append(f"  parameter: {self.parameter}")
        if self.hint:
            lines.append(f"  fix: {self.hint}")
        return "\n".join(lines)


class DeclarationError(DependencyError, TypeError):
    """A marker, parameter or callable that cannot be compiled into a plan."""


class CycleError(DependencyError):
    """A dependency that depends on itself, directly or through others."""


class LifetimeError(DependencyError):
    """A dependency that depends on one that lives shorter than itself."""


class MissingValuesError(DependencyError, LookupError):
    """Required values were not given to a call; lists every one and where needed."""

    def __init__(self, missing: dict[str, list[str]], root: str) -> None:
        self.missing = {name: list(paths) for name, paths in missing.items()}
        needed = "; ".join(
            f"{name!r} (needed by {', '.join(paths)})"
            for name, paths in missing.items()
        )
        names = ", ".join(f"{name}=..." for name in missing)
        super().__init__(
            f"missing value(s) for {root}: {needed}",
            path=(root,),
            callable=root,
            parameter=", ".join(missing),
            hint=f"pass them by name, e.g. call({root.rsplit('.', 1)[-1]}, {names}),"
            " or give the parameters defaults",
        )


class MissingContextError(DependencyError, LookupError):
    """A parameter injected by type found no object of that type in the scope."""


class YieldError(DependencyError, RuntimeError):
    """A ``yield`` dependency did not yield exactly once, or swallowed an exception."""


class UsageError(DependencyError, RuntimeError):
    """The API was used out of order: a closed scope, a container not entered, ..."""
