"""The bridge: the endpoint FastAPI runs in place of the user's one.

Its signature holds only the *leaf* request parameters of the endpoint's whole graph
(so FastAPI still parses and validates them) and a FastAPI ``yield`` dependency that
opens the request's anydepends scope. Its body runs the endpoint's plan in that scope:
anydepends resolves the graph, concurrently, and calls the endpoint.

A :class:`Variant` is one route's runtime under one override set.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from functools import partial
from typing import Annotated, Any, Final
from weakref import WeakKeyDictionary

import anyio
from fastapi import params

from .._container import Container
from .._errors import UsageError
from .._plan import Plan
from .._scope import Scope
from ._failures import first_failure, is_concurrent_failure
from ._leaves import leaf_parameters
from ._lifetime import (
    FunctionLifetime,
    function_lifetime,
    is_active_clone,
    scope_dependency,
)

__all__ = ["Variant"]

_KW: Final = inspect.Parameter.KEYWORD_ONLY


class Variant:
    """What one route runs under one override set: its plan and its bridge.

    Attributes:
        function: The bridge endpoint to hand FastAPI.
        plan: The plan, in the route's own container.
    """

    def __init__(
        self,
        *,
        container: Container,
        endpoint: Callable[..., Any],
        dependencies: tuple[Any, ...],
        overrides: Mapping[Any, Callable[..., Any]],
        sequential: bool | None,
        path: str,
    ) -> None:
        self.container = container
        self.dependencies = dependencies
        self.overrides = dict(overrides)
        self.sequential = sequential
        streaming = _generator_kind(endpoint)
        if streaming is not None:  # a streaming endpoint: resolve, then iterate
            self.root = _collect(endpoint)
            self.plan = self._compile(container, self.root)
        else:
            direct = self._compile(container, endpoint)
            root_node = direct.root_node
            if any(
                n.lifetime == "function" and n.kind.is_generator
                for n in direct.nodes[:-1]
            ):
                kind, thread = root_node.kind.name, root_node.thread
                self.root = _deferred_root(endpoint, kind, thread)
                direct = self._compile(container, self.root)
            else:
                self.root = endpoint
            self.plan = direct
        self._in_clones: WeakKeyDictionary[Container, Plan[Any]] = WeakKeyDictionary()
        leaves = leaf_parameters(self.plan, path)
        taken = {p.name for p in leaves}
        scope_param = _unique("anydepends_scope", taken)
        opener = scope_dependency(container, self.plan.context_types)
        internal = [
            inspect.Parameter(
                scope_param, _KW, annotation=Annotated[Scope, params.Depends(opener)]
            )
        ]
        if streaming is not None:
            self.function = self._streaming_bridge(
                endpoint, streaming, [*leaves, *internal], scope_param, taken
            )
        elif self.root is endpoint:
            self.function = self._plain_bridge([*leaves, *internal], scope_param)
        else:
            lifetime_param = _unique("anydepends_function_scope", taken)
            marker = params.Depends(function_lifetime, scope="function")
            internal.append(
                inspect.Parameter(
                    lifetime_param,
                    _KW,
                    annotation=Annotated[FunctionLifetime, marker],
                )
            )
            self.function = self._deferred_bridge(
                [*leaves, *internal], scope_param, lifetime_param
            )
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            try:
                setattr(self.function, attr, getattr(endpoint, attr))
            except (AttributeError, TypeError):
                pass

    def _compile(self, container: Container, root: Callable[..., Any]) -> Plan[Any]:
        return container.compile(
            root,
            dependencies=self.dependencies,
            overrides=self.overrides,
            sequential=self.sequential,
        )

    def plan_in(self, target: Container) -> Plan[Any]:
        """The plan to run in *target*: the route's container, or the container
        that stands in for it (entered by ``lifespan()``, or for one request)."""
        if target is self.container:
            return self.plan
        plan = self._in_clones.get(target)
        if plan is None:
            plan = self._compile(target, self.root)
            if not is_active_clone(self.container, target):
                _refuse_app_scope(plan)
            self._in_clones[target] = plan
        return plan

    # -- the bridges ------------------------------------------------------------------
    def _plain_bridge(
        self, signature: list[inspect.Parameter], scope_param: str
    ) -> Callable[..., Any]:
        async def bridge(**values: Any) -> Any:
            scope: Scope = values.pop(scope_param)
            plan = self.plan_in(scope.container)
            try:
                return await scope.call(plan, **values)
            except BaseExceptionGroup as group:
                if not is_concurrent_failure(group):
                    raise
                raise first_failure(group, plan) from None

        bridge.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        return bridge

    def _deferred_bridge(
        self, signature: list[inspect.Parameter], scope_param: str, lifetime_param: str
    ) -> Callable[..., Any]:
        async def bridge(**values: Any) -> Any:
            scope: Scope = values.pop(scope_param)
            lifetime: FunctionLifetime = values.pop(lifetime_param)
            plan = self.plan_in(scope.container)
            try:
                return await lifetime.run(scope, plan, values)
            except BaseExceptionGroup as group:
                if not is_concurrent_failure(group):
                    raise
                raise first_failure(group, plan) from None

        bridge.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        return bridge

    def _streaming_bridge(
        self,
        endpoint: Callable[..., Any],
        kind: str,
        signature: list[inspect.Parameter],
        scope_param: str,
        taken: set[str],
    ) -> Callable[..., Any]:
        """A generator endpoint: a FastAPI dependency resolves the graph (so its
        errors become responses before streaming starts); the bridge iterates."""

        async def resolve(**values: Any) -> Any:
            scope: Scope = values.pop(scope_param)
            plan = self.plan_in(scope.container)
            try:
                return await scope.call(plan, **values)
            except BaseExceptionGroup as group:
                if not is_concurrent_failure(group):
                    raise
                raise first_failure(group, plan) from None

        resolve.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        resolved = _unique("anydepends_arguments", taken)
        outer = [
            inspect.Parameter(
                resolved,
                _KW,
                annotation=Annotated[dict[str, Any], params.Depends(resolve)],
            )
        ]
        returns = inspect.signature(endpoint).return_annotation
        if kind == "async":

            async def astream(**values: Any) -> AsyncIterator[Any]:
                inner = endpoint(**values[resolved])
                try:
                    async for item in inner:
                        yield item
                finally:
                    await inner.aclose()

            bridge: Callable[..., Any] = astream
        else:

            def stream(**values: Any) -> Iterator[Any]:
                yield from endpoint(**values[resolved])

            bridge = stream
        bridge.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            outer, return_annotation=returns
        )
        return bridge


def _generator_kind(endpoint: Callable[..., Any]) -> str | None:
    """``"async"`` or ``"sync"`` for a generator endpoint (FastAPI streams those),
    looking through partials, ``functools.wraps`` wrappers and ``__call__``."""
    layer: object = endpoint
    for _ in range(100):
        while isinstance(layer, partial):
            layer = layer.func
        candidates = [layer]
        if not inspect.isroutine(layer) and not isinstance(layer, type):
            candidates.append(getattr(type(layer), "__call__", None))  # noqa: B004
        for candidate in candidates:
            if inspect.isasyncgenfunction(candidate):
                return "async"
            if inspect.isgeneratorfunction(candidate):
                return "sync"
        wrapped = getattr(layer, "__wrapped__", None)
        if wrapped is None:
            return None
        layer = wrapped
    return None


def _refuse_app_scope(plan: Plan[Any]) -> None:
    """A stand-in container lives for one request: no app-scoped values there."""
    app_scoped = [n.name for n in plan.nodes if n.lifetime == "app"]
    if app_scoped:
        msg = (
            f"{app_scoped[0]} is app-scoped, but the container is not entered: this"
            " request runs in a lifetime of its own, where an app-scoped value would"
            " be created again for every request"
        )
        raise UsageError(
            msg,
            callable=app_scoped[0],
            hint="enter the container for the app's lifetime:"
            " FastAPI(lifespan=anydepends.fastapi.lifespan(container)), and in tests"
            " `with TestClient(app) as client:` (that runs the lifespan)",
        )


def _keyword_signature(endpoint: Callable[..., Any]) -> list[inspect.Parameter]:
    """The endpoint's parameters as keyword-only (anydepends passes them by name)."""
    try:
        signature = inspect.signature(endpoint, eval_str=True)
    except NameError:
        signature = inspect.signature(endpoint)
    return [p.replace(kind=_KW) for p in signature.parameters.values()]


