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


# -- factories: one place for each message ------------------------------------------


def no_yield(name: str, path: Sequence[str] = ()) -> YieldError:
    """A ``yield`` dependency that finished without yielding."""
    msg = f"yield dependency {name} finished without yielding"
    return YieldError(
        msg, path=path, callable=name, hint="a yield dependency must yield exactly once"
    )


def yielded_twice(name: str, path: Sequence[str] = ()) -> YieldError:
    """A ``yield`` dependency that yielded a second time at its teardown."""
    msg = f"yield dependency {name} yielded more than once"
    return YieldError(
        msg,
        path=path,
        callable=name,
        hint="a dependency must yield exactly once (use try/finally)",
    )


def swallowed(name: str, exc: BaseException, path: Sequence[str] = ()) -> YieldError:
    """A ``yield`` dependency that caught *exc* at its yield and did not re-raise."""
    msg = (
        f"yield dependency {name} caught {type(exc).__name__} at its yield and"
        " neither re-raised it nor raised another exception"
    )
    error = YieldError(
        msg,
        path=path,
        callable=name,
        hint="add a bare `raise` at the end of the except block (FastAPI >= 0.110"
        " requires the same)",
    )
    error.__cause__ = exc
    return error


def missing_context(
    type_name: str, users: Sequence[str], path: Sequence[str], root: str
) -> MissingContextError:
    """No object of a context type for a call that needs one."""
    msg = f"no {type_name} in this scope (needed by {', '.join(users)})"
    return MissingContextError(
        msg,
        path=path,
        callable=root,
        parameter=type_name,
        hint=f"open the scope with container.scope(context={{{type_name}: obj}})",
    )


def container_closed_during_call(fn: str) -> UsageError:
    """The container closed while a call still needed it."""
    msg = "the container was closed while this call was running"
    return UsageError(
        msg,
        callable=fn,
        hint="close the container only after the calls made in it have returned",
    )


def scope_closed_during_call(fn: str) -> UsageError:
    """The scope closed while a call made in it was running."""
    msg = "the scope was closed while this call was running"
    return UsageError(
        msg,
        callable=fn,
        hint="close a scope only after the calls made in it have returned",
    )
