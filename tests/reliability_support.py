"""Shared machinery for the reliability tests (random graphs under failure).

- :class:`GraphSpec`: a random DAG of dependables of every kind (async and sync
  functions, async and sync generators, classes), with ``use_cache`` and lifetime per
  declaration, shared nodes, and a root. Built from hypothesis draws
  (:func:`graph_specs`) or from a seeded :class:`random.Random` (:func:`random_graph`):
  both go through :func:`_generate`, so they produce the same family of graphs.
- :class:`Recorder` and :func:`build`: turn a spec into real dependables (closures per
  graph) that log every call, ``yield`` setup and teardown, can inject faults and fire
  a hook when a dependency starts, and watch for leaks (code still running, generators
  never finished, generators closed by the garbage collector instead of torn down).
- :class:`Reference`: a tiny sequential resolver with FastAPI's semantics (DFS in
  declaration order; cache key = callable + lifetime; ``use_cache=False`` always calls
  and seeds an absent key; the first stored value wins) and anydepends' deviation (a
  cache hit never re-runs its subtree). It predicts every event of a run.
- :func:`drive`: runs a list of operations (``container.call`` or a scope with one or
  more ``scope.call``) on a container, marking the log between them.
- Invariant checks shared by the property, fault, cancellation and stress tests.

Values: every dependable returns (or yields) a :class:`Val` whose ``iid`` is
``(node, n)`` (the n-th invocation of that node) and whose ``args`` maps each parameter
to the ``iid`` of the value it received, so a run's whole data flow can be read back.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import os
import random
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import sniffio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from anydepends import Container, Depends

# -- run sizes ----------------------------------------------------------------------

FULL: Final = os.environ.get("ANYDEPENDS_STRESS", "") == "full"


def sized(short: int, full: int) -> int:
    """*full* under ``ANYDEPENDS_STRESS=full`` (nox ``stress``), else *short*."""
    return full if FULL else short


def hypothesis_settings(short: int, full: int) -> settings:
    """Modest example counts normally, more under ``ANYDEPENDS_STRESS=full``."""
    return settings(
        max_examples=sized(short, full),
        deadline=None,  # worker threads and loop start-up make timings noisy
        database=None,  # keep the working tree clean
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )


BACKENDS: Final = ("asyncio", "trio")


def run(
    backend: str,
    fn: Callable[..., Any],
    *args: Any,
    timeout: float = 30.0,
    progress: str = "",
    debug: bool = True,
) -> Any:
    """``anyio.run`` on *backend* (asyncio in debug mode, like the suite's fixture,
    unless *debug* is false: for long loops that measure, not hunt leaks).

    The event loop runs in a daemon thread joined with *timeout*: a hang inside a
    shielded wait (which ``fail_after`` cannot interrupt) fails the test, naming
    *progress*, instead of hanging the suite. The stuck loop is left behind.
    """
    options = {"debug": debug} if backend == "asyncio" else {}
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = anyio.run(
                fn, *args, backend=backend, backend_options=options
            )
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"reliability-{backend}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        msg = (
            f"the event loop hung for {timeout:.0f} s"
            f" (a shielded wait never ended?) {progress}"
        )
        raise AssertionError(msg)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- graph specs ----------------------------------------------------------------------

KINDS: Final = ("async", "sync", "async_gen", "sync_gen", "class")
GENERATORS: Final = frozenset({"async_gen", "sync_gen"})
# None is the common case; "request" explicitly is a different cache key for plain
# callables (FastAPI's key includes the declared scope).
LIFETIMES: Final = (None, None, None, "function", "request", "app")
_RANK: Final = {"function": 0, None: 1, "request": 1, "app": 2}


@dataclass(frozen=True)
class Decl:
    """One ``Depends(node, use_cache=..., scope=...)`` declaration."""

    target: int
    use_cache: bool = True
    lifetime: str | None = None


@dataclass(frozen=True)
class NodeSpec:
    """One dependable: its kind and its declarations (parameters ``d0``, ``d1``...)."""

    kind: str
    decls: tuple[Decl, ...] = ()


@dataclass(frozen=True)
class GraphSpec:
    """A DAG: node *i* only declares nodes below *i*; the root declares any."""

    nodes: tuple[NodeSpec, ...]
    root: tuple[Decl, ...]
    root_kind: str = "async"

    @property
    def root_index(self) -> int:
        """The node index the root's invocations are logged under."""
        return len(self.nodes)

    def kind_of(self, index: int) -> str:
        """The kind of node *index* (the root included)."""
        return self.root_kind if index == self.root_index else self.nodes[index].kind

    def all_decls(self) -> Iterable[Decl]:
        """Every declaration in the graph, the root's included."""
        for node in self.nodes:
            yield from node.decls
        yield from self.root

    def key(self, decl: Decl) -> tuple[int, str]:
        """FastAPI's cache key (no security scopes here): callable and lifetime."""
        gen = self.nodes[decl.target].kind in GENERATORS
        return decl.target, decl.lifetime or ("request" if gen else "")

    def mixed_nodes(self) -> frozenset[int]:
        """Nodes with a cache key declared both with and without ``use_cache``.

        Concurrently, which of those declarations stores first is a race (the design
        allows a cached declaration to read a value an uncached twin seeded first), so
        their call counts are only bounded, not exact.
        """
        seen: dict[tuple[int, str], set[bool]] = {}
        for decl in self.all_decls():
            seen.setdefault(self.key(decl), set()).add(decl.use_cache)
        return frozenset(key[0] for key, flags in seen.items() if len(flags) == 2)

    def describe(self) -> str:
        """A compact one-line rendering, for failure messages."""

        def decls(ds: Sequence[Decl]) -> str:
            return ",".join(
                f"{d.target}{'' if d.use_cache else '!'}"
                f"{'' if d.lifetime is None else '@' + d.lifetime}"
                for d in ds
            )

        nodes = " ".join(
            f"{i}:{n.kind}({decls(n.decls)})" for i, n in enumerate(self.nodes)
        )
        return f"{nodes} root:{self.root_kind}({decls(self.root)})"


