"""The bridge: the endpoint FastAPI's handler runs in place of the user's one.

Its signature holds only the *leaf* request parameters of the endpoint's whole graph
(so FastAPI still parses and validates them) and the request objects the run needs.
Its body runs the endpoint's plan (see ``_runners``): anydepends resolves the graph,
concurrently, and calls the endpoint. A :class:`Variant` is one route's runtime
under one override set.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from functools import partial
from typing import Annotated, Any, Final
from weakref import WeakKeyDictionary

from fastapi import params
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .. import Container, Plan, UsageError
from ._held import held_root
from ._leaves import leaf_parameters
from ._lifetime import is_active_clone
from ._runners import Runner, choose_mode, needs_held_root, runner

__all__ = ["Variant"]

_KW: Final = inspect.Parameter.KEYWORD_ONLY

# FastAPI's request objects a plan can inject by type: the bridge parameter's
# annotation, and the context types it fills.
_REQUEST_OBJECTS: Final = (
    (Request, (Request, HTTPConnection)),
    (Response, (Response,)),
    (BackgroundTasks, (BackgroundTasks,)),
)


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
        # A streaming endpoint's root only collects its arguments: the bridge iterates.
        direct = self._compile(container, _collect(endpoint) if streaming else endpoint)
        mode = choose_mode(direct)
        if needs_held_root(mode):
            parameters = _keyword_signature(endpoint)
            held_name = _unique("anydepends_held", {p.name for p in parameters})
            root_node = direct.root_node
            kind = "collect" if streaming else root_node.kind.name
            held = held_root(
                endpoint, parameters, held_name, kind=kind, thread=root_node.thread
            )
            direct = self._compile(container, held)
        self.root = direct.root
        self.plan = direct
        self._in_clones: WeakKeyDictionary[Container, Plan[Any]] = WeakKeyDictionary()
        leaves = leaf_parameters(self.plan, path)
        taken = {p.name for p in leaves}
        objects, extra = self._request_objects(taken, always=mode != "call")
        run = runner(self, mode)
        signature = [*leaves, *extra]
        if streaming is not None:
            self.function = _streaming_bridge(
                endpoint, streaming, run, objects, signature
            )
        else:
            self.function = _bridge(run, objects, signature)
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

    def _request_objects(
        self, taken: set[str], *, always: bool
    ) -> tuple[Objects, list[inspect.Parameter]]:
        """Bridge parameters for the request objects the plan injects by type (and
        the ``Request`` itself when the run needs FastAPI's exit stacks)."""
        wanted = self.plan.context_types
        objects: list[tuple[str, tuple[type, ...]]] = []
        parameters: list[inspect.Parameter] = []
        request_name = ""
        for annotation, keys in _REQUEST_OBJECTS:
            if any(key in wanted for key in keys) or (always and annotation is Request):
                name = _unique(f"anydepends_{annotation.__name__.lower()}", taken)
                if annotation is Request:
                    request_name = name
                if any(key in wanted for key in keys):
                    objects.append((name, keys))
                parameters.append(inspect.Parameter(name, _KW, annotation=annotation))
        return Objects(request_name, objects), parameters


class Objects:
    """Which bridge arguments are request objects, and the context types they fill."""

    __slots__ = ("context", "request")

    def __init__(self, request: str, context: list[tuple[str, tuple[type, ...]]]):
        self.request = request
        self.context = context

    def take(self, values: dict[str, Any]) -> tuple[Any, dict[type, Any]]:
        """Pop them from *values*: the request (or ``None``) and the context."""
        context: dict[type, Any] = {}
        for name, keys in self.context:
            obj = values[name]
            for key in keys:
                context[key] = obj
        request = values[self.request] if self.request else None
        for name, _keys in self.context:
            values.pop(name, None)
        if self.request:
            values.pop(self.request, None)
        return request, context


def _bridge(
    run: Runner, objects: Objects, signature: list[inspect.Parameter]
) -> Callable[..., Any]:
    async def bridge(**values: Any) -> Any:
        request, context = objects.take(values)
        return await run(values, request, context)

    bridge.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    return bridge


def _streaming_bridge(
    endpoint: Callable[..., Any],
    kind: str,
    run: Runner,
    objects: Objects,
    signature: list[inspect.Parameter],
) -> Callable[..., Any]:
    """A generator endpoint: a FastAPI dependency resolves the graph (so its errors
    become responses before streaming starts); the bridge iterates."""

    async def resolve(**values: Any) -> Any:
        request, context = objects.take(values)
        return await run(values, request, context)

    resolve.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    marker = params.Depends(resolve)
    outer = [
        inspect.Parameter(
            "arguments", _KW, annotation=Annotated[dict[str, Any], marker]
        )
    ]
    returns = inspect.signature(endpoint).return_annotation
    if kind == "async":

        async def astream(arguments: dict[str, Any]) -> AsyncIterator[Any]:
            inner = endpoint(**arguments)
            try:
                async for item in inner:
                    yield item
            finally:
                await inner.aclose()

        bridge: Callable[..., Any] = astream
    else:

        def stream(arguments: dict[str, Any]) -> Iterator[Any]:
            yield from endpoint(**arguments)

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


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
