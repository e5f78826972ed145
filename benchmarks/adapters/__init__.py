"""The implementations being compared, as metadata the orchestrator can read.

This module imports no benchmarked library: each ``bench_<lib>`` module here
does, and is imported only inside that library's worker subprocess. An implementation
("impl") is one row of a results table: a library in one configuration (e.g. di with
its concurrent executor).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from benchmarks.graphs import Graph

Call = Callable[[], Awaitable[Any]]
"""One request: resolve the root's dependencies in a fresh scope and call it."""

Session = tuple[Call, dict[str, Any]]
"""What an adapter's ``open`` yields: the request callable, the generated namespace."""

Step = Callable[[], Awaitable[object]]
"""The timed part of the ``compile`` scenario: build (and usually call once)."""


@dataclass(frozen=True)
class Phases:
    """What a build step may return to report its parts: seconds per phase, in
    order; the row's time is the sum of the first ``headline`` phases (the rest are
    shown separately). ``keep`` is held until memory has been measured."""

    keep: object
    seconds: dict[str, float]
    headline: int


class Adapter(Protocol):
    """What every ``benchmarks.adapters.bench_<lib>`` module provides.

    The adapters whose rows take part in ``fastapi_route`` also have
    ``open_route(impl, graph, client)``: like ``open``, but the call is one request
    to a FastAPI app through the ASGI client ``client`` (see ``benchmarks.routes``).
    """

    def versions(self) -> dict[str, str]:
        """Versions of the packages this adapter measures."""
        ...

    def open(self, impl: str, graph: Graph) -> AbstractAsyncContextManager[Session]:
        """Set the library up for ``graph`` (container, solved graph...) and yield."""
        ...

    def compile_step(
        self, impl: str, graph: Graph
    ) -> AbstractAsyncContextManager[tuple[Step, dict[str, Any]]]:
        """Prepare everything but the build step; yield that step (timed) and the
        namespace of the generated functions (string annotations).

        The step builds the graph and, for most rows, makes the first call (see
        ``ImplInfo.build_step``); what it returns is kept alive until its memory
        has been measured.
        """
        ...


@dataclass(frozen=True)
class ImplInfo:
    """One row of the tables: a library in one configuration."""

    key: str
    label: str
    lib: str  # benchmarks.adapters.bench_<lib>, and the worker subprocess it runs in
    only: frozenset[str] | None = None  # scenarios it takes part in (None: all)
    na: Mapping[str, str] = field(default_factory=dict)  # scenario -> why n/a
    note: str = ""  # footnote shown under the tables (e.g. "sync deps in a thread")
    hand: bool = False  # a hand-written baseline
    build_step: str = ""  # what `compile` times; impls without one are left out of it

    def status(self, scenario: str) -> str | None:
        """None if the impl runs ``scenario``, else the reason it is n/a (or "")."""
        if scenario in self.na:
            return self.na[scenario]
        if self.only is None and scenario in OWN_ROWS:
            return ""  # a scenario that only the impls naming it take part in
        if self.only is not None and scenario not in self.only:
            return ""  # not part of this comparison; left out of the table
        return None


# Scenarios whose tables hold only the implementations that name them in `only`
# (fastapi_route compares FastAPI apps, not containers).
OWN_ROWS = frozenset({"fastapi_route"})
_ROUTE = frozenset({"fastapi_route"})


_NO_APP = "no app-scoped dependencies"
_OVERLAP = frozenset({"overhead", "sync_leaf", "fanout", "readiness", "wide"})
# The scenarios every library takes part in; `scope` and `loaded` add the rows
# that answer their question (the others would only lengthen the quick run).
_ALL_BUT_NEW = frozenset(
    {"overhead", "sync_leaf", "fanout", "readiness", "wide", "deep", "singleton"}
    | {"compile", "memory"}
)

