"""The scheduler: run a Plan by readiness, inline until something really waits.

Every dependency starts in the task that reaches it, stepped once with
``coroutine.send(None)``. Most dependencies never suspend, and then a call costs no
task, no task group and no cancel scope: the plan runs inline, in FastAPI's order.

The first time a dependency *does* suspend while other dependencies are ready, the run
turns concurrent: the ready work moves to a runner task (spawned into the container's
task group), and the suspended dependency is finished, by :class:`Drive`, in the task
that started it. From then on the shared ready queue is drained by whichever task is
free, and every further suspension with work waiting spawns one more runner. So a
dependency starts the moment its inputs are ready, and tasks exist only where they buy
overlap.

Failure: the first exception ends the run. Runners run inside cancel scopes of their
own, which the failure cancels. The calling task's current dependency is cancelled
through the run's own cancel scope: opened before the first dependency ("eager") on a
plan's first call and for plans that have really run concurrently, else opened at the
first suspension when nothing of the dependency's is open (``_lowlevel``). A plan that
has only ever run inline and then suspends inside a cancel scope of its own is the
one case where a failing sibling cannot interrupt it (it finishes, then the run fails).
The caller gets the original exception object; an ``ExceptionGroup`` only when several
dependencies really failed.

This module is the general path; ``_codegen`` generates the common one for
``Container.call`` and hands over to :meth:`Run.resume` on the first wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio import CancelScope, to_thread

from ._errors import MissingContextError, MissingValuesError, YieldError
from ._introspect import CallKind
from ._lowlevel import Drive, cancel_scope_marker
from ._plan import MEMO_APP, MEMO_RUN, MEMO_SCOPE, Node, Plan
from ._teardown import Exit, Host

if TYPE_CHECKING:
    from ._scope import Scope

__all__ = ["Run", "check_inputs"]

_MISSING: Final = object()
_ASYNC: Final = CallKind.ASYNC
_SYNC: Final = CallKind.SYNC
_ASYNC_GEN: Final = CallKind.ASYNC_GEN


def check_inputs(
    plan: Plan[Any], values: dict[str, Any], context: dict[type, Any]
) -> None:
    """Raise before anything runs if a required value or context object is missing."""
    required = plan.required_values
    if required:
        missing = {
            name: list(where) for name, where in required.items() if name not in values
        }
        if missing:
            raise MissingValuesError(missing, plan.root_node.name)
    for ctx in plan.context_types:
        if ctx not in context:
            users = [
                " -> ".join(n.path)
                for n in plan.nodes
                if any(t is ctx for _, t in n.contexts)
            ]
            msg = f"no {ctx.__qualname__} in this scope (needed by {', '.join(users)})"
            raise MissingContextError(
                msg,
                path=plan.nodes[-1].path,
                callable=plan.root_node.name,
                parameter=ctx.__qualname__,
                hint="open the scope with"
                f" container.scope(context={{{ctx.__qualname__}: obj}})",
            )


class Run:
    """The state of one call: results by node index, claims, runners, failure."""

    __slots__ = (
        "cancelled_exc",
        "concurrent",
        "container",
        "context",
        "eager",
        "exits",
        "extra_failures",
        "failure",
        "idle",
        "inline_request_gens",
        "main_cs",
        "memos",
        "nodes",
        "owns_scope",
        "plan",
        "ready",
        "remaining",
        "results",
        "runner_scopes",
        "scope",
        "sequential",
        "skip",
        "start_marker",
        "values",
        "waiters",
        "working",
    )

    def __init__(
        self,
        plan: Plan[Any],
        scope: Scope,
        values: dict[str, Any],
        inline_request_gens: bool,
        owns_scope: bool = False,
    ) -> None:
        container = scope.container
        self.plan = plan
        self.nodes = plan.nodes
        self.scope = scope
        self.container = container
        self.values = values
        self.context = scope._context
        self.results: list[Any] = [None] * len(plan.nodes)
        self.memos: tuple[dict[Any, Any], ...] = (scope._memo, {}, container._app_memo)
        self.exits: list[Exit] = []  # function-scoped teardowns
        self.waiters: dict[Any, anyio.Event] | None = None
        self.concurrent = False
        self.sequential = (
            container.sequential if plan.sequential is None else plan.sequential
        )
        self.inline_request_gens = inline_request_gens
        self.skip: set[int] | None = None
        self.failure: BaseException | None = None
        self.extra_failures: list[BaseException] = []
        self.main_cs: CancelScope | None = None
        self.eager = False
        self.owns_scope = owns_scope
        self.runner_scopes: list[CancelScope] = []
        self.working = 0
        self.idle: anyio.Event | None = None
        self.ready: deque[int] = _NOT_CONCURRENT  # a fresh deque once concurrent
        self.remaining: list[int] = []
        self.start_marker: object = None
        self.cancelled_exc: type[BaseException] = anyio.get_cancelled_exc_class()

    # -- the entry point ------------------------------------------------------------
    async def execute(self) -> Any:
        """Resolve every dependency, then call the root; return its result."""
        if self.scope._memo or self.plan.has_app_nodes:
            self.skip = self._cache_hits()
        state = self.plan.state
        if state.eager and not self.sequential:
            # One call at a time learns: calls starting meanwhile run lean.
            state.eager = False
            self.main_cs = CancelScope()
            self.main_cs.__enter__()
            self.eager = True
        self.start_marker = cancel_scope_marker()
        await self._resolve(self._loop(0))
        return await self.call_root()

    async def _resolve(self, resolution: Coroutine[Any, Any, None]) -> None:
        """Await *resolution*, then close a cancel scope opened in the middle of it.

        A scope opened mid-run covers resolution only: generators the calling task
        sets up while it is open are hosted by helper tasks (``_setup_async_gen``), so
        it never pins the task's scope stack. The eager scope, opened before the first
        dependency, closes after the call's own teardowns instead (:meth:`leave`).
        """
        if self.eager:
            await resolution
            return
        try:
            await resolution
        except BaseException as exc:
            self._exit_main_scope(exc)
            raise
        self._exit_main_scope(None)

    def _exit_main_scope(self, exc: BaseException | None) -> bool:
        main_cs = self.main_cs
        if main_cs is None:
            return False
        self.main_cs = None
        if exc is None:
            return bool(main_cs.__exit__(None, None, None))
        try:
            return bool(main_cs.__exit__(type(exc), exc, exc.__traceback__))
        except BaseException as raised:
            # trio's scope splits a group to strip its own Cancelled, re-raising a
            # copy even when it removed nothing: the caller must get the original.
            if raised is exc or _same_group(raised, exc):
                return False
            raise

    def leave(self, exc: BaseException | None) -> None:
        """After the call's own teardowns: close the eager scope; learn from the run
        whether the next call of this plan should open one."""
        state = self.plan.state
        state.eager = state.concurrent_seen
        if self.eager:
            self._exit_main_scope(exc)

    async def _loop(self, start: int) -> None:
        """Run the nodes from *start* on inline, until one waits with work ready."""
        nodes = self.nodes
        skip = self.skip
        for node in nodes[start:-1]:
            if skip is not None and node.index in skip:
                continue
            coro = self.exec_node(node, None)
            try:
                pending = coro.send(None)
            except StopIteration:
                continue
            if self.sequential or not self._begin_concurrency(node.index):
                await Drive(coro, pending)
                continue
            await self._drive_main(coro, pending)
            break
        if self.concurrent:
            await self._finish_concurrent()

    async def resume(
        self,
        i: int,
        coro: Any,
        pending: Any,
        start_marker: object,
    ) -> Any:
        """Take over from generated code whose node *i* suspended (or, with *coro*
        None, needs the general path from node *i* on); return the root's result.

        Nodes before *i* are in ``results`` but not in the memo (the generated path
        owns a private memo and never needs it): record them first.
        """
        nodes = self.nodes
        memos = self.memos
        results = self.results
        for node in nodes[:i]:
            memo = memos[node.memo]
            key = node.key
            if node.use_cache or (node.seeds and key not in memo):
                memo[key] = results[node.index]
        if self.plan.has_app_nodes:
            # Dependencies of app-scoped values already made must not run.
            first = i if coro is None else i + 1  # node i itself may not have started
            self.skip = {j for j in self._cache_hits() if j >= first}
        self.start_marker = start_marker
        if coro is None:
            await self._resolve(self._loop(i))
        else:
            await self._resolve(self._resume_at(i, coro, pending))
        return await self.call_root()

    async def _resume_at(self, i: int, coro: Any, pending: Any) -> None:
        finish = self._finish_raw(self.nodes[i], coro, pending)
        if not self.sequential and self._begin_concurrency(i):
            try:
                await finish
            except BaseException as exc:
                self._main_failed(exc)
            await self._finish_concurrent()
            return
        await finish
        await self._loop(i + 1)

    async def _finish_raw(self, node: Node, coro: Any, pending: Any) -> None:
        """Finish a node through the generated code that started it (which stores
        its value and registers its teardown), then record it like exec_node."""
        await Drive(coro, pending)
        value = self.results[node.index]
        memo = self.memos[node.memo]
        key = node.key
        if node.use_cache or (node.seeds and key not in memo):
            memo[key] = value
        if self.concurrent:
            self._complete(node.index)

    def _cache_hits(self) -> set[int]:
        """Nodes not needed because a dependent is already memoised (no re-run)."""
        nodes = self.nodes
        memos = self.memos
        needed = [False] * len(nodes)
        needed[-1] = True
        for node in reversed(nodes):
            if not needed[node.index]:
                continue
            if node.use_cache:
                found = memos[node.memo].get(node.key, _MISSING)
                if found is not _MISSING and type(found) is not Run:
                    continue  # a hit: its own dependencies need not run
            for dep in node.deps:
                needed[dep] = True
        return {i for i, need in enumerate(needed) if not need}

    # -- one node -------------------------------------------------------------------
    async def exec_node(self, node: Node, host: Host | None) -> None:
        """Produce *node*'s value: from the memo, a claim of another run, or a call."""
        i = node.index
        use_cache = node.use_cache
        memo = self.memos[node.memo]
        key = node.key
        if use_cache:
            found = memo.get(key, _MISSING)
            while found is not _MISSING:
                if type(found) is Run:
                    await found._wait_for(key)
                    found = memo.get(key, _MISSING)
                    continue
                self.results[i] = found
                if self.concurrent:
                    self._complete(i)
                return
            memo[key] = self  # claim: other runs on this memo wait instead of calling
        try:
            results = self.results
            kwargs = self._arguments(node)
            mode = node.mode
            if mode == 0:
                value = await node.call(**kwargs)
            elif mode == 1:
                value = node.call(**kwargs)
            elif mode == 3:
                value = results[node.deps[0]]
            else:
                value = await self._invoke(node, kwargs, host)
        except BaseException:
            if use_cache:
                if memo.get(key) is self:
                    del memo[key]
                self._wake(key)
            raise
        if use_cache:
            memo[key] = value
            if self.waiters:
                self._wake(key)
        elif node.seeds and key is not None and key not in memo:
            memo[key] = value  # use_cache=False seeds an absent key (FastAPI)
        results[i] = value
        if self.concurrent:
            self._complete(i)

    def _arguments(self, node: Node) -> dict[str, Any]:
        """*node*'s keyword arguments: other nodes' results, then the rest."""
        results = self.results
        kwargs = {name: results[j] for name, j in node.args}
        if node.extra:
            self._extra_args(node, kwargs)
        return kwargs

    def _extra_args(self, node: Node, kwargs: dict[str, Any]) -> None:
        """Arguments that are not other nodes: values, context objects, scopes."""
        if node.values:
            values = self.values
            for name, default in node.values:
                kwargs[name] = values.get(name, default)
        if node.contexts:
            context = self.context
            for name, ctx in node.contexts:
                kwargs[name] = context[ctx]
        for name, cls in node.scope_args:
            kwargs[name] = cls(scopes=list(node.scopes))

    async def call_root(self) -> Any:
        """Call the root callable with its resolved arguments."""
        node = self.nodes[-1]
        kwargs = self._arguments(node)
        mode = node.mode
        if mode == 0:
            return await node.call(**kwargs)
        if mode == 1:
            return node.call(**kwargs)
        return await self._invoke(node, kwargs, None)

    async def _invoke(
        self, node: Node, kwargs: dict[str, Any], host: Host | None
    ) -> Any:
        """The slow kinds: threads, generators and concurrency limits."""
        if node.limit is not None:
            return await self._invoke_limited(node, kwargs, host)
        kind = node.kind
        if kind is _SYNC:
            return await to_thread.run_sync(partial(node.call, **kwargs))
        if kind is _ASYNC_GEN:
            return await self._setup_async_gen(node, kwargs, host, None)
        return await self._setup_sync_gen(node, kwargs, None)

    async def _invoke_limited(
        self, node: Node, kwargs: dict[str, Any], host: Host | None
    ) -> Any:
        assert node.limit is not None
        limiter = self.container._limiter(node.limit)
        borrower = object()
        await limiter.acquire_on_behalf_of(borrower)
        permit: tuple[Any, object] | None = (limiter, borrower)
        try:
            kind = node.kind
            if kind is _ASYNC_GEN:
                value = await self._setup_async_gen(node, kwargs, host, permit)
                permit = None  # held until teardown
                return value
            if kind is CallKind.SYNC_GEN:
                value = await self._setup_sync_gen(node, kwargs, permit)
                permit = None
                return value
            if kind is _ASYNC:
                return await node.call(**kwargs)
            if node.thread:
                return await to_thread.run_sync(partial(node.call, **kwargs))
            return node.call(**kwargs)
        finally:
            if permit is not None:
                limiter.release_on_behalf_of(borrower)

    def _exit_list(self, node: Node) -> list[Exit]:
        memo = node.memo
        if memo == MEMO_RUN:
            return self.exits
        if memo == MEMO_SCOPE:
            return self.scope._exits
        return self.container._exits

    async def _setup_sync_gen(
        self, node: Node, kwargs: dict[str, Any], permit: tuple[Any, object] | None
    ) -> Any:
        gen = node.call(**kwargs)
        if node.thread:
            value = await to_thread.run_sync(_first_value, gen, node.name)
        else:
            value = _first_value(gen, node.name)
        self._exit_list(node).append(
            Exit(
                CallKind.SYNC_GEN,
                gen,
                node.name,
                permit=permit,
                thread=node.thread,
                path=node.path,
            )
        )
        return value

    async def _setup_async_gen(
        self,
        node: Node,
        kwargs: dict[str, Any],
        host: Host | None,
        permit: tuple[Any, object] | None,
    ) -> Any:
        if (
            host is not None  # a runner task, which ends before the teardown
            or node.memo == MEMO_APP
            or (node.memo == MEMO_SCOPE and not self.inline_request_gens)
            or (
                self.main_cs is not None
                # the eager scope closes after this call's own teardowns
                and not (self.eager and (node.memo == MEMO_RUN or self.owns_scope))
            )
        ):
            # Its teardown must run in the task that set it up, and that cannot be
            # this one: host it in a helper task that waits for the teardown.
            return await self.container._hosted_setup(
                node, kwargs, self._exit_list(node), permit
            )
        gen = node.call(**kwargs)
        try:
            value = await gen.__anext__()
        except StopAsyncIteration:
            raise _no_yield(node.name, node.path) from None
        self._exit_list(node).append(
            Exit(_ASYNC_GEN, gen, node.name, permit=permit, path=node.path)
        )
        return value

    # -- claims shared with other runs -----------------------------------------------
    async def _wait_for(self, key: Any) -> None:
        if self.waiters is None:
            self.waiters = {}
        event = self.waiters.get(key)
        if event is None:
            event = self.waiters[key] = anyio.Event()
        await event.wait()

    def _wake(self, key: Any) -> None:
        if self.waiters:
            event = self.waiters.pop(key, None)
            if event is not None:
                event.set()

    # -- concurrency -----------------------------------------------------------------
    def _begin_concurrency(self, suspended: int) -> bool:
        """Main's node *suspended* waits: if other nodes are ready, go concurrent."""
        nodes = self.nodes
        last = len(nodes) - 1
        skip = self.skip or ()
        remaining = [0] * last
        ready: deque[int] = deque()
        for j in range(suspended + 1, last):
            if j in skip:
                continue
            count = 0
            for dep in nodes[j].deps:
                if dep >= suspended and dep not in skip:
                    count += 1
            remaining[j] = count
            if not count:
                ready.append(j)
        if not ready:
            return False
        self.remaining = remaining
        self.ready = ready
        self.concurrent = True
        if nodes[suspended].memo != MEMO_APP:
            # Creating an app-scoped value happens once: it says nothing about
            # whether later calls of this plan will wait.
            self.plan.state.concurrent_seen = True
        if self.main_cs is None and cancel_scope_marker() is self.start_marker:
            # Nothing left a cancel scope open in this task, so ours nests correctly
            # under whatever the suspended dependency opens from now on.
            self.main_cs = CancelScope()
            self.main_cs.__enter__()
        self._spawn()
        return True

    async def _drive_main(self, coro: Any, pending: Any) -> None:
        try:
            await Drive(coro, pending)
        except BaseException as exc:
            self._main_failed(exc)

    def _main_failed(self, exc: BaseException) -> None:
        main_cs = self.main_cs
        if (
            isinstance(exc, self.cancelled_exc)
            and main_cs is not None
            and main_cs.cancel_called
            and self.failure is not None
        ):
            return  # our own cancellation, because something else failed
        self.fail(exc)

    def _complete(self, i: int) -> None:
        remaining = self.remaining
        last = len(remaining)
        skip = self.skip
        for dep in self.plan.dependents[i]:
            if dep == last or (skip is not None and dep in skip):
                continue
            remaining[dep] -= 1
            if not remaining[dep]:
                self.ready.append(dep)

    def _spawn(self) -> None:
        self.working += 1
        self.container._spawn(self._runner)

    async def work(self, host: Host | None) -> None:
        """Drain the shared ready queue; spawn a runner whenever a node waits."""
        ready = self.ready
        nodes = self.nodes
        while ready and self.failure is None:
            coro = self.exec_node(nodes[ready.popleft()], host)
            try:
                pending = coro.send(None)
            except StopIteration:
                continue
            if ready:
                self._spawn()
            await Drive(coro, pending)

    async def _runner(self) -> None:
        """A runner task: drain the ready queue; report every failure to the run."""
        cancelled = self.cancelled_exc
        try:
            with CancelScope() as scope:
                self.runner_scopes.append(scope)
                if self.failure is not None:
                    scope.cancel()
                try:
                    await self.work(_IN_RUNNER)
                except BaseException as exc:
                    if not (isinstance(exc, cancelled) and scope.cancel_called):
                        self.fail(exc)
                    raise  # ours is swallowed by the scope; others go on below
        except BaseException as exc:
            if isinstance(exc, cancelled):
                raise  # the container is shutting down
            # Already reported: never let a dependency's error fail the container.
        finally:
            self.working -= 1
            if not self.working and self.idle is not None:
                self.idle.set()

    def fail(self, exc: BaseException) -> None:
        """Record a failure; the first one cancels everything still running."""
        if self.failure is None:
            self.failure = exc
            for scope in self.runner_scopes:
                scope.cancel()
            if self.main_cs is not None:
                self.main_cs.cancel()
        elif exc is not self.failure and not isinstance(exc, self.cancelled_exc):
            self.extra_failures.append(exc)

    async def _finish_concurrent(self) -> None:
        """Main helps drain the queue, waits for the runners, then reports failure."""
        if self.failure is None:
            try:
                await self.work(None)
            except BaseException as exc:
                self._main_failed(exc)
        try:
            while self.working:
                with CancelScope(shield=self.failure is not None):
                    event = self.idle = anyio.Event()
                    await event.wait()
        except BaseException as exc:  # the caller cancelled us while runners work
            self.fail(exc)
            with CancelScope(shield=True):
                while self.working:
                    event = self.idle = anyio.Event()
                    await event.wait()
        failure = self.failure
        if failure is not None:
            if self.extra_failures:
                errors = [failure, *self.extra_failures]
                msg = f"{len(errors)} dependencies failed at once"
                raise BaseExceptionGroup(msg, errors)
            raise failure


_IN_RUNNER: Final = Host()  # passed as ``host`` by runner tasks
# Shared by every run that never goes concurrent (most): never appended to, since
# only a concurrent run queues work, and it gets its own deque first. Saves ~600 B
# per in-flight call.
_NOT_CONCURRENT: Final[deque[int]] = deque()


def _same_group(a: object, b: object) -> bool:
    """Whether *a* is a copy of the exception group *b* with the same members."""
    ours: tuple[object, ...] | None = getattr(a, "exceptions", None)
    theirs: tuple[object, ...] | None = getattr(b, "exceptions", None)
    if ours is None or theirs is None:
        return False
    return len(ours) == len(theirs) and all(
        x is y or _same_group(x, y) for x, y in zip(ours, theirs, strict=True)
    )


def _first_value(gen: Any, name: str) -> Any:
    try:
        return next(gen)
    except StopIteration:
        raise _no_yield(name) from None


def _no_yield(name: str, path: tuple[str, ...] = ()) -> YieldError:
    msg = f"yield dependency {name} finished without yielding"
    return YieldError(
        msg,
        path=path,
        callable=name,
        hint="a yield dependency must yield exactly once",
    )