class _Picker:
    """What :func:`_generate` needs from a source of choices."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, options: Sequence[Any]) -> Any:
        raise NotImplementedError


class _RandomPicker(_Picker):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[Any]) -> Any:
        return self.rng.choice(options)


class _DrawPicker(_Picker):
    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[Any]) -> Any:
        return self.draw(st.sampled_from(list(options)))


def _generate(pick: _Picker, max_nodes: int, max_root: int = 4) -> GraphSpec:
    n = pick.integer(1, max_nodes)
    kinds: list[str] = []
    decls: list[list[Decl]] = []
    for i in range(n):
        kinds.append(pick.choice(KINDS))
        mine: list[Decl] = []
        for _ in range(pick.integer(0, min(3, i))):
            mine.append(
                Decl(
                    pick.integer(0, i - 1),
                    pick.choice((True, True, True, False)),
                    pick.choice(LIFETIMES),
                )
            )
        decls.append(mine)
    root = [
        Decl(
            pick.integer(0, n - 1),
            pick.choice((True, True, False)),
            pick.choice(LIFETIMES),
        )
        for _ in range(pick.integer(1, max_root))
    ]
    return _normalize(kinds, decls, root, pick.choice(("async", "async", "sync")))


def _normalize(
    kinds: list[str], decls: list[list[Decl]], root: list[Decl], root_kind: str
) -> GraphSpec:
    """Make lifetimes monotone: nothing depends on something that lives shorter.

    That is the rule for ``scope="app"`` (docs/semantics.md §7) applied to every kind:
    a callable declared anywhere with a longer lifetime only declares dependencies at
    least as long-lived. (FastAPI lets a plain request-scoped dependency depend on a
    function-scoped one; such graphs are left out so teardown order is a strict check.)
    """
    n = len(kinds)
    for i in range(n - 1, -1, -1):
        # Parents of i have larger indices (or are the root): already final.
        ranks = [
            _RANK[d.lifetime]
            for j in range(i + 1, n)
            for d in decls[j]
            if d.target == i
        ]
        ranks += [_RANK[d.lifetime] for d in root if d.target == i]
        floor = max(ranks, default=0)
        fixed: list[Decl] = []
        for d in decls[i]:
            if _RANK[d.lifetime] < floor:
                d = Decl(d.target, d.use_cache, "app" if floor == 2 else None)
            fixed.append(d)
        decls[i] = fixed
    nodes = tuple(NodeSpec(k, tuple(d)) for k, d in zip(kinds, decls, strict=True))
    return GraphSpec(nodes, tuple(root), root_kind)


@st.composite
def graph_specs(draw: Any, max_nodes: int = 7) -> GraphSpec:
    """Hypothesis strategy: random dependency DAGs (see :func:`_generate`)."""
    return _generate(_DrawPicker(draw), max_nodes)


def random_graph(rng: random.Random, max_nodes: int = 6) -> GraphSpec:
    """A seeded random DAG from the same family as :func:`graph_specs`."""
    return _generate(_RandomPicker(rng), max_nodes)


# -- operations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """``container.call(root)`` (``calls == 0``), or a scope with *calls* calls.

    With *child*, the second call of the scope runs in a child task (so request-scoped
    async generators are set up in a helper task and torn down there).
    """

    calls: int = 0
    child: bool = False


ops_strategy = st.lists(
    st.one_of(
        st.just(Op()),
        st.builds(Op, calls=st.integers(1, 2), child=st.booleans()),
    ),
    min_size=1,
    max_size=3,
)


def random_ops(rng: random.Random) -> list[Op]:
    """One or two operations, seeded."""
    ops: list[Op] = []
    for _ in range(rng.randint(1, 2)):
        if rng.random() < 0.5:
            ops.append(Op())
        else:
            ops.append(Op(calls=rng.randint(1, 2), child=rng.random() < 0.3))
    return ops


# -- the recorder and the dependables --------------------------------------------------


class Injected(Exception):
    """A fault the tests raise on purpose (compared by identity)."""


class InjectedBase(BaseException):
    """A fault that is not an ``Exception`` (like ``KeyboardInterrupt``)."""


@dataclass
class Timing:
    """How long dependables take: ``None`` = never suspend, 0 = one checkpoint."""

    setup: dict[int, float | None] = field(default_factory=dict)
    teardown: dict[int, float | None] = field(default_factory=dict)

    @classmethod
    def random(
        cls, rng: random.Random, spec: GraphSpec, scale: float = 0.002
    ) -> Timing:
        """Random small delays (real sleeps: for cancellation trials)."""

        def one() -> float | None:
            r = rng.random()
            if r < 0.3:
                return None
            if r < 0.5:
                return 0.0
            return rng.uniform(0, scale)

        t = cls()
        for i in range(len(spec.nodes) + 1):
            t.setup[i] = one()
            t.teardown[i] = one()
        return t


class Val:
    """A dependency's value: which invocation made it and what it received."""

    __slots__ = ("args", "iid")

    def __init__(self, iid: tuple[int, int], args: dict[str, tuple[int, int]]) -> None:
        self.iid = iid
        self.args = args

    def __repr__(self) -> str:
        return f"Val{self.iid}"