IMPLS: tuple[ImplInfo, ...] = (
    ImplInfo(
        "hand-seq",
        "hand-written, sequential",
        "handwritten",
        hand=True,
        note="plain awaits in topological order; the floor for one task",
    ),
    ImplInfo(
        "hand-tg",
        "hand-written, anyio task group",
        "handwritten",
        only=_OVERLAP | {"loaded"},
        hand=True,
        note="independent branches in one anyio task group, written per graph",
    ),
    ImplInfo(
        "hand-levels",
        "hand-written, level by level",
        "handwritten",
        only=frozenset({"readiness"}),
        hand=True,
        note="one anyio task group per level of the graph",
    ),
    ImplInfo(
        "bare-task",
        "bare task (waits, no DI)",
        "handwritten",
        only=frozenset({"memory"}),
        hand=True,
        note="a task that only waits on the event: the floor for memory",
    ),
    ImplInfo(
        "anydepends",
        "anydepends",
        "anydepends",
        note="container.call(handler); sync dependables inline via "
        "Depends(f, sync_to_thread=False)",
        build_step="anydepends: compile + first call",
    ),
    ImplInfo(
        "anydepends-first-scope",
        "anydepends (first call via scope)",
        "anydepends",
        only=frozenset({"overhead"}),
        note="container.call(handler) in a container whose first call of the plan "
        "went through `async with container.scope() as s: await s.call(handler)`",
    ),
    ImplInfo(
        "anydepends-scope",
        "anydepends (scope, first call via scope)",
        "anydepends",
        only=frozenset({"scope", "loaded", "memory"}),
        note="`async with container.scope() as s: await s.call(handler)` per "
        "request, the plan's first call made the same way",
    ),
    ImplInfo(
        "anydepends-scope-first-call",
        "anydepends (scope, first call via container.call)",
        "anydepends",
        only=frozenset({"scope"}),
        note="scope() + scope.call per request in a container whose first call "
        "of the plan went through container.call(handler)",
    ),
    ImplInfo(
        "anydepends-cold",
        "anydepends (no idle worker)",
        "anydepends",
        only=frozenset({"fanout"}),
        note="container.call(handler) with no worker task kept between calls "
        "(`anydepends._pool.IDLE_KEPT = 0`): every runner starts a task, as in a "
        "container's first concurrent call",
    ),
    ImplInfo(
        "anydepends-seq",
        "anydepends (sequential=True)",
        "anydepends",
        only=frozenset(
            {"overhead", "sync_leaf", "fanout", "readiness", "wide", "deep", "loaded"}
        ),
        note="Container(sequential=True): FastAPI's order, no task group",
    ),
    ImplInfo(
        "anydepends-thread",
        "anydepends (sync in thread)",
        "anydepends",
        only=frozenset({"sync_leaf"}),
        note="the default: sync dependables run in a worker thread",
    ),
    ImplInfo(
        "fastapi",
        "FastAPI solve_dependencies",
        "fastapi",
        na={"singleton": _NO_APP},
        only=_ALL_BUT_NEW | {"scope"},
        build_step="FastAPI: get_dependant + first solve_dependencies",
        note="solve_dependencies on a fake Request; sync dependables run in a thread",
    ),
    ImplInfo(
        "di",
        "di (AsyncExecutor)",
        "di",
        only=_ALL_BUT_NEW | {"scope"},
        build_step="di: Container.solve + first execute_async",
        note="solve() once, execute_async per request scope; sync dependables inline",
    ),
    ImplInfo(
        "di-concurrent",
        "di (ConcurrentAsyncExecutor)",
        "di",
        only=_ALL_BUT_NEW,
        note="one anyio task per ready node (di's online topological sort)",
    ),
    ImplInfo(
        "fastdepends",
        "FastDepends @inject",
        "fastdepends",
        na={"singleton": _NO_APP + " (FastDepends#168)"},
        only=_ALL_BUT_NEW - {"compile"},
        note="cast=False (no pydantic validation); sync dependables run in a thread",
    ),
    ImplInfo(
        "dishka",
        "dishka container() + get",
        "dishka",
        build_step="dishka: make_async_container + first get",
        note="every node a factory keyed by its return type; one get of the root's "
        "type per request container; sync factories inline",
    ),
    ImplInfo(
        "wireup",
        "wireup enter_scope() + get",
        "wireup",
        build_step="wireup: create_async_container + first get",
        note="@injectable factories keyed by return type; one get per scope; "
        "sync factories inline",
    ),
    # fastapi_route: whole FastAPI apps through an ASGI client (benchmarks/routes.py)
    ImplInfo(
        "hand-route-seq",
        "FastAPI, no Depends: awaited by hand",
        "fastapi",
        only=_ROUTE,
        hand=True,
        note="(fastapi_route) the same app and functions, the endpoint has no "
        "Depends and awaits them in order itself: the floor, and the baseline the "
        "resolution column subtracts",
    ),
    ImplInfo(
        "hand-route-tg",
        "FastAPI, no Depends: anyio task group",
        "fastapi",
        only=_ROUTE,
        hand=True,
        note="(fastapi_route) the endpoint runs the independent branches in one "
        "anyio task group itself",
    ),
    ImplInfo(
        "anydepends-route",
        "anydepends ConcurrentRoute",
        "anydepends",
        only=_ROUTE,
        note="(fastapi_route) the same app with route_class = "
        "ConcurrentRoute(container) and lifespan(container)",
    ),
    ImplInfo(
        "anydepends-route-seq",
        "anydepends ConcurrentRoute (sequential=True)",
        "anydepends",
        only=_ROUTE,
        note="(fastapi_route) ConcurrentRoute(container, sequential=True): "
        "FastAPI's order, in the request's task",
    ),
    ImplInfo(
        "fastapi-route",
        "FastAPI (APIRoute)",
        "fastapi",
        only=_ROUTE,
        note="(fastapi_route) a plain FastAPI app: FastAPI resolves the endpoint's "
        "Depends (solve_dependencies), one after the other",
    ),
)

BY_KEY: dict[str, ImplInfo] = {i.key: i for i in IMPLS}
LIBS: tuple[str, ...] = tuple(dict.fromkeys(i.lib for i in IMPLS))
