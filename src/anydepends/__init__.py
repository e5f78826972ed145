"""anydepends: FastAPI's ``Depends`` for any anyio program.

Compiled once into an immutable plan, resolved concurrently where dependencies really
wait, on asyncio or trio.
"""

from __future__ import annotations

from ._container import Container
from ._errors import (
    CycleError,
    DeclarationError,
    DependencyError,
    LifetimeError,
    MissingContextError,
    MissingValuesError,
    UsageError,
    YieldError,
)
from ._introspect import CallKind
from ._markers import Dependency, Depends, Security, SecurityDependency, SecurityScopes
from ._overrides import Overrides
from ._plan import Node, Plan
from ._scope import Scope
from ._trace import Span, Trace

__all__ = [
    "CallKind",
    "Container",
    "CycleError",
    "DeclarationError",
    "Dependency",
    "DependencyError",
    "Depends",
    "LifetimeError",
    "MissingContextError",
    "MissingValuesError",
    "Node",
    "Overrides",
    "Plan",
    "Scope",
    "Security",
    "SecurityDependency",
    "SecurityScopes",
    "Span",
    "Trace",
    "UsageError",
    "YieldError",
]


def _fix_module_names() -> None:
    """Show public objects as ``anydepends.X`` in reprs, tracebacks and docs."""
    namespace = globals()
    for name in __all__:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith("anydepends._"):
            obj.__module__ = "anydepends"


_fix_module_names()