Event = tuple[Any, ...]


class Recorder:
    """The log of one run, shared by every dependable of one built graph.

    Thread-safe: sync dependables and sync generator halves run in worker threads.
    Events: ``("call", iid)``, ``("setup", iid)``, ``("teardown", iid, thrown)``,
    ``("fault", phase, iid, exc)``, ``("mark", label)``.
    """

    def __init__(
        self,
        spec: GraphSpec,
        *,
        timing: Timing | None = None,
        faults: dict[tuple[str, int], tuple[int, BaseException]] | None = None,
        on_start: Callable[[str, int], None] | None = None,
    ) -> None:
        self.spec = spec
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.counts: Counter[int] = Counter()
        self.instances: dict[tuple[int, int], dict[str, tuple[int, int]]] = {}
        self.kinds: dict[tuple[int, int], str] = {}
        self.active = 0  # function bodies running now (any thread)
        self.alive: set[tuple[int, int]] = set()  # generators started, not finished
        self.violations: list[str] = []
        self.timing = timing or Timing()
        self.faults = dict(faults or {})
        self.fault_seen: Counter[tuple[str, int]] = Counter()
        self.fired: list[BaseException] = []
        self.on_start = on_start
        self.starts = 0  # setups and teardowns started (for cancellation triggers)

    # -- logging -------------------------------------------------------------------
    def log(self, *event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def mark(self, label: str) -> None:
        """Separate the log into segments (after a call, a scope, the container)."""
        self.log("mark", label)

    def begin(self, node: int, kwargs: dict[str, Any]) -> tuple[int, int]:
        with self.lock:
            self.counts[node] += 1
            iid = (node, self.counts[node])
            self.instances[iid] = {name: v.iid for name, v in kwargs.items()}
            self.kinds[iid] = self.spec.kind_of(node)
            self.active += 1
        return iid

    def end(self) -> None:
        with self.lock:
            self.active -= 1

    def started(self, phase: str, node: int) -> None:
        """A setup or teardown starts: count it and fire the hook (on the loop)."""
        with self.lock:
            self.starts += 1
        hook = self.on_start
        if hook is None:
            return
        if _in_event_loop():
            hook(phase, node)
        else:
            anyio.from_thread.run_sync(hook, phase, node)

    def maybe_fail(self, phase: str, node: int, iid: tuple[int, int]) -> None:
        fault = self.faults.get((phase, node))
        if fault is None:
            return
        nth, exc = fault
        with self.lock:
            self.fault_seen[(phase, node)] += 1
            if self.fault_seen[(phase, node)] != nth:
                return
            self.fired.append(exc)
            self.events.append(("fault", phase, iid, exc))
        raise exc

    # -- delays ----------------------------------------------------------------------
    async def pause(self, phase: str, node: int, iid: tuple[int, int]) -> None:
        delay = (self.timing.setup if phase == "setup" else self.timing.teardown).get(
            node
        )
        if delay is None:
            return
        try:
            if delay:
                await anyio.sleep(delay)
            else:
                await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class():
            if phase == "teardown":
                self.violation(
                    f"the teardown of {iid} was cancelled (must be shielded)"
                )
            raise

    def pause_sync(self, phase: str, node: int) -> None:
        delay = (self.timing.setup if phase == "setup" else self.timing.teardown).get(
            node
        )
        if delay:
            time.sleep(delay)

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)


