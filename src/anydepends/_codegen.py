"""Code generation: a plan becomes straight-line Python, the only interpreter of plans.

For each plan (and each of its two *variants*: ``FRESH``, a private scope nobody else
sees, for ``container.call``; ``HELD``, a :class:`~anydepends.Scope` shared by calls,
with its ``use_cache`` memo and claims) this module writes:

- ``inline(V, E)``: every dependency in plan order, awaited natively, then the root.
  A plan whose dependencies never wait costs one coroutine in all. Results live in
  local variables; ``V`` holds the call's values, ``E`` the call's state
  (:mod:`._call`). Only a slow path (a helper that reads a node's inputs, a hand-over)
  stores results by node index in ``R``, the list ``E.rs()`` allocates on first use.
  The root's result is left in ``E.out``: ``inline`` itself returns ``None`` (or
  :data:`HANDED`), so a call that never waits ends with no exception made at all.
- ``root(R, V, E)``: just the root call, for a call that went concurrent;
  ``n<i>(R, V, E, main)`` per node: node *i* alone, memo logic included, for the
  concurrent tail (:mod:`._resolution`); ``c<i>``: node *i*'s computation only, for
  slow paths (a claim another call abandoned, an app-scoped value). These are
  generated lazily, the first time a call of the plan goes concurrent, from the
  *same* per-node templates as ``inline``: one definition of what running a node means.

Where ``inline`` may suspend, it first stores the node's position in ``E.at`` (only
from the first position where something else could be ready, or a claim taken;
:data:`QUIET` once nothing can be). If other dependencies are ready the resolution
may go concurrent; ``inline`` then returns :data:`HANDED` right after the dependency
it is in, and the rest runs through the ``n<i>`` functions. A dependency that cannot
suspend (a sync call in place; a coroutine function with no ``await`` of its own,
read from its bytecode) gets neither the store nor the check.

In a held scope, ``inline`` consults the memo only while it may hold something this
call did not write: a local ``S`` is false while the memo was empty when the call
started and, after every dependency that may have suspended (or made a nested call
in the scope), still holds exactly the keys this call wrote. Until then a claimed
dependency is computed and stored with no lookup. The source is
registered with ``linecache``, so tracebacks show the generated lines; names are
derived from the dependables. The per-node templates every function is written from
are :mod:`._nodecode`'s; this module assembles the functions.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from anyio import to_thread

from . import _collector as collector
from ._codeinfo import (
    gen_info_of_code,
)
from ._errors import MissingValuesError, missing_context
from ._invoke import (
    HANDED,
    MISSING,
    SYNC_IN_TASK,
    agen_setup,
    app_value,
    capture_level,
    first_value,
    limited,
    note_level,
    own_scope,
    place_request,
    sync_as_async,
    thread_gen_setup,
    unclaim,
    wait_claim,
)
from ._lazymemo import flush_deferred
from ._lifetime import Lifetime
from ._nodecode import OPEN, NodeCode
from ._nodefacts import (
    FRESH,
    HELD,
    claims,
    computation_may_wait,
    ready_after,
    stirs,
)
from ._plan import Node, Plan
from ._state import LEVEL_UNSET, CallState

if TYPE_CHECKING:
    from ._runtime import Runtime

FUNCTION: Final = Lifetime.FUNCTION
REQUEST: Final = Lifetime.REQUEST
APP: Final = Lifetime.APP

__all__ = [
    "FRESH",
    "HELD",
    "QUICK",
    "QUICK_UNCLAIMED",
    "QUIET",
    "SLOW",
    "Runner",
    "build_runner",
]


#: ``CallState.at`` once nothing the resolution watches for can happen any more.
QUIET: Final = -2

InlineFn = Callable[..., Coroutine[Any, Any, Any]]

_counter = itertools.count()


class Runner:
    """One plan's generated code for one variant (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_emitter",
        "_node_fns",
        "_node_list",
        "claim_keys",
        "concurrent",
        "inline",
        "lone_values",
        "may_overlap",
        "plan",
        "quick",
        "ready_after",
        "sequential",
        "uses_context",
        "variant",
        "waits",
    )

    def __init__(self, plan: Plan[Any], variant: int, runtime: Runtime) -> None:
        self.plan = plan
        self.variant = variant
        # The plan's own mode (a pinned plan), else the container's.
        self.sequential = (
            runtime.sequential if plan.sequential is None else plan.sequential
        )
        self.ready_after = ready_after(plan)
        self.may_overlap = any(self.ready_after)
        # Whether a call may run dependencies concurrently (and so is supervised).
        self.concurrent = self.may_overlap and not self.sequential
        paused = len(plan.nodes) >= collector.LARGE and collector.pause()
        try:
            emitter = _Emitter(
                plan, variant, runtime, self.ready_after, self.concurrent
            )
            ns = emitter.build_main()
        finally:
            collector.resume(paused)
        self._emitter = emitter
        self.inline: InlineFn = ns["inline"]
        self.claim_keys: list[Any] | None = (
            emitter.claim_keys
            if any(k is not None for k in emitter.claim_keys)
            else None
        )
        # HELD: the memo keys a call alone in its scope leaves unwritten in inline,
        # and the variables they live in (see _lazymemo).
        every = [plan.nodes[i] for i in sorted(emitter.deferred)]
        self.lone_values: tuple[tuple[Any, ...], tuple[str, ...]] = (
            tuple(n.key for n in every),
            tuple(f"v{n.index}" for n in every),
        )
        self._node_fns: dict[str, Any] | None = None
        self._node_list: list[InlineFn] | None = None
        self.uses_context = emitter.uses_context
        # Per node: whether computing it may suspend (1) or never does (0); the
        # concurrent tail starts a runner task per ready node that may.
        self.waits: list[int] = [
            1 if computation_may_wait(node) else 0 for node in plan.nodes[:-1]
        ]
        # Per node: whether its n<i> cannot suspend (QUICK), or only to wait for
        # another call's claim on its key of a held scope's memo (QUICK_UNCLAIMED):
        # when the call goes concurrent, the dispatcher runs such a node itself
        # (unless its key is claimed) rather than start a runner task for it.
        self.quick: list[int] = [
            _quickness(node, variant, self.waits[node.index], self.claim_keys)
            for node in plan.nodes[:-1]
        ]
        # Tracebacks show the generated source while the runner lives; not after.
        weakref.finalize(self, _forget, emitter.filenames)

    def _per_node(self) -> dict[str, Any]:
        found = self._node_fns
        if found is None:
            paused = len(self.plan.nodes) >= collector.LARGE and collector.pause()
            try:
                found = self._node_fns = self._emitter.build_per_node()
            finally:
                collector.resume(paused)
        return found

    def root_fn(self) -> InlineFn:
        """``root``: the root's call on values in ``R`` (after going concurrent)."""
        fn: InlineFn = self._per_node()["root"]
        return fn

    def node_fns(self) -> list[InlineFn]:
        """``n<i>`` by node index: node *i* with its memo logic (the concurrent
        tail)."""
        found = self._node_list
        if found is None:
            fns = self._per_node()
            found = self._node_list = [
                fns[f"n{i}"] for i in range(len(self.plan.nodes) - 1)
            ]
        return found

    def compute_fn(self, index: int) -> InlineFn:
        """``c<index>``: node *index*'s computation only, returning its value."""
        fn: InlineFn = self._per_node()[f"c{index}"]
        return fn


