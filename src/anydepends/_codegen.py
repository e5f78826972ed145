"""Generated straight-line runners: a plan's inline path as one Python function.

For the common call (a fresh private scope, nothing waiting) the general scheduler
pays per node for its generality: a coroutine of its own, a memo claim, a keyword
dict. Here each plan gets one ``async def`` that calls every dependable directly,
with arguments passed by name from a flat results list, stepping each coroutine once
(``send(None)``). The memo is private to the call and every cache key is computed
once by construction, so none is consulted. App-scoped values are read from the
container's memo; anything else unusual hands over to the general scheduler.

The moment a dependency really suspends, the runner *bails*: the general scheduler
takes over the suspended coroutine in the same task (so cancel scopes stay intact)
and the rest of the plan, concurrently. The source is registered with ``linecache``
so tracebacks through it show real lines.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Coroutine
from functools import partial
from itertools import count
from typing import TYPE_CHECKING, Any, Final

from anyio import to_thread

from ._introspect import EMPTY as _EMPTY
from ._introspect import CallKind
from ._lowlevel import Drive
from ._plan import MEMO_APP, MEMO_RUN, Node, Plan
from ._scheduler import Run, _first_value, _no_yield
from ._teardown import Exit

if TYPE_CHECKING:
    from ._container import Container

__all__ = ["FastRunner", "build_runner"]

FastRunner = Callable[..., Coroutine[Any, Any, Any]]

_MISSING: Final = object()
_counter = count()


def build_runner(container: Container, plan: Plan[Any]) -> FastRunner | None:
    """The generated runner for *plan* in *container*, or ``None`` if it has none.

    Plans with concurrency limits, or that inject the :class:`Scope` (a dependency
    could then share the private memo), keep the general scheduler.
    """
    from ._container import Container as ContainerType

    for node in plan.nodes:
        if node.limit is not None or any(
            t is not ContainerType for _, t in node.contexts
        ):
            return None
    return _Generator(container, plan).build()


class _Generator:
    """Writes the source of one plan's runner.

    ``inline`` awaits every dependency natively, in plan order, and is stepped once
    by ``run``: a plan whose dependencies never wait costs one ``StopIteration`` in
    all. Before each dependency ``inline`` records its index in ``S[0]``; if it
    suspends there, ``run`` hands the suspended ``inline`` to the general scheduler
    (which finishes that one dependency through it, since ``inline`` returns as soon
    as ``S[1]`` says it was handed over) and the rest of the plan.
    """

    def __init__(self, container: Container, plan: Plan[Any]) -> None:
        self.container = container
        self.plan = plan
        self.sequential = (
            container.sequential if plan.sequential is None else plan.sequential
        )
        self.namespace: dict[str, Any] = {
            "MISSING": _MISSING,
            "APP": container._app_memo,
            "Exit": Exit,
            "partial": partial,
            "to_thread": to_thread.run_sync,
            "first_value": _first_value,
            "no_yield": _no_yield,
            "ASYNC_GEN": CallKind.ASYNC_GEN,
            "SYNC_GEN": CallKind.SYNC_GEN,
            "BAIL": partial(_bail, container, plan),
            "Drive": Drive,
            "RUN": Run,
        }
        self.lines: list[str] = []

    def const(self, name: str, value: Any) -> str:
        self.namespace[name] = value
        return name

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    def build(self) -> FastRunner:
        nodes = self.plan.nodes
        self.lines.append("async def inline(R, values, EF, ER, S):")
        for node in nodes[:-1]:
            self.node(node)
        self.emit("return")
        self.lines.append("")
        self.lines.append("async def run(R, values, EF, ER, start):")
        self.emit("S = [-1, False, False]  # current node, handed over, app miss")
        self.emit("c = inline(R, values, EF, ER, S)")
        self.emit("try:")
        self.emit("p = c.send(None)", 2)
        self.emit("except StopIteration:")
        self.emit("if S[2]:", 2)
        self.emit("return await BAIL(R, values, EF, ER, start, S[0], None, None)", 3)
        self.emit("else:")
        if self.sequential:
            self.emit("await Drive(c, p)", 2)
            self.emit("if S[2]:", 2)
            self.emit(
                "return await BAIL(R, values, EF, ER, start, S[0], None, None)", 3
            )
        else:
            self.emit("S[1] = True", 2)
            self.emit("return await BAIL(R, values, EF, ER, start, S[0], c, p)", 2)
        self.root(nodes[-1])
        source = "\n".join(self.lines) + "\n"
        filename = f"<anydepends plan {next(_counter)}: {nodes[-1].name}>"
        code = compile(source, filename, "exec")
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
        exec(code, self.namespace)
        runner: FastRunner = self.namespace["run"]
        return runner

    def arguments(self, node: Node) -> str:
        i = node.index
        parts = [f"{name}=R[{j}]" for name, j in node.args]
        for name, default in node.values:
            if default is _EMPTY:
                parts.append(f"{name}=values[{name!r}]")
            else:
                default_name = self.const(f"D{i}_{name}", default)
                parts.append(f"{name}=values.get({name!r}, {default_name})")
        for name, _ in node.contexts:
            # Only the container can be injected here (see build_runner).
            parts.append(f"{name}={self.const('CONTAINER', self.container)}")
        for name, cls in node.scope_args:
            scopes = self.const(f"S{i}", node.scopes)
            make = self.const(f"SS{i}_{name}", cls)
            parts.append(f"{name}={make}(scopes=list({scopes}))")
        return ", ".join(parts)

    def node(self, node: Node) -> None:
        i = node.index
        self.emit(f"# {i}: {node.name} ({node.kind.name.lower()}, {node.lifetime})")
        fn = self.const(f"F{i}", node.call)
        name = self.const(f"N{i}", node.name)
        self.emit(f"S[0] = {i}")
        if node.memo == MEMO_APP:
            if node.use_cache:
                key = self.const(f"K{i}", node.key)
                self.emit(f"v = APP.get({key}, MISSING)")
                self.emit("if v is MISSING or v.__class__ is RUN:")
                self.emit("S[2] = True", 2)
                self.emit("return", 2)
                self.emit(f"R[{i}] = v")
            else:
                self.emit("S[2] = True")
                self.emit("return")
            return
        if node.mode == 3:
            self.emit(f"R[{i}] = R[{node.deps[0]}]")
            return
        args = self.arguments(node)
        exits = "EF" if node.memo == MEMO_RUN else "ER"
        kind = node.kind
        if kind is CallKind.ASYNC:
            self.emit(f"R[{i}] = await {fn}({args})")
        elif kind is CallKind.SYNC and not node.thread:
            self.emit(f"R[{i}] = {fn}({args})")
            return  # cannot suspend
        elif kind is CallKind.SYNC:
            self.emit(f"R[{i}] = await to_thread(partial({fn}, {args}))")
        elif kind is CallKind.ASYNC_GEN:
            self.emit(f"g = {fn}({args})")
            self.emit("try:")
            self.emit(f"R[{i}] = await g.__anext__()", 2)
            self.emit("except StopAsyncIteration:")
            where = self.const(f"P{i}", node.path)
            self.emit(f"raise no_yield({name}, {where}) from None", 2)
            self.emit(f"{exits}.append(Exit(ASYNC_GEN, g, {name}, path={where}))")
        elif node.thread:
            self.emit(f"g = {fn}({args})")
            self.emit(f"R[{i}] = await to_thread(first_value, g, {name})")
            where = self.const(f"P{i}", node.path)
            self.emit(
                f"{exits}.append(Exit(SYNC_GEN, g, {name}, thread=True, path={where}))"
            )
        else:
            self.emit(f"g = {fn}({args})")
            self.emit(f"R[{i}] = first_value(g, {name})")
            where = self.const(f"P{i}", node.path)
            self.emit(f"{exits}.append(Exit(SYNC_GEN, g, {name}, path={where}))")
            return  # cannot suspend
        if not self.sequential:
            self.emit("if S[1]:")
            self.emit("return  # handed over: the scheduler runs the rest", 2)

    def root(self, node: Node) -> None:
        i = node.index
        self.emit(f"# root: {node.name}")
        fn = self.const(f"F{i}", node.call)
        args = self.arguments(node)
        if node.kind is CallKind.ASYNC:
            self.emit(f"return await {fn}({args})")
        elif node.thread:
            self.emit(f"return await to_thread(partial({fn}, {args}))")
        else:
            self.emit(f"return {fn}({args})")


async def _bail(
    container: Container,
    plan: Plan[Any],
    results: list[Any],
    values: dict[str, Any],
    function_exits: list[Exit],
    request_exits: list[Exit],
    start: object,
    i: int,
    coro: Any,
    pending: Any,
) -> Any:
    """Hand over to the general scheduler at node *i*: the generated ``inline``
    (*coro*) suspended in it, or (*coro* ``None``) it must be run from scratch."""
    from ._scope import Scope

    scope = Scope(container)
    scope._state = 1
    scope._exits = request_exits
    run = Run(plan, scope, values, True, owns_scope=True)
    run.results = results
    run.exits = function_exits
    try:
        return await run.resume(i, coro, pending, start)
    finally:
        run.leave(None)