def build(spec: GraphSpec, rec: Recorder) -> Callable[..., Any]:
    """Real dependables for *spec*, logging into *rec*; returns the root callable."""
    made: list[Any] = []
    for i, node in enumerate(spec.nodes):
        made.append(_make(i, node.kind, _signature(node.decls, made), rec))
    return _make(spec.root_index, spec.root_kind, _signature(spec.root, made), rec)


def _signature(decls: Sequence[Decl], made: list[Any]) -> inspect.Signature:
    return inspect.Signature(
        [
            inspect.Parameter(
                f"d{j}",
                inspect.Parameter.KEYWORD_ONLY,
                default=Depends(
                    made[d.target], use_cache=d.use_cache, scope=d.lifetime
                ),  # type: ignore[arg-type]
            )
            for j, d in enumerate(decls)
        ]
    )


def _make(i: int, kind: str, sig: inspect.Signature, rec: Recorder) -> Any:
    """One dependable of *kind* for node *i* (a closure; ``__signature__`` is *sig*)."""
    fn: Any
    if kind == "async":

        async def fn(**kwargs: Any) -> Val:
            iid = rec.begin(i, kwargs)
            try:
                rec.started("setup", i)
                await rec.pause("setup", i, iid)
                rec.maybe_fail("setup", i, iid)
                rec.log("call", iid)
                return Val(iid, rec.instances[iid])
            finally:
                rec.end()

    elif kind == "sync":

        def fn(**kwargs: Any) -> Val:
            iid = rec.begin(i, kwargs)
            try:
                rec.started("setup", i)
                rec.pause_sync("setup", i)
                rec.maybe_fail("setup", i, iid)
                rec.log("call", iid)
                return Val(iid, rec.instances[iid])
            finally:
                rec.end()

    elif kind == "class":

        def __init__(self: Val, **kwargs: Any) -> None:
            iid = rec.begin(i, kwargs)
            try:
                rec.started("setup", i)
                rec.pause_sync("setup", i)
                rec.maybe_fail("setup", i, iid)
                Val.__init__(self, iid, rec.instances[iid])
                rec.log("call", iid)
            finally:
                rec.end()

        fn = type(f"Node{i}", (Val,), {"__init__": __init__, "__slots__": ()})

    elif kind == "async_gen":

        async def fn(**kwargs: Any) -> Any:
            iid = rec.begin(i, kwargs)
            rec.end()  # a generator is tracked by `alive`, not `active`
            with rec.lock:
                rec.alive.add(iid)
            try:
                rec.started("setup", i)
                await rec.pause("setup", i, iid)
                rec.maybe_fail("setup", i, iid)
                rec.log("setup", iid)
                try:
                    yield Val(iid, rec.instances[iid])
                except GeneratorExit:
                    # close()/aclose() or the garbage collector: not a teardown.
                    rec.violation(
                        f"{iid} was closed (GeneratorExit) instead of torn down"
                    )
                    raise
                except BaseException as exc:
                    rec.log("teardown", iid, exc)
                    rec.started("teardown", i)
                    await rec.pause("teardown", i, iid)
                    rec.maybe_fail("teardown", i, iid)
                    raise
                rec.log("teardown", iid, None)
                rec.started("teardown", i)
                await rec.pause("teardown", i, iid)
                rec.maybe_fail("teardown", i, iid)
            finally:
                with rec.lock:
                    rec.alive.discard(iid)

    elif kind == "sync_gen":

        def fn(**kwargs: Any) -> Any:
            iid = rec.begin(i, kwargs)
            rec.end()
            with rec.lock:
                rec.alive.add(iid)
            try:
                rec.started("setup", i)
                rec.pause_sync("setup", i)
                rec.maybe_fail("setup", i, iid)
                rec.log("setup", iid)
                try:
                    yield Val(iid, rec.instances[iid])
                except GeneratorExit:
                    # close()/aclose() or the garbage collector: not a teardown.
                    rec.violation(
                        f"{iid} was closed (GeneratorExit) instead of torn down"
                    )
                    raise
                except BaseException as exc:
                    rec.log("teardown", iid, exc)
                    rec.started("teardown", i)
                    rec.pause_sync("teardown", i)
                    rec.maybe_fail("teardown", i, iid)
                    raise
                rec.log("teardown", iid, None)
                rec.started("teardown", i)
                rec.pause_sync("teardown", i)
                rec.maybe_fail("teardown", i, iid)
            finally:
                with rec.lock:
                    rec.alive.discard(iid)

    else:  # pragma: no cover - the generator only makes the kinds above
        raise AssertionError(kind)
    fn.__signature__ = sig
    fn.__qualname__ = fn.__name__ = f"node{i}_{kind}"
    return fn


