"""``inject``: turn a function with dependencies into one that takes only its values."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._plan import Plan

if TYPE_CHECKING:
    from ._container import Container
    from ._scope import Scope

__all__ = ["Injected", "inject"]

T = TypeVar("T")


class Injected:
    """A function whose dependencies a container resolves; call it with values only.

    Calling it (``await handler(job=job)``, or positionally in the order of its value
    parameters) resolves the rest in a fresh scope. :meth:`in_scope` resolves them in
    a scope you hold, sharing its memo.
    """

    def __init__(self, container: Container, fn: Callable[..., Any]) -> None:
        self.container = container
        self.fn = fn
        plan = container.compile(fn)  # fail now, not at the first call
        self.__signature__ = _values_signature(plan, fn)
        functools.update_wrapper(self, fn)
        # ``inspect`` must see the reduced signature, not follow __wrapped__ to *fn*.
        vars(self).pop("__wrapped__", None)

    def _values(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if not args:
            return kwargs
        bound = self.__signature__.bind_partial(*args, **kwargs)
        return dict(bound.arguments)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.container.call(self.fn, **self._values(args, kwargs))

    async def in_scope(self, scope: Scope, *args: Any, **kwargs: Any) -> Any:
        """Resolve in *scope* (its memo and request lifetime) and call."""
        return await scope.call(self.fn, **self._values(args, kwargs))

    def __repr__(self) -> str:
        return f"<injected {getattr(self.fn, '__qualname__', self.fn)!r}>"


def _values_signature(plan: Plan[Any], fn: Callable[..., Any]) -> inspect.Signature:
    """*fn*'s signature reduced to the values a caller passes (keyword-only)."""
    names: dict[str, inspect.Parameter] = {}
    root = plan.root_node
    own = dict(inspect.signature(fn).parameters)
    for node in (root, *plan.nodes[:-1]):
        for name, default in node.values:
            if name in names:
                continue
            annotation = (
                own[name].annotation
                if node is root and name in own
                else (inspect.Parameter.empty)
            )
            names[name] = inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=annotation,
            )
    ordered = sorted(
        names.values(), key=lambda p: p.default is not inspect.Parameter.empty
    )
    params = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in ordered]
    return_annotation = inspect.signature(fn).return_annotation
    return inspect.Signature(params, return_annotation=return_annotation)


def inject(
    container: Container, fn: Callable[..., Any]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """Wrap *fn* so calling it resolves its dependencies with *container*."""
    return cast(Callable[..., Coroutine[Any, Any, Any]], Injected(container, fn))
