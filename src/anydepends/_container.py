"""Container: the application lifetime, overrides, plan cache and helper tasks."""

from __future__ import annotations

import contextlib
from collections.abc import (
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Mapping,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, overload

import anyio
from anyio import CapacityLimiter
from anyio.abc import TaskGroup

from ._codegen import build_runner
from ._compiler import compile_plan
from ._errors import DeclarationError, DependencyError, UsageError
from ._hosting import hosted_setup
from ._introspect import Callee, introspect, qualname
from ._lowlevel import cancel_scope_marker
from ._markers import Dependency, as_marker
from ._overrides import Overrides
from ._plan import Node, Plan
from ._scheduler import Run, check_inputs
from ._scope import Scope, _run_and_teardown
from ._teardown import Exit, teardown

if TYPE_CHECKING:
    from ._trace import Trace

__all__ = ["Container"]

T = TypeVar("T")

_NEW: Final = 0
_OPEN: Final = 1
_CLOSED: Final = 2


class Container:
    """The application lifetime: plans, overrides and app-scoped dependencies.

    Enter it with ``async with Container() as container:``; leaving it tears down the
    app-scoped ``yield`` dependencies in reverse order.

    Args:
        sync_to_thread: Run sync dependables (and sync generator halves) in a worker
            thread, as FastAPI does (the default), or inline on the event loop (faster
            for cheap functions that never block). ``Depends(sync_to_thread=...)``
            overrides it per declaration.
        sequential: Resolve one dependency at a time in FastAPI's exact depth-first
            order, for debugging and parity, instead of concurrently.
        context_types: Types whose instances are injected *by type* from the
            ``context`` of :meth:`scope` (like FastAPI injects ``Request``). The
            :class:`Container` and the current :class:`Scope` are always injectable.
        dependencies: Dependencies run before every call's root, for their effect
            (FastAPI's ``FastAPI(dependencies=[...])``); their values are discarded.
    """

    def __init__(
        self,
        *,
        sync_to_thread: bool = True,
        sequential: bool = False,
        context_types: Iterable[type] = (),
        dependencies: Iterable[Any] = (),
    ) -> None:
        self.dependencies: tuple[Dependency, ...] = _markers(dependencies)
        self.sync_to_thread = sync_to_thread
        self.sequential = sequential
        extra_types = _context_types(context_types)
        self.context_types: tuple[type, ...] = (Container, Scope, *extra_types)
        self.overrides = Overrides(self)
        self._plans_by_overrides: dict[frozenset[Any], dict[Any, Plan[Any]]] = {}
        self._plans: dict[Any, Plan[Any]] = {}
        self._plans_by_overrides[frozenset()] = self._plans
        self._introspected: dict[Any, Callee] = {}
        self._app_memo: dict[Any, Any] = {}
        self._exits: list[Exit] = []
        self._limiters: dict[object, CapacityLimiter] = {}
        self._tg: TaskGroup | None = None
        self._state = _NEW
        self._context: dict[type, Any] = {Container: self}

    # -- lifetime ---------------------------------------------------------------------
    async def __aenter__(self) -> Container:
        if self._state != _NEW:
            msg = "this container was already entered; a Container is entered once"
            raise UsageError(msg, hint="create a new Container()")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._state = _OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = _CLOSED
        final = await teardown(exc, cancel_scope_marker(), self._exits)
        self._app_memo.clear()
        tg = self._tg
        assert tg is not None
        # Helper tasks still parked belong to scopes nobody closed: stop them.
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        if final is not None and final is not exc:
            raise final
        return None

    async def _reset_app(self) -> None:
        final = await teardown(None, cancel_scope_marker(), self._exits)
        self._app_memo.clear()
        if final is not None:
            raise final

    def _check_open(self, fn: object = None) -> None:
        if self._state != _OPEN:
            state = "not entered yet" if self._state == _NEW else "closed"
            msg = f"the container is {state}"
            raise UsageError(
                msg,
                callable=None if fn is None else qualname(fn),
                hint="use `async with Container() as container:` and call inside it",
            )

    # -- plans ------------------------------------------------------------------------
    @overload
    def compile(
        self,
        fn: Callable[..., Coroutine[Any, Any, T]],
        /,
        *,
        dependencies: Iterable[Any] = (),
    ) -> Plan[T]: ...
    @overload
    def compile(
        self, fn: Callable[..., T], /, *, dependencies: Iterable[Any] = ()
    ) -> Plan[T]: ...
    def compile(
        self, fn: Callable[..., Any], /, *, dependencies: Iterable[Any] = ()
    ) -> Plan[Any]:
        """Build (or return the cached) plan for *fn* under the current overrides.

        Args:
            fn: The root callable.
            dependencies: Extra dependencies run for their effect before *fn*'s own
                (after the container's), like FastAPI's route ``dependencies=[...]``.
                Pass the returned plan to :meth:`call` or :meth:`Scope.call` to run it.

        Raises:
            DependencyError: if the graph is broken (a cycle, a bad declaration, a
                lifetime mismatch, ...); nothing has run.
        """
        extra = _markers(dependencies)
        if not extra:
            return self._plan_for(fn)
        key = (_WithDependencies, fn, extra)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(fn, extra)
        return plan

    def _plan_for(self, fn: Callable[..., T] | Plan[T]) -> Plan[T]:
        if isinstance(fn, Plan):
            given: Plan[T] = fn  # pyright: ignore[reportUnknownVariableType]
            if given.origin is self._plans:
                return given
            # Compiled under another override set (or container): recompile.
            extra = given.dependencies[len(self.dependencies) :]
            return self.compile(given.root, dependencies=extra)
        try:
            cached: Plan[T] | None = self._plans.get(fn)
        except TypeError:  # an unhashable root: compile every time, never cache
            return self._compile(fn)
        if cached is None:
            cached = self._plans[fn] = self._compile(fn)
        return cached

    def _compile(
        self, fn: Callable[..., T], extra: tuple[Dependency, ...] = ()
    ) -> Plan[T]:
        return compile_plan(
            fn,
            overrides=self.overrides._data,
            context_types=self.context_types,
            sync_to_thread=self.sync_to_thread,
            introspected=self._introspected,
            dependencies=(*self.dependencies, *extra),
            origin=self._plans,
            app_context_types=(Container,),
        )

    def _overrides_changed(self) -> None:
        key = frozenset((k, id(v)) for k, v in self.overrides._data.items())
        plans = self._plans_by_overrides.get(key)
        if plans is None:
            plans = self._plans_by_overrides[key] = {}
        self._plans = plans

    def _validate_override(
        self, original: Callable[..., Any], replacement: Callable[..., Any]
    ) -> None:
        try:
            hash(original)
        except TypeError:
            msg = f"cannot override {original!r}: it is unhashable"
            raise DeclarationError(
                msg, hint="override a hashable callable (the one named in Depends)"
            ) from None
        try:
            introspect(replacement, (f"override of {qualname(original)}",))
        except DependencyError as exc:
            msg = (
                f"the override of {qualname(original)} by {qualname(replacement)}"
                f" cannot be used: {exc.summary}"
            )
            raise DeclarationError(
                msg,
                path=exc.path,
                callable=qualname(replacement),
                parameter=exc.parameter,
                hint=exc.hint,
            ) from exc

    @contextlib.contextmanager
    def override(
        self, original: Callable[..., Any], replacement: Callable[..., Any]
    ) -> Generator[None]:
        """Override *original* by *replacement* inside a ``with`` block (nestable).

        On exit the previous state comes back: the outer override, or none.
        """
        data = self.overrides._data
        had = original in data
        previous = data.get(original)
        self.overrides[original] = replacement
        try:
            yield
        finally:
            if had:
                assert previous is not None
                data[original] = previous
            else:
                data.pop(original, None)
            self._overrides_changed()

    # -- calls ------------------------------------------------------------------------
    @overload
    def inject(
        self, fn: Callable[..., Coroutine[Any, Any, T]], /
    ) -> Callable[..., Coroutine[Any, Any, T]]: ...
    @overload
    def inject(
        self, fn: Callable[..., T], /
    ) -> Callable[..., Coroutine[Any, Any, T]]: ...
    def inject(
        self, fn: Callable[..., Any], /
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Decorate *fn*: calling the result resolves *fn*'s dependencies and calls it.

        The result takes only *fn*'s values (by name, or positionally in signature
        order) and resolves the rest in a fresh scope; ``.in_scope(scope, ...)``
        resolves them in a scope you hold. The graph is compiled (and checked) now.
        ``help()`` and ``inspect.signature`` show the values it takes.
        """
        from ._inject import inject

        return inject(self, fn)

    def scope(self, *, context: Mapping[type, Any] | None = None) -> Scope:
        """A new request scope; enter it with ``async with``.

        Args:
            context: Objects injected by type into dependables of calls in this scope,
                keyed by one of the container's ``context_types``.
        """
        self._check_context(context)
        return Scope(self, context)

    def add_context_types(self, *types: type) -> None:
        """Inject instances of *types* by type from now on, like ``context_types``.

        For integrations that learn their context types after the container was
        built (a web framework's request object, say). Types already registered are
        ignored; plans compiled before are dropped, since a parameter annotated with
        a new context type is no longer a value by name.

        Raises:
            DeclarationError: if one of *types* is not a class.
        """
        new = [t for t in _context_types(types) if t not in self.context_types]
        if not new:
            return
        self.context_types = (*self.context_types, *new)
        for plans in self._plans_by_overrides.values():
            plans.clear()

    def _check_context(self, context: Mapping[type, Any] | None) -> None:
        for ctx in context or ():
            if ctx not in self.context_types:
                msg = f"{ctx!r} is not one of this container's context types"
                raise UsageError(
                    msg,
                    hint="register it: Container(context_types=[...])",
                )

    async def call_in(
        self, context: Mapping[type, Any], fn: Callable[..., Any], /, **values: Any
    ) -> Any:
        """Like :meth:`call`, with *context* objects injected by type for this call.

        ``await container.call_in({Request: request}, handler, user_id=1)`` is
        ``async with container.scope(context={Request: request}) as s:
        await s.call(handler, user_id=1)`` in one step.
        """
        if self._state != _OPEN:
            self._check_open(fn)
        self._check_context(context)
        return await self._call_plan(self._plan_for(fn), values, context)

    @overload
    async def call(self, fn: Plan[T], /, **values: Any) -> T: ...
    @overload
    async def call(
        self, fn: Callable[..., Coroutine[Any, Any, T]], /, **values: Any
    ) -> T: ...
    @overload
    async def call(self, fn: Callable[..., T], /, **values: Any) -> T: ...
    async def call(self, fn: Callable[..., Any] | Plan[Any], /, **values: Any) -> Any:
        """Call *fn* in a fresh scope, closed (and torn down) before this returns.

        Raises:
            MissingValuesError: before anything runs, if required values are missing.
            DependencyError: if *fn*'s graph is broken.
        """
        if self._state != _OPEN:
            self._check_open(fn)
        plan = self._plan_for(fn)
        state = plan.state
        runner = state.fast
        if runner is None or state.eager:
            if not state.fast_built and not state.eager:
                state.fast_built = True
                state.fast = build_runner(self, plan)
            return await self._call_plan(plan, values)
        if plan.required_values:
            check_inputs(plan, values, self._context)
        # The generated runner: nodes inline, no memo, no scope object unless it
        # hands over to the general scheduler (see _codegen).
        results: list[Any] = [None] * len(plan.nodes)
        function_exits: list[Exit] = []
        request_exits: list[Exit] = []
        start = cancel_scope_marker()
        try:
            result = await runner(results, values, function_exits, request_exits, start)
        except BaseException as exc:
            if function_exits or request_exits:
                final = await teardown(exc, start, function_exits, request_exits)
                if final is not exc and final is not None:
                    raise final from exc
            raise
        if function_exits or request_exits:
            final = await teardown(None, start, function_exits, request_exits)
            if final is not None:
                raise final
        return result

    async def _call_plan(
        self,
        plan: Plan[T],
        values: dict[str, Any],
        context: Mapping[type, Any] | None = None,
    ) -> T:
        """Run *plan* in a fresh private scope, closed before this returns."""
        scope = Scope(self, context)
        scope._state = 1  # open, owned by this call: same task, closed below
        check_inputs(plan, values, scope._context)
        run = Run(plan, scope, values, True, owns_scope=True)
        try:
            # Function-scoped teardowns first, then the private scope's.
            result: T = await _run_and_teardown(run, run.exits, scope._exits)
        finally:
            scope._state = 2
            scope._memo.clear()
        return result

    @overload
    async def trace(
        self, fn: Callable[..., Coroutine[Any, Any, T]], /, **values: Any
    ) -> Trace[T]: ...
    @overload
    async def trace(self, fn: Callable[..., T], /, **values: Any) -> Trace[T]: ...
    async def trace(self, fn: Callable[..., Any], /, **values: Any) -> Trace[Any]:
        """Call *fn* like :meth:`call`, recording when each dependency ran.

        Returns a :class:`Trace` with the result and per-dependency start and end
        times, renderable as a text timeline or an SVG chart with the critical path.
        """
        from ._trace import trace_call

        if self._state != _OPEN:
            self._check_open(fn)
        return await trace_call(self, self._plan_for(fn), values)

    # -- helper tasks -----------------------------------------------------------------
    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        tg = self._tg
        assert tg is not None
        tg.start_soon(fn)

    def _limiter(self, limit: tuple[object, int]) -> CapacityLimiter:
        token, total = limit
        limiter = self._limiters.get(token)
        if limiter is None:
            limiter = self._limiters[token] = CapacityLimiter(total)
        return limiter

    async def _hosted_setup(
        self,
        node: Node,
        kwargs: dict[str, Any],
        exits: list[Exit],
        permit: tuple[CapacityLimiter, object] | None,
    ) -> Any:
        """Set up an async generator in a helper task that also tears it down."""
        return await hosted_setup(self._spawn, node, kwargs, exits, permit)


class _WithDependencies:
    """Marks plan-cache keys of roots compiled with extra dependencies."""


def _markers(dependencies: Iterable[Any]) -> tuple[Dependency, ...]:
    """Validate extra dependencies: markers with a callable."""
    result: list[Dependency] = []
    for item in dependencies:
        marker = as_marker(item)
        if (
            marker is None
            or marker.dependency is None
            or not callable(marker.dependency)
        ):
            msg = f"extra dependency {item!r} is not Depends(<callable>)"
            raise DeclarationError(
                msg,
                callable=repr(item),
                hint="pass markers with a callable: dependencies=[Depends(verify)]",
            )
        result.append(marker)
    return tuple(result)


def _context_types(types: Iterable[type]) -> tuple[type, ...]:
    """Validate context types: classes whose instances are injected by type."""
    result = tuple(types)
    for ctx in result:
        if not isinstance(cast(object, ctx), type):
            msg = f"context_types got {ctx!r}, which is not a type"
            raise DeclarationError(
                msg,
                callable=repr(ctx),
                hint="list the classes whose instances are injected by type, e.g."
                " context_types=[Request]",
            )
    return result