def _in_event_loop() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False  # a worker thread
    return True


# -- the reference resolver ------------------------------------------------------------


class Reference:
    """FastAPI's sequential resolution, plus anydepends' no-re-walk deviation.

    Mirrors a :class:`Recorder`'s events for the same operations, invocation numbers
    included, so a sequential container must match it exactly.
    """

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.events: list[Event] = []
        self.counts: Counter[int] = Counter()
        self.instances: dict[tuple[int, int], dict[str, tuple[int, int]]] = {}
        self.app_memo: dict[tuple[int, str], tuple[int, int]] = {}
        self.app_exits: list[tuple[int, int]] = []

    def _invoke(self, node: int, args: dict[str, tuple[int, int]]) -> tuple[int, int]:
        self.counts[node] += 1
        iid = (node, self.counts[node])
        self.instances[iid] = args
        gen = self.spec.kind_of(node) in GENERATORS
        self.events.append(("setup" if gen else "call", iid))
        return iid

    def _resolve(
        self,
        decl: Decl,
        scope_memo: dict[Any, Any],
        run_memo: dict[Any, Any],
        scope_exits: list[Any],
        run_exits: list[Any],
    ) -> tuple[int, int]:
        key = self.spec.key(decl)
        memo = {"app": self.app_memo, "function": run_memo}.get(
            decl.lifetime or "", scope_memo
        )
        if decl.use_cache and key in memo:
            return memo[key]  # a hit: the subtree is not walked again (deviation)
        node = self.spec.nodes[decl.target]
        args = {
            f"d{j}": self._resolve(d, scope_memo, run_memo, scope_exits, run_exits)
            for j, d in enumerate(node.decls)
        }
        iid = self._invoke(decl.target, args)
        if node.kind in GENERATORS:
            {"app": self.app_exits, "function": run_exits}.get(
                decl.lifetime or "", scope_exits
            ).append(iid)
        memo.setdefault(key, iid)  # the first stored value wins; uncached seeds
        return iid

    def _teardown(self, exits: list[Any]) -> None:
        while exits:
            self.events.append(("teardown", exits.pop(), None))

    def call(
        self, scope_memo: dict[Any, Any], scope_exits: list[Any]
    ) -> tuple[int, int]:
        run_memo: dict[Any, Any] = {}
        run_exits: list[Any] = []
        args = {
            f"d{j}": self._resolve(d, scope_memo, run_memo, scope_exits, run_exits)
            for j, d in enumerate(self.spec.root)
        }
        iid = self._invoke(self.spec.root_index, args)
        self._teardown(run_exits)
        return iid

    def run(self, ops: Sequence[Op]) -> list[tuple[int, int]]:
        """Predict the events of :func:`drive` for *ops*; return the root iids."""
        roots: list[tuple[int, int]] = []
        for op in ops:
            memo: dict[Any, Any] = {}
            exits: list[Any] = []
            if not op.calls:
                roots.append(self.call(memo, exits))
                self._teardown(exits)
                self.events.append(("mark", "call"))
                continue
            for _ in range(op.calls):
                roots.append(self.call(memo, exits))
                self.events.append(("mark", "call"))
            self._teardown(exits)
            self.events.append(("mark", "scope"))
        self._teardown(self.app_exits)
        self.events.append(("mark", "container"))
        return roots