def _collect(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A root with the endpoint's parameters that returns its arguments."""

    async def collect(**arguments: Any) -> dict[str, Any]:
        return arguments

    collect.__signature__ = inspect.Signature(_keyword_signature(endpoint))  # type: ignore[attr-defined]
    collect.__qualname__ = getattr(endpoint, "__qualname__", collect.__qualname__)
    collect.__module__ = getattr(endpoint, "__module__", collect.__module__)
    return collect


def _deferred_root(
    endpoint: Callable[..., Any], kind: str, thread: bool
) -> Callable[..., Any]:
    """A root that calls the endpoint, hands its result to FastAPI and returns only
    when FastAPI has made the response (see ``FunctionLifetime``)."""
    params_ = _keyword_signature(endpoint)
    name = _unique("anydepends_function_scope", {p.name for p in params_})

    async def root(**arguments: Any) -> None:
        lifetime: FunctionLifetime = arguments.pop(name)
        if kind == "ASYNC":
            result = await endpoint(**arguments)
        elif thread:
            result = await anyio.to_thread.run_sync(partial(endpoint, **arguments))
        else:
            result = endpoint(**arguments)
        await lifetime.hand_over(result)

    root.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*params_, inspect.Parameter(name, _KW, annotation=FunctionLifetime)]
    )
    root.__qualname__ = getattr(endpoint, "__qualname__", root.__qualname__)
    root.__module__ = getattr(endpoint, "__module__", root.__module__)
    return root


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
