"""Container: the application lifetime, overrides, the plan cache and helper tasks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, overload

import anyio

from ._call import run
from ._compiler import compile_plan
from ._errors import DeclarationError, DependencyError, UsageError
from ._hosting import close_hosts
from ._introspect import introspect, qualname
from ._markers import Dependency, as_marker
from ._overrides import Overrides
from ._plan import Plan
from ._plancache import Entry, PlanCache
from ._runtime import Runtime
from ._scope import Scope
from ._shapes import LocalShapes
from ._state import CallState
from ._teardown import teardown

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
        self.overrides = Overrides(self._validate_override, self._overrides_changed)
        self._runtime = Runtime(sequential=sequential, sync_to_thread=sync_to_thread)
        self._plans = PlanCache(self._compile, self._runtime, Scope)
        self._introspected = LocalShapes()
        self._state = _NEW
        self._context: dict[type, Any] = {Container: self}

    # -- lifetime ---------------------------------------------------------------------
    async def __aenter__(self) -> Container:
        if self._state != _NEW:
            msg = "this container was already entered; a Container is entered once"
            raise UsageError(msg, hint="create a new Container()")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._runtime.start(tg)
        self._state = _OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = _CLOSED
        rt = self._runtime
        rt.open = False
        final = await teardown(rt.app_exits, exc)
        rt.app_memo.clear()
        # Hosts whose owners never asked (scopes nobody closed) tear down now.
        await close_hosts(rt.hosts)
        tg = rt.tg
        assert tg is not None
        # Helper tasks still parked belong to scopes nobody closed, runners to calls
        # still running: stop them (those calls get a UsageError).
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        # Gone with its tasks: a closed container kept alive keeps nothing of the
        # task that entered it (the task group refers to it, workers ran in its
        # context).
        rt.tg = rt.home = None
        if final is not None and final is not exc:
            raise final
        return None

    async def _reset_app(self) -> None:
        rt = self._runtime
        final = await teardown(rt.app_exits, None)
        rt.app_memo.clear()
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
        overrides: Mapping[Any, Callable[..., Any]] | None = None,
        sequential: bool | None = None,
    ) -> Plan[T]: ...
    @overload
    def compile(
        self,
        fn: Callable[..., T],
        /,
        *,
        dependencies: Iterable[Any] = (),
        overrides: Mapping[Any, Callable[..., Any]] | None = None,
        sequential: bool | None = None,
    ) -> Plan[T]: ...
    def compile(
        self,
        fn: Callable[..., Any],
        /,
        *,
        dependencies: Iterable[Any] = (),
        overrides: Mapping[Any, Callable[..., Any]] | None = None,
        sequential: bool | None = None,
    ) -> Plan[Any]:
        """Build (or return the cached) plan for *fn* under the current overrides.

        Args:
            fn: The root callable.
            dependencies: Extra dependencies run for their effect before *fn*'s own
                (after the container's), like FastAPI's route ``dependencies=[...]``.
                Pass the returned plan to :meth:`call` or :meth:`Scope.call` to run it.
            overrides: Overrides for this plan only, applied over
                ``container.overrides`` (for framework integrations: FastAPI's
                ``app.dependency_overrides``).
            sequential: This plan's mode, instead of the container's ``sequential``.

        A plan compiled with *overrides* or *sequential* is **pinned**: it runs as
        compiled wherever it is called, also after ``container.overrides`` change
        (compile again to follow them; pinned plans are cached, the most recent few
        hundred).

        Raises:
            DependencyError: if the graph is broken (a cycle, a bad declaration, a
                lifetime mismatch, ...), or an override cannot be used; nothing has
                run.
        """
        extra = _markers(dependencies)
        if overrides is not None or sequential is not None:
            return self._pinned(fn, extra, overrides or {}, sequential).plan
        if not extra:
            return self._entry_for(fn).plan
        return self._plans.entry((_WithDependencies, fn, extra), fn, extra).plan

    def _pinned(
        self,
        fn: Callable[..., Any],
        extra: tuple[Dependency, ...],
        overrides: Mapping[Any, Callable[..., Any]],
        sequential: bool | None,
    ) -> Entry:
        """A plan under the container's overrides plus *overrides*, in a fixed mode."""
        merged = {**self.overrides.snapshot(), **overrides}
        ids = frozenset((original, id(new)) for original, new in merged.items())
        key = (fn, extra, ids, sequential)

        def build() -> Plan[Any]:
            for original, replacement in overrides.items():
                self._validate_override(original, replacement)
            # The plan holds the replacements, so the ids in the key stay theirs.
            return compile_plan(
                fn,
                overrides=merged,
                context_types=self.context_types,
                sync_to_thread=self.sync_to_thread,
                introspected=self._introspected,
                dependencies=(*self.dependencies, *extra),
                app_context_types=(Container,),
                sequential=sequential,
            )

        return self._plans.pin(key, build)

    def _entry_for(self, fn: Callable[..., Any] | Plan[Any]) -> Entry:
        """The cache entry that runs *fn* (a root callable or a plan)."""
        plans = self._plans
        try:
            found = plans.current.get(fn)
        except TypeError:  # an unhashable root: compiled every time, never cached
            return plans.new_entry(cast("Callable[..., Any]", fn), ())
        if found is not None:
            return found
        if isinstance(fn, Plan):
            given: Plan[Any] = fn  # pyright: ignore[reportUnknownVariableType]
            entry = plans.of_plan(given)
            if entry is not None:
                return entry
            # Compiled under another override set (or container): recompile.
            extra = given.dependencies[len(self.dependencies) :]
            if extra:
                return plans.entry(
                    (_WithDependencies, given.root, extra), given.root, extra
                )
            return self._entry_for(given.root)
        return plans.entry(fn, fn, ())

    def _compile(
        self, fn: Callable[..., Any], extra: tuple[Dependency, ...]
    ) -> Plan[Any]:
        return compile_plan(
            fn,
            overrides=self.overrides.snapshot(),
            context_types=self.context_types,
            sync_to_thread=self.sync_to_thread,
            introspected=self._introspected,
            dependencies=(*self.dependencies, *extra),
            app_context_types=(Container,),
        )

    def _overrides_changed(self) -> None:
        self._plans.switch(self.overrides.snapshot())

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
        overrides = self.overrides
        had = original in overrides
        previous = overrides.get(original)
        overrides[original] = replacement
        try:
            yield
        finally:
            overrides.restore(original, previous, had)

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
        self._plans.clear()

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
        if context:
            self._check_context(context)
        return Scope(self, context)

    def _scope_context(
        self, scope: Scope, extra: Mapping[type, Any] | None
    ) -> dict[type, Any]:
        context: dict[type, Any] = {Container: self, Scope: scope}
        if extra:
            context.update(extra)
        return context

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
        return await self._call(
            self._entry_for(fn), values, {**self._context, **context}
        )

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
        try:
            entry = self._plans.current.get(fn)
        except TypeError:
            entry = None
        if entry is None:
            entry = self._entry_for(fn)
        runner = entry.fresh
        if runner is None or entry.uses_scope:
            return await self._call(entry, values, self._context)
        return await run(CallState(runner, values, self._context, self._runtime))

    async def _call(
        self, entry: Entry, values: dict[str, Any], context: dict[type, Any]
    ) -> Any:
        """Run *entry* in a fresh private scope, closed before this returns."""
        if entry.uses_scope:
            # The plan injects the Scope itself: give it a real one.
            extra = {t: v for t, v in context.items() if t is not Container}
            root = entry.plan.root
            async with Scope(self, extra) as scope:
                return await scope._run(scope._begin(root, values, None, entry), root)
        state = CallState(entry.fresh_runner(), values, context, self._runtime)
        return await run(state)

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
        from ._trace import Recording

        if self._state != _OPEN:
            self._check_open(fn)
        plan = self._entry_for(fn).plan
        recording = Recording(plan)
        entry = Entry(recording.plan, self._runtime, Scope)
        result = await self._call(entry, values, self._context)
        return recording.finish(result)


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