# -- driving a container ---------------------------------------------------------------


async def run_op(
    container: Container, root: Any, op: Op, rec: Recorder, out: list[Any]
) -> None:
    """Run one operation, appending root values to *out* and marks to the log."""
    if not op.calls:
        out.append(await container.call(root))
        rec.mark("call")
        return
    async with container.scope() as scope:
        for j in range(op.calls):
            if op.child and j == 1:
                await _call_in_child(scope, root, out)
            else:
                out.append(await scope.call(root))
            rec.mark("call")
    rec.mark("scope")


async def _call_in_child(scope: Any, root: Any, out: list[Any]) -> None:
    """``scope.call`` from a child task; its exception re-raised as is, not grouped."""
    errors: list[BaseException] = []

    async def in_child() -> None:
        try:
            out.append(await scope.call(root))
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(in_child)
    if errors:
        raise errors[0]


async def drive(
    spec: GraphSpec, ops: Sequence[Op], rec: Recorder, **container_options: Any
) -> list[Any]:
    """Run *ops* against a fresh container; return the root values."""
    root = build(spec, rec)
    out: list[Any] = []
    async with Container(**container_options) as container:
        for op in ops:
            await run_op(container, root, op, rec, out)
    rec.mark("container")
    return out


# -- invariants ------------------------------------------------------------------------


def normalized(events: Iterable[Event]) -> list[Event]:
    """Events with thrown exceptions replaced by their type names (comparable)."""
    out: list[Event] = []
    for ev in events:
        if ev[0] == "teardown":
            thrown = ev[2]
            out.append(
                ("teardown", ev[1], None if thrown is None else type(thrown).__name__)
            )
        elif ev[0] == "fault":
            out.append(("fault", ev[1], ev[2]))
        else:
            out.append(ev)
    return out


def segment_counts(events: Iterable[Event]) -> list[Counter[tuple[str, int]]]:
    """Per segment between marks: how many calls, setups, teardowns of each node."""
    segments: list[Counter[tuple[str, int]]] = [Counter()]
    for ev in events:
        if ev[0] == "mark":
            segments.append(Counter())
        elif ev[0] in ("call", "setup", "teardown"):
            segments[-1][(ev[0], ev[1][0])] += 1
    return segments