#: Runner.quick: a node's n<i> can suspend; cannot; can only for another call's claim.
SLOW: Final = 0
QUICK: Final = 1
QUICK_UNCLAIMED: Final = 2


def _quickness(
    node: Node, variant: int, waits: int, claim_keys: list[Any] | None
) -> int:
    if waits:
        return SLOW
    if variant == FRESH or (
        not node.alias and (node.lifetime is FUNCTION or not node.use_cache)
    ):
        return QUICK  # no memo lookup (a held scope's uncached one writes only)
    if claim_keys is not None and claim_keys[node.index] is not None:
        return QUICK_UNCLAIMED  # a lookup, which waits only for a claim
    return SLOW


def build_runner(plan: Plan[Any], variant: int, runtime: Runtime) -> Runner:
    """Generate the code of *plan* for *variant* in a container with *runtime*."""
    return Runner(plan, variant, runtime)


class _Emitter(NodeCode):
    """Writes the source of one plan's runner (see :class:`Runner`)."""

    def __init__(
        self,
        plan: Plan[Any],
        variant: int,
        runtime: Runtime,
        ready_after: list[bool],
        concurrent: bool,
    ) -> None:
        self.plan = plan
        self.variant = variant
        self.runtime = runtime
        self.ready_after = ready_after
        self.concurrent = concurrent
        self.ns: dict[str, Any] = {
            "MISSING": MISSING,
            "MISSING_T": type(MISSING),
            "HANDED": HANDED,
            "partial": partial,
            "RUN_SYNC": to_thread.run_sync,
            "FIRST": first_value,
            "SYNC_AS_ASYNC": sync_as_async,
            "SYNC_INFO": SYNC_IN_TASK,
            "AGEN": agen_setup,
            "THREAD_GEN": thread_gen_setup,
            "LIMITED": limited,
            "APP_VALUE": app_value,
            "WAIT_CLAIM": wait_claim,
            "UNCLAIM": unclaim,
            "OWN": own_scope,
            "PLACE": place_request,
            "NOTE_LEVEL": note_level,
            "CAPTURE_LEVEL": capture_level,
            "LEVEL_UNSET": LEVEL_UNSET,
            "GEN_INFO": gen_info_of_code,
            "APP": runtime.app_memo,
            "APP_EXITS": runtime.app_exits,
            "CLAIM": CallState,
        }
        self.names: dict[int, str] = {}
        self.no_yield: dict[int, str] = {}  # per node index: its raiser's name
        self.shorts: dict[int, str] = {}  # per node index: its name, as an identifier
        self.waits: list[bool | None] = [None] * len(plan.nodes)  # see _can_wait
        self.filenames: list[str] = []  # registered with linecache
        # Per node of inline: the memo key claimed lazily (HELD, request-scoped).
        self.claim_keys: list[Any] = [None] * len(plan.nodes)
        self.hittable = self._hittable()
        self.app_hits = any(plan.nodes[d].lifetime is APP for d in self.hittable)
        self.need = self._need_terms()
        nodes = plan.nodes
        self.has_fn_gens = any(
            n.lifetime is FUNCTION and n.kind.is_generator for n in nodes[:-1]
        )
        self.has_req_gens = any(
            n.lifetime is REQUEST and n.kind.is_generator for n in nodes[:-1]
        )
        # FRESH: a request generator after a function one must check where it is.
        first_fn_gen = next(
            (
                n.index
                for n in nodes[:-1]
                if n.lifetime is FUNCTION and n.kind.is_generator and not n.alias
            ),
            len(nodes),
        )
        self.first_fn_gen = first_fn_gen
        # FRESH: before each function-scoped generator set up in place, the level
        # a request-scoped one set up after it compares with (see
        # _invoke.before_function_gen).
        self.level_needed = variant == FRESH and self.has_req_gens
        self.uses_context = any(n.contexts for n in nodes)
        # HELD: ``S`` in inline is false while the call has been alone in its scope
        # (Scope.lone) and the memo was empty when it started: nobody else can have
        # written to the memo, so claimed nodes skip their lookups. Nor are their
        # values written while the call stays alone, even across suspensions: a
        # call that starts in the scope meanwhile first writes them from this
        # call's frame, and claims the key this call waits in (_lazymemo).
        # After a dependency that may have suspended, inline asks whether that
        # happened; if so, it writes that dependency's value, and looks up from
        # then on. On a failure the values go to the memo; at the end, to the
        # scope as one stash, written only if another call in the scope comes.
        # Deferred only where the fast way computes every node (no app memo hits).
        self.fast_first = variant == HELD and any(
            claims(n, self.variant) for n in nodes[:-1]
        )
        self.deferred: set[int] = (
            {n.index for n in nodes[:-1] if claims(n, self.variant)}
            if self.fast_first and not self.app_hits
            else set()
        )
        self.pending: list[Node] = []  # deferred, not written yet (while emitting)
        self.key_tuples: dict[tuple[int, ...], str] = {}  # see _keys
        self.need_fn: list[str] = []  # the source of inline's ``need`` (if any)

    # -- names -----------------------------------------------------------------------
    # -- static analysis ---------------------------------------------------------------
    def _hittable(self) -> set[int]:
        """Nodes whose memo may already hold a value when the call starts, and that
        have dependencies a hit would make unnecessary."""
        found: set[int] = set()
        for node in self.plan.nodes[:-1]:
            if not node.use_cache or not node.deps:
                continue
            if node.lifetime is APP or (
                node.lifetime is REQUEST and self.variant == HELD
            ):
                found.add(node.index)
        return found

    def _need_terms(self) -> dict[int, list[str]]:
        """For each node that a memo hit can make unnecessary: the terms whose
        disjunction says whether it runs (FastAPI deviation: a hit never re-runs its
        subtree). Nodes that always run are absent."""
        plan = self.plan
        nodes = plan.nodes
        hittable = self.hittable
        terms: dict[int, list[str]] = {}
        if not hittable:
            return terms
        for node in reversed(nodes[:-1]):
            x = node.index
            parts: list[str] = []
            always = False
            for d in plan.dependents[x]:
                d_cond = f"N[{d}]" if d in terms else None
                hit = f"not h{d}" if d in hittable else None
                if d_cond is None and hit is None:
                    always = True
                    break
                parts.append(" and ".join(p for p in (d_cond, hit) if p))
            if not always and parts:
                terms[x] = parts
        return terms

    # -- whole functions ------------------------------------------------------------
    def build_main(self) -> dict[str, Any]:
        nodes = self.plan.nodes
        lines: list[str] = ["async def inline(V, E):"]
        bound: list[int] = []
        if self.concurrent:
            # Where the call may go concurrent, the results so far are read from
            # this frame (_resolution.go_concurrent): the locals they live in come
            # first, right after V and E, and are bound from the start, so they can
            # be read without materialising the frame (_backend.frame_values).
            last = max(
                (i for i in range(len(nodes) - 1) if self.ready_after[i]), default=0
            )
            bound = list(range(last))
        if bound:
            names = " = ".join(f"v{j}" for j in bound)
            lines.append(f"    {names} = MISSING")
        self._prologue(lines, inline=True)
        # E.at says which node inline runs while it may wait there (the resolution
        # reads it at each suspension: registering with the dispatcher, claiming a
        # key). Stored only from the first node where that matters; QUIET once
        # nothing after can.
        # A claimed node whose computation cannot wait may still wait for another
        # call's claim: it stores E.at in that branch only (see _memo_logic).
        interesting = [
            i
            for i, node in enumerate(nodes[:-1])
            if (self.can_wait(node) and self.ready_after[i])
            or claims(node, self.variant)
        ]
        first = interesting[0] if interesting else len(nodes)
        last = interesting[-1] if interesting else -1
        quiet = not interesting
        at: dict[int, str] = {}
        for node in nodes[:-1]:
            i = node.index
            if not quiet and i >= first and self.can_wait(node):
                at[i] = f"E.at = {i if i <= last else QUIET}"
                quiet = i > last
        deferred = self.deferred
        depth = 2 if deferred else 1
        pad = "    " * depth
        if deferred:
            lines.append("    try:")
        body = nodes[:-1]
        # Supervision (_backend) opens where the call may first suspend: no sibling
        # can run before, and nothing before changed the cancel-scope stack, so the
        # level it records is the call's start. Helper branches before that point,
        # and waiting for another call's claim, open it themselves (_compute,
        # _invoke.wait_claim).
        open_at = (
            next(
                (n.index for n in body if stirs(n, self.variant, self.first_fn_gen)),
                None,
            )
            if self.concurrent
            else None
        )
        k = 0
        while k < len(body):
            node = body[k]
            if node.index == open_at:
                lines.append(f"{pad}if E.task is None:")
                lines.append(f"{pad}    {OPEN}")
            if not (self.fast_first and claims(node, self.variant)):
                self._before(lines, node, at, pad)
                self._node(lines, node, inline=True, depth=depth)
                k += 1
                continue
            # Claimed nodes up to the next one that may suspend (S cannot change
            # before it ends): two ways through, with lookups (S) or not.
            run = [node]
            while not self.can_wait(run[-1]) and k + len(run) < len(body):
                after = body[k + len(run)]
                if not claims(after, self.variant) or after.index == open_at:
                    break
                run.append(after)
            k += len(run)
            lines.append(f"{pad}if S:")
            for n in run:
                self._before(lines, n, at, pad + "    ")
                self._node_body(lines, n, depth + 1, fast=False)
            lines.append(f"{pad}else:")
            for n in run:
                self._before(lines, n, at, pad + "    ")
                self._node_body(lines, n, depth + 1, fast=True)
                if n.index in deferred:
                    self.pending.append(n)
            last_node = run[-1]
            if self.can_wait(last_node) and last_node.index not in deferred:
                # It may have suspended: has another call started in the scope since?
                # (A deferred one can only in its helper branch, which asks itself.)
                lines.append(f"{pad}    S = E.holder.lone is not E")
        pending, self.pending = self.pending, []
        if deferred:
            every = [nodes[i] for i in sorted(deferred)]
            flush = self.const("FLUSH", flush_deferred)
            names = self.const("NAMES", tuple(f"v{n.index}" for n in every))
            # locals(): a tuple display of every value would need as many slots
            # on inline's stack, in the frame a waiting call keeps.
            lines += [
                "    except BaseException:",
                "        if not S:",
                f"            {flush}(M, {self._keys(every)}, {names}, locals())",
                "        raise",
            ]
        if pending:
            # The end, on the fast way (still alone: nothing suspended since S was
            # last checked): the rest is stashed for a later call in the scope.
            lines += [
                "    if not S:",
                f"        E.holder.stash = ({self._keys(pending)}, {_values(pending)})",
            ]
        if not quiet:
            lines.append(f"    E.at = {QUIET}")
        lines.extend(self._root_call(nodes[-1], depth=1, inline=True))
        if self.need_fn:
            lines += ["", *self.need_fn]
        return self._compile(lines, "plan")

    def _before(
        self, lines: list[str], node: Node, at: dict[int, str], pad: str
    ) -> None:
        """What comes before *node* in inline: its comment, and where the call may
        wait."""
        i = node.index
        lines.append(
            f"{pad}# {i}: {node.name} ({node.kind.name.lower()}, {node.lifetime})"
        )
        if i in at:
            lines.append(f"{pad}{at[i]}")

    def _keys(self, nodes: list[Node]) -> str:
        """A constant tuple of the memo keys of *nodes*."""
        which = tuple(n.index for n in nodes)
        found = self.key_tuples.get(which)
        if found is None:
            keys = tuple(n.key for n in nodes)
            found = self.key_tuples[which] = self.const(
                f"KS{which[0]}_{len(keys)}", keys
            )
        return found

    def build_per_node(self) -> dict[str, Any]:
        """The functions a call needs once it went concurrent (built then)."""
        lines: list[str] = ["async def root(R, V, E):"]
        self._prologue(lines, inline=False)
        lines.extend(self._root_call(self.plan.nodes[-1], depth=1, inline=False))
        lines.append("")
        for node in self.plan.nodes[:-1]:
            lines.append(f"async def n{node.index}(R, V, E, main):")
            self._prologue(lines, inline=False)
            self._node(lines, node, inline=False, depth=1)
            lines.append("")
            lines.append(f"async def c{node.index}(R, V, E, main):")
            self._prologue(lines, inline=False)
            lines.extend(self._compute(node, "t", inline=False, depth=1))
            lines.append("    return t")
            lines.append("")
        return self._compile(lines, "nodes")

    def _compile(self, lines: list[str], what: str) -> dict[str, Any]:
        source = "\n".join(lines) + "\n"
        root = self.plan.nodes[-1].name
        filename = f"<anydepends {what} {next(_counter)}: {root}>"
        code = compile(source, filename, "exec")
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
        self.filenames.append(filename)
        namespace = dict(self.ns)
        exec(code, namespace)
        return namespace

    def _prologue(self, lines: list[str], inline: bool) -> None:
        pad = "    "
        if self.variant == HELD:
            lines.append(f"{pad}M = E.memo")
        if self.has_fn_gens:
            lines.append(f"{pad}XF = E.xf" + (" = []" if inline else ""))
        if self.has_req_gens:
            new = inline and self.variant == FRESH
            lines.append(f"{pad}XR = E.xr" + (" = []" if new else ""))
        if self.uses_context:
            lines.append(f"{pad}CTX = E.context")
        if inline:
            self._checks(lines)
            self._need_prologue(lines)

    def _checks(self, lines: list[str]) -> None:
        """Before anything runs: every required value and context object present."""
        plan = self.plan
        required = list(plan.required_values)
        if required:
            missing = self.const("MISSING_VALUES", _missing_values_raiser(plan))
            cond = " or ".join(f"{name!r} not in V" for name in required)
            lines.append(f"    if {cond}:")
            lines.append(f"        {missing}(V)")
        if plan.context_types:
            check = self.const("MISSING_CONTEXT", _missing_context_raiser(plan))
            types = [self.const("T", t) for t in plan.context_types]
            cond = " or ".join(f"{t} not in CTX" for t in types)
            lines.append(f"    if {cond}:")
            lines.append(f"        {check}(CTX)")

    def _need_prologue(self, lines: list[str]) -> None:
        if not self.need:
            if self.fast_first:
                lines.append("    S = bool(M) or E.holder.lone is not E")
            return
        size = len(self.plan.nodes)
        all_true = self.const("ALL_NEEDED", [True] * size)
        memos: list[str] = []
        if any(self.plan.nodes[d].lifetime is APP for d in self.hittable):
            memos.append("APP")
        if any(self.plan.nodes[d].lifetime is REQUEST for d in self.hittable):
            memos.append("M")
        lines.append(f"    if {' or '.join(memos)}:")
        # Which nodes a memo hit makes unnecessary: worked out in a function of its
        # own (``need``), so its locals are not slots of inline's frame, which a
        # waiting call keeps.
        args = "M" if self.variant == HELD else "None"
        lines.append(f"        N = E.need = need({args})")
        if self.fast_first:
            known = "True" if memos == ["M"] else "bool(M) or E.holder.lone is not E"
            lines.append(f"        S = {known}")
        fn = self.need_fn
        fn.append("def need(M):")
        fn.append(f"    N = [True] * {size}")
        for d in sorted(self.hittable, reverse=True):
            node = self.plan.nodes[d]
            memo = "APP" if node.lifetime is APP else "M"
            key = self.const("K", node.key, node)
            cls = f"{memo}.get({key}, MISSING).__class__"
            fn.append(f"    c = {cls}")
            fn.append(f"    h{d} = c is not MISSING_T and c is not CLAIM")
        for x in sorted(self.need, reverse=True):
            cond = " or ".join(f"({t})" for t in self.need[x])
            fn.append(f"    N[{x}] = {cond}")
        fn.append("    return N")
        lines.append("    else:")
        lines.append(f"        N = {all_true}")
        if self.fast_first:
            lines.append("        S = E.holder.lone is not E")

    # -- one node ---------------------------------------------------------------------


def _forget(filenames: list[str]) -> None:
    for filename in filenames:
        linecache.cache.pop(filename, None)


def _values(nodes: list[Node]) -> str:
    """A tuple display of the inline locals of *nodes*."""
    return "(" + "".join(f"v{n.index}, " for n in nodes) + ")"


def _missing_values_raiser(plan: Plan[Any]) -> Callable[[dict[str, Any]], None]:
    def raise_missing(values: dict[str, Any]) -> None:
        missing = {
            name: list(where)
            for name, where in plan.required_values.items()
            if name not in values
        }
        raise MissingValuesError(missing, plan.root_node.name)

    return raise_missing


def _missing_context_raiser(plan: Plan[Any]) -> Callable[[dict[type, Any]], None]:
    def raise_missing(context: dict[type, Any]) -> None:
        for ctx in plan.context_types:
            if ctx not in context:
                users = [
                    " -> ".join(n.path)
                    for n in plan.nodes
                    if any(t is ctx for _, t in n.contexts)
                ]
                raise missing_context(
                    ctx.__qualname__, users, plan.nodes[-1].path, plan.root_node.name
                )

    return raise_missing
