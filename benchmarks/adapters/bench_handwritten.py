"""The physical limits: the same generated dependables, called by hand.

``hand-seq`` calls every node once, in topological order, with plain awaits (source
generated from the graph, exactly what one would write by hand). ``hand-tg`` runs the
independent branches of each hand-shaped graph in one anyio task group, written per
graph. ``hand-levels`` runs each level of the graph in its own task group (the
level-by-level scheduler the ``readiness`` scenario is about).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio

from benchmarks import codegen
from benchmarks.adapters import Call, Session, Step
from benchmarks.graphs import Graph, Node, levels

_MISSING = object()


def versions() -> dict[str, str]:
    """anyio and trio, which the hand-written code runs on."""
    found = {}
    for name in ("anyio", "trio"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _render_sequential(graph: Graph) -> str:
    """Straight-line code: one local per node, try/finally per async generator."""
    lines = ["async def run():"]
    pad = "    "
    opened: list[str] = []
    for node in graph.nodes[:-1]:
        args = ", ".join(f"v_{d}" for d in node.deps)
        call = f"n_{node.name}({args})"
        if node.kind == "async":
            call = "await " + call
        if node.app:
            # App-scoped: computed on first use, kept in APP, closed with the session.
            lines.append(f"{pad}v_{node.name} = APP.get({node.name!r}, MISSING)")
            lines.append(f"{pad}if v_{node.name} is MISSING:")
            if node.kind == "asyncgen":
                lines.append(f"{pad}    g = {call}")
                lines.append(f"{pad}    APP_GENS.append(g)")
                lines.append(f"{pad}    v_{node.name} = await g.__anext__()")
            else:
                lines.append(f"{pad}    v_{node.name} = {call}")
            lines.append(f"{pad}    APP[{node.name!r}] = v_{node.name}")
        elif node.kind == "asyncgen":
            lines.append(f"{pad}g_{node.name} = {call}")
            lines.append(f"{pad}v_{node.name} = await g_{node.name}.__anext__()")
            lines.append(f"{pad}try:")
            opened.append(pad)
            pad += "    "
        else:
            lines.append(f"{pad}v_{node.name} = {call}")
    root = graph.root
    lines.append(
        f"{pad}return await n_{root.name}({', '.join(f'v_{d}' for d in root.deps)})"
    )
    for node, outer in zip(
        reversed([n for n in graph.nodes if n.kind == "asyncgen" and not n.app]),
        reversed(opened),
        strict=True,
    ):
        lines.append(f"{outer}finally:")
        lines.append(f"{outer}    await anext(g_{node.name}, None)")
    return "\n".join(lines) + "\n"


def _sequential(graph: Graph, ns: dict[str, Any]) -> Call:
    exec(compile(_render_sequential(graph), "<hand-seq>", "exec"), ns)
    return ns["run"]  # type: ignore[no-any-return]


def _fan(leaves: list[Callable[[], Any]], root: Callable[..., Any]) -> Call:
    """All leaves at once in one task group, then the root."""

    async def run() -> Any:
        values: list[Any] = [None] * len(leaves)

        async def one(i: int, f: Callable[[], Any]) -> None:
            values[i] = await f()

        async with anyio.create_task_group() as tg:
            for i, f in enumerate(leaves):
                tg.start_soon(one, i, f)
        return await root(*values)

    return run


def _request_tg(ns: dict[str, Any], sync_settings: bool) -> Call:
    """The 10-node graph: settings->db, cache and http overlap, the rest in order."""
    f = {k[2:]: v for k, v in ns.items() if k.startswith("n_")}

    async def run() -> Any:
        r: dict[str, Any] = {}

        async def db_branch() -> None:
            s = f["settings"]() if sync_settings else await f["settings"]()
            g = f["db"](s)
            r["settings"], r["gen"] = s, g
            r["db"] = await g.__anext__()

        async def leaf(name: str) -> None:
            r[name] = await f[name]()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(db_branch)
                tg.start_soon(leaf, "cache")
                tg.start_soon(leaf, "http")
            s, db, cache = r["settings"], r["db"], r["cache"]
            repo_a = await f["repo_a"](db, s)
            repo_b = await f["repo_b"](db, cache)
            auth = await f["auth"](s, r["http"])
            svc_x = await f["svc_x"](repo_a, repo_b)
            svc_y = await f["svc_y"](repo_b, auth, cache)
            return await f["handler"](svc_x, svc_y)
        finally:
            if "gen" in r:
                await anext(r["gen"], None)

    return run


def _readiness_tg(ns: dict[str, Any]) -> Call:
    """A alone, B then C in a second task: done when the longer of the two is."""
    n_a, n_b, n_c, n_handler = ns["n_a"], ns["n_b"], ns["n_c"], ns["n_handler"]

    async def run() -> Any:
        r: dict[str, Any] = {}

        async def a() -> None:
            r["a"] = await n_a()

        async def bc() -> None:
            r["c"] = await n_c(await n_b())

        async with anyio.create_task_group() as tg:
            tg.start_soon(a)
            tg.start_soon(bc)
        return await n_handler(r["a"], r["c"])

    return run


def _levels(graph: Graph, ns: dict[str, Any]) -> Call:
    """Each level in its own task group: a level waits for the slowest of the last."""
    plan: list[list[Node]] = levels(graph)
    if any(n.kind != "async" for n in graph.nodes):
        raise ValueError("hand-levels handles async functions only")

    async def run() -> Any:
        r: dict[str, Any] = {}

        async def one(node: Node) -> None:
            r[node.name] = await ns[f"n_{node.name}"](*(r[d] for d in node.deps))

        for level in plan:
            if len(level) == 1:
                await one(level[0])
            else:
                async with anyio.create_task_group() as tg:
                    for node in level:
                        tg.start_soon(one, node)
        return r[graph.root.name]

    return run


def _task_group(graph: Graph, ns: dict[str, Any]) -> Call:
    name = graph.name
    if name.startswith(("overhead", "sync_leaf")):  # loaded: overhead_<where>
        return _request_tg(ns, sync_settings=name == "sync_leaf")
    if name == "readiness":
        return _readiness_tg(ns)
    if name.startswith(("fanout", "wide")):
        leaves = [ns[f"n_{d}"] for d in graph.root.deps]
        return _fan(leaves, ns[f"n_{graph.root.name}"])
    raise ValueError(f"no hand-written task-group version of {name}")


def runner(impl: str, graph: Graph, ns: dict[str, Any]) -> Call:
    """The hand-written request ``impl`` over the functions generated in ``ns``
    (also the body of the ``fastapi_route`` scenario's endpoints without Depends)."""
    if impl == "hand-seq":
        return _sequential(graph, ns)
    if impl == "hand-tg":
        return _task_group(graph, ns)
    if impl == "hand-levels":
        return _levels(graph, ns)
    raise KeyError(impl)


@asynccontextmanager
async def open(impl: str, graph: Graph) -> AsyncIterator[Session]:
    """Yield the hand-written request for ``graph``."""
    ns = codegen.build(graph, codegen.PLAIN, APP={}, APP_GENS=[], MISSING=_MISSING)
    call = runner(impl, graph, ns)
    try:
        yield call, ns
    finally:
        for gen in reversed(ns["APP_GENS"]):
            await anext(gen, None)


def compile_step(
    impl: str, graph: Graph
) -> AbstractAsyncContextManager[tuple[Step, dict[str, Any]]]:
    """Hand-written code has no build step (the compile scenario skips it)."""
    raise NotImplementedError(impl)