class Shapes:
    """Structural identity of values: the tree unfolding of the data flow, interned.

    Two runs wire values the same way iff their roots get the same shape id, whatever
    invocation numbers concurrency assigned.
    """

    def __init__(self) -> None:
        self.table: dict[Any, int] = {}

    def of(
        self,
        iid: tuple[int, int],
        instances: dict[tuple[int, int], dict[str, tuple[int, int]]],
    ) -> int:
        memo: dict[tuple[int, int], int] = {}

        def shape(i: tuple[int, int]) -> int:
            found = memo.get(i)
            if found is None:
                args = instances[i]
                key = (
                    i[0],
                    tuple(sorted((name, shape(a)) for name, a in args.items())),
                )
                found = memo[i] = self.table.setdefault(key, len(self.table))
            return found

        return shape(iid)


def check_clean(rec: Recorder) -> None:
    """Nothing left running, no generator left suspended, no recorded violation."""
    assert not rec.violations, rec.violations
    assert rec.active == 0, f"{rec.active} dependables still running"
    assert not rec.alive, f"generators never finished: {sorted(rec.alive)}"


def check_teardowns(rec: Recorder) -> None:
    """Exactly one teardown per completed setup, nothing else, in a valid order.

    Valid: each generator instance is torn down before every generator instance it
    depends on (directly or through plain dependencies), i.e. after all its
    dependents and before its own dependencies.
    """
    setups = [ev[1] for ev in rec.events if ev[0] == "setup"]
    teardowns = [ev[1] for ev in rec.events if ev[0] == "teardown"]
    setup_counts = Counter(setups)
    twice = [iid for iid, n in setup_counts.items() if n > 1]
    assert not twice, f"set up twice: {twice}"
    td_counts = Counter(teardowns)
    assert not [i for i, n in td_counts.items() if n > 1], (
        f"torn down twice: {td_counts}"
    )
    assert set(teardowns) <= set(setups), (
        f"torn down without a completed setup: {set(teardowns) - set(setups)}"
    )
    assert set(setups) <= set(teardowns), (
        f"completed setups never torn down: {sorted(set(setups) - set(teardowns))}"
    )
    position = {iid: k for k, iid in enumerate(teardowns)}
    reach: dict[tuple[int, int], frozenset[tuple[int, int]]] = {}

    def below(iid: tuple[int, int]) -> frozenset[tuple[int, int]]:
        found = reach.get(iid)
        if found is None:
            acc: set[tuple[int, int]] = set()
            for arg in rec.instances[iid].values():
                if arg in position:
                    acc.add(arg)
                acc |= below(arg)
            found = reach[iid] = frozenset(acc)
        return found

    for iid in teardowns:
        for dep in below(iid):
            assert position[iid] < position[dep], (
                f"{dep} was torn down before its dependent {iid}: {teardowns}"
            )


def check_structure(values: Sequence[Any], spec: GraphSpec, rec: Recorder) -> None:
    """Every root value wires its inputs as the graph says (shape == reference)."""
    shapes = Shapes()
    ref = Reference(spec)
    expected = shapes.of(ref.call({}, []), ref.instances)
    for value in values:
        assert isinstance(value, Val), value
        assert shapes.of(value.iid, rec.instances) == expected, (value, spec.describe())


def count_tasks() -> int:
    """Tasks alive in this event loop (to prove no helper task is left behind)."""
    if sniffio.current_async_library() == "asyncio":
        return len(asyncio.all_tasks())
    import trio

    def walk(task: Any) -> int:
        return 1 + sum(walk(t) for n in task.child_nurseries for t in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())


_serial = itertools.count()


def serial() -> int:
    """A process-unique number (for identities in load tests)."""
    return next(_serial)


# -- cancellation trials ---------------------------------------------------------------

CANCEL_MODES: Final = ("deadline-op", "deadline-container", "task-op", "task-container")


@dataclass
class TrialStats:
    """What a batch of cancellation trials did (to show the trials bite)."""

    trials: int = 0
    interrupted: int = 0  # a cancellation was delivered and caught
    completed: int = 0  # every operation finished before any cancellation
    by_mode: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # one line per failed trial
    seed: int = -1  # the trial running now (named if the loop hangs)


async def cancel_trial(seed: int, stats: TrialStats) -> None:
    """One seeded trial: a random graph and operations, cancelled from outside.

    Modes: a random deadline (``move_on_after``) around one operation or around the
    whole container; or another task cancelling a scope around the operations (or
    around the container) when the k-th setup or teardown (random k) starts. After a
    cancelled operation a fresh ``container.call`` must still work. Checks: every
    completed setup torn down exactly once in a valid order, nothing else; teardowns
    never see the cancellation (shielded); nothing left running; no helper task left;
    results wired correctly; no exception escapes.
    """
    rng = random.Random(seed)
    spec = random_graph(rng)
    ops = random_ops(rng)
    mode = rng.choice(CANCEL_MODES)
    options = {"sequential": rng.random() < 0.25, "sync_to_thread": rng.random() < 0.6}
    ref = Reference(spec)
    ref.run(ops)
    starts = sum(1 for ev in ref.events if ev[0] != "mark")
    trigger_at = rng.randint(1, max(1, starts))
    deadline = rng.uniform(0, 0.012)
    trigger = anyio.Event()
    rec_box: list[Recorder] = []

    def on_start(phase: str, node: int) -> None:
        if rec_box[0].starts >= trigger_at:
            trigger.set()

    rec = Recorder(spec, timing=Timing.random(rng, spec), on_start=on_start)
    rec_box.append(rec)
    note = f"seed={seed} mode={mode} {options} ops={ops} graph: {spec.describe()}"
    root = build(spec, rec)
    values: list[Any] = []
    target = anyio.CancelScope()
    before = count_tasks()

    async def watcher() -> None:
        await trigger.wait()
        target.cancel()

    async def ops_in(container: Container) -> None:
        for op in ops:
            await run_op(container, root, op, rec, values)

    try:
        with anyio.fail_after(20):  # a hang outside shielded waits fails the trial
            async with anyio.create_task_group() as tg:
                if mode.startswith("task"):
                    tg.start_soon(watcher)
                else:
                    target = anyio.move_on_after(deadline)
                if mode.endswith("container"):
                    with target:
                        async with Container(**options) as container:
                            await ops_in(container)
                else:
                    async with Container(**options) as container:
                        with target:
                            await ops_in(container)
                        assert rec.active == 0, (
                            "a dependable outlived its cancelled call"
                        )
                        # the container survives a cancelled operation
                        rec.mark("health")
                        await run_op(container, root, Op(), rec, values)
                tg.cancel_scope.cancel()
    except BaseException as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc} ({note})") from exc
    rec.mark("container")
    stats.trials += 1
    stats.by_mode[mode] += 1
    if target.cancelled_caught:
        stats.interrupted += 1
    elif not target.cancel_called:
        stats.completed += 1
    try:
        assert count_tasks() == before, "a helper task outlived its container"
        check_clean(rec)
        check_teardowns(rec)
        check_structure(values, spec, rec)
    except AssertionError as exc:
        raise AssertionError(f"{exc} ({note})") from exc


def cancel_trials(
    backend: str, first_seed: int, count: int, max_failures: int = 12
) -> TrialStats:
    """Run *count* seeded trials on *backend*, each in its own event loop.

    A failed (or hung: 5 s for a trial that takes milliseconds) trial is recorded
    with its seed and the batch goes on, up to *max_failures*, so one run shows how
    widespread a failure is; a trial that breaks its event loop cannot spoil the
    next ones. Any warning (an unawaited coroutine, an unclosed generator...) is a
    failure too.
    """
    stats = TrialStats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run_trials(backend, first_seed, count, max_failures, stats)
        gc.collect()
    stats.failures.extend(f"warning: {w.message}" for w in caught)
    return stats


def _run_trials(
    backend: str, first_seed: int, count: int, max_failures: int, stats: TrialStats
) -> None:
    for seed in range(first_seed, first_seed + count):
        stats.seed = seed
        try:
            run(
                backend,
                cancel_trial,
                seed,
                stats,
                timeout=5,
                progress=f"in cancellation trial seed={seed}",
            )
        except Exception as exc:  # e.g. trio's "nursery stack corrupted", too
            first = str(exc).splitlines()[0] if str(exc) else ""
            if not isinstance(exc, AssertionError):
                first = f"{type(exc).__name__}: {first} (seed={seed}, escaped the loop)"
            stats.failures.append(first)
            if len(stats.failures) >= max_failures:
                break
