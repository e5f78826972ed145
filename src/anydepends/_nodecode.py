"""The per-node templates of generated code: what running one node means.

:mod:`._codegen` writes ``inline`` and the per-node functions of a plan; every one
of them runs a node through these templates (a node's memo logic, its computation,
its arguments, its root call), so there is one definition of running a node,
whichever function it appears in. :class:`NodeCode` is the emitter's half that
holds them; the other half (:class:`._codegen._Emitter`) assembles functions from
them and decides where a call may wait.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import FunctionType, MethodType
from typing import Any, Final

from ._codeinfo import UNKNOWN as UNKNOWN_GEN
from ._codeinfo import gen_info, sync_gen_may_hold_scope
from ._errors import no_yield
from ._introspect import EMPTY, CallKind
from ._invoke import OWN_FUNCTION, OWN_REQUEST
from ._lifetime import Lifetime
from ._nodefacts import (
    CHECKED,
    FRESH,
    HELD,
    HELPER,
    IN_HOST,
    IN_PLACE,
    computation_may_wait,
    placement,
    plain,
    waits_only_in_helper,
)
from ._plan import Node

__all__ = ["OPEN", "NodeCode"]

FUNCTION: Final = Lifetime.FUNCTION
REQUEST: Final = Lifetime.REQUEST
APP: Final = Lifetime.APP

_MANY_ARGS: Final = 32  # more keyword arguments than this go through a dict
#: The statement that opens a call's supervision (see ``_codegen._Emitter.build_main``).
OPEN: Final = "E.rt.supervision.open(E)"
_IDENT: Final = re.compile(r"[^0-9a-zA-Z_]+")


class NodeCode:
    """The statements of one node, for ``inline`` (*inline*: results in locals) or
    for the per-node functions (results in ``R``).

    What it reads of the plan being emitted is set by the emitter that extends it.
    """

    variant: int
    concurrent: bool
    ready_after: list[bool]
    ns: dict[str, Any]
    names: dict[int, str]
    shorts: dict[int, str]
    no_yield: dict[int, str]
    waits: list[bool | None]
    claim_keys: list[Any]
    app_hits: bool
    need: dict[int, list[str]]
    first_fn_gen: int
    level_needed: bool
    fast_first: bool
    deferred: set[int]

    # -- names -----------------------------------------------------------------------
    def const(self, prefix: str, obj: Any, node: Node | None = None) -> str:
        """The generated code's name for *obj* (the namespace keeps it alive, so its
        id is not reused while the name exists)."""
        found = self.names.get(id(obj))
        if found is not None:
            return found
        if node is None:
            name = prefix
        else:
            short = self.shorts.get(node.index)
            if short is None:
                short = _IDENT.sub("_", node.name.rsplit(".", 1)[-1])[:24].strip("_")
                short = self.shorts[node.index] = f"_{short}" if short else ""
            name = f"{prefix}{node.index}{short}"
        ns = self.ns
        while name in ns and ns[name] is not obj:
            name += "_"
        ns[name] = obj
        self.names[id(obj)] = name
        return name

    # -- a node ---------------------------------------------------------------------
    def _node(self, lines: list[str], node: Node, inline: bool, depth: int) -> None:
        """*node* with its memo logic: a per-node function, or inline where it is
        not claimed (claimed ones come in runs, see build_main)."""
        pad = "    " * depth
        if not inline:
            i = node.index
            kind = node.kind.name.lower()
            lines.append(f"{pad}# {i}: {node.name} ({kind}, {node.lifetime})")
        self._node_body(lines, node, depth, fast=False, inline=inline)
        if inline and self.fast_first and self.can_wait(node):
            # It may have suspended: has another call started in the scope since?
            lines.append(f"{pad}if not S:")
            lines.append(f"{pad}    S = E.holder.lone is not E")

    def _node_body(
        self, lines: list[str], node: Node, depth: int, fast: bool, inline: bool = True
    ) -> None:
        pad = "    " * depth
        i = node.index
        # On the fast way the memo held nothing when the call started: only the app
        # memo's hits can make a node unnecessary.
        if inline and i in self.need and (not fast or self.app_hits):
            lines.append(f"{pad}if N[{i}]:")
            depth += 1
            pad += "    "
        handover = (
            [
                "if E.handed:",
                "    R = E.rs()",
                f"    R[{i}] = v{i}",
                "    return HANDED",
            ]
            if inline and self.ready_after[i] and self.can_wait(node)
            else []
        )
        if fast and i in self.deferred:
            after: list[str] = []
            if self.can_wait(node):
                # It may have suspended: if another call started in the scope
                # meanwhile, that call wrote what this one had computed and claimed
                # this key (it may wait for it): write it, wake, look up from now
                # on. Then, if the call went concurrent meanwhile, hand over.
                key = self.const("K", node.key, node)
                after = [
                    "if E.holder.lone is not E:",
                    "    S = True",
                    f"    M[{key}] = v{i}",
                    "    if E.waiters:",
                    f"        E.wake({key})",
                    *handover,
                ]
                handover = []
            if waits_only_in_helper(node, self.variant, self.first_fn_gen):
                # The in-place branch cannot suspend: ask in the helper branch only.
                lines.extend(self._compute(node, f"v{i}", inline, depth, ([], after)))
            else:
                lines.extend(self._compute(node, f"v{i}", inline, depth))
                lines.extend(f"{pad}{h}" for h in after)
        elif fast:
            key = self.const("K", node.key, node)
            lines.extend(self._compute(node, f"v{i}", inline, depth))
            lines.append(f"{pad}M[{key}] = v{i}")
            if self.can_wait(node):
                lines.append(f"{pad}if E.waiters:")
                lines.append(f"{pad}    E.wake({key})")
        else:
            lines.extend(self._memo_logic(node, inline, depth))
        lines.extend(f"{pad}{h}" for h in handover)

    def can_wait(self, node: Node) -> bool:
        """Whether computing *node* inline may suspend the call (a sync call in
        place, or a coroutine function with no suspension point of its own, cannot;
        a permit or the app memo may make anything wait). Waiting for another call's
        claim on a held scope's key is apart: only that branch stores its position
        and checks for a hand-over."""
        found = self.waits[node.index]
        if found is None:
            found = self.waits[node.index] = computation_may_wait(node)
        return found

    def _memo_logic(self, node: Node, inline: bool, depth: int) -> list[str]:
        pad = "    " * depth
        i = node.index
        target = _ref(i, inline)
        main = "True" if inline else "main"
        if not node.alias and (
            node.lifetime is FUNCTION
            or (node.lifetime is REQUEST and self.variant == FRESH)
        ):
            return self._compute(node, target, inline, depth)  # no memo to consult
        n = self.const("N", node, node)
        # A slow helper reads the node's inputs from R: on the inline path they live
        # in locals, so store them first (only on that branch).
        keep = (
            ["R = E.rs()", *(f"R[{d}] = v{d}" for d in node.deps)]
            if inline and node.deps
            else []
        )
        if node.lifetime is APP:
            if node.use_cache:  # an alias too: a hit makes its twin unnecessary
                key = self.const("K", node.key, node)
                return [
                    f"{pad}t = APP.get({key}, MISSING)",
                    f"{pad}if t.__class__ is MISSING_T or t.__class__ is CLAIM:",
                    *(f"{pad}    {k}" for k in keep),
                    f"{pad}    t = await APP_VALUE(E, {n}, {main})",
                    f"{pad}{target} = t",
                ]
            return [
                *(f"{pad}{k}" for k in keep),
                f"{pad}{target} = await APP_VALUE(E, {n}, {main})",
            ]
        if node.alias:
            twin = _ref(node.deps[0], inline)
            if self.variant == FRESH or node.lifetime is not REQUEST:
                return [f"{pad}{target} = {twin}"]
            key = self.const("K", node.key, node)
            return [
                f"{pad}t = M.get({key}, MISSING)",
                f"{pad}if t is MISSING:",
                f"{pad}    t = {twin}",
                f"{pad}elif t.__class__ is CLAIM:",
                *(f"{pad}    {k}" for k in keep),
                f"{pad}    t = await WAIT_CLAIM(E, M, {key}, {n}, {main})",
                f"{pad}{target} = t",
            ]
        if self.variant == HELD and node.lifetime is REQUEST:
            key = self.const("K", node.key, node)
            if node.use_cache and inline:
                # The key is claimed only if the computation waits (another call can
                # only look at the memo then): the resolution writes the claim at the
                # first suspension, and releases it if the call fails.
                self.claim_keys[i] = node.key
                if self.can_wait(node):
                    # Claimed at its first suspension (E.at is i): wake the waiters.
                    computed = [
                        f"{pad}    if E.waiters:",
                        f"{pad}        E.wake({key})",
                    ]
                    waiting: list[str] = []
                else:
                    # It cannot suspend, so nobody can have seen it missing: no
                    # claim of ours to wake. Only another call's claim makes it wait.
                    computed = []
                    waiting = [f"{pad}    E.at = {i}"]
                    if self.ready_after[i]:
                        waiting += [
                            f"{pad}    if E.handed:",
                            f"{pad}        R = E.rs()",
                            f"{pad}        R[{i}] = t",
                            f"{pad}        return HANDED",
                        ]
                return [
                    f"{pad}t = M.get({key}, MISSING)",
                    f"{pad}if t is MISSING:",
                    *self._compute(node, "t", inline, depth + 1),
                    f"{pad}    M[{key}] = t",
                    *computed,
                    f"{pad}elif t.__class__ is CLAIM:",
                    *(f"{pad}    {k}" for k in keep),
                    *waiting[:1],
                    f"{pad}    t = await WAIT_CLAIM(E, M, {key}, {n}, {main})",
                    *waiting[1:],
                    f"{pad}{target} = t",
                ]
            if node.use_cache:
                # The concurrent tail. A call alone in its scope neither claims
                # nor writes (_lazymemo): a call that starts meanwhile claims what
                # this one has still to compute for it (so its own claim is no
                # reason to wait), and the value is written once that happened.
                return [
                    f"{pad}t = M.get({key}, MISSING)",
                    f"{pad}if t is MISSING or t is E:",
                    f"{pad}    if E.holder.lone is not E:",
                    f"{pad}        M[{key}] = E",
                    f"{pad}    try:",
                    *self._compute(node, "t", inline, depth + 2),
                    f"{pad}    except BaseException:",
                    f"{pad}        UNCLAIM(E, M, {key})",
                    f"{pad}        raise",
                    f"{pad}    if E.holder.lone is not E:",
                    f"{pad}        M[{key}] = t",
                    f"{pad}        if E.waiters:",
                    f"{pad}            E.wake({key})",
                    f"{pad}elif t.__class__ is CLAIM:",
                    f"{pad}    t = await WAIT_CLAIM(E, M, {key}, {n}, {main})",
                    f"{pad}{target} = t",
                ]
            lines = self._compute(node, target, inline, depth)
            if node.seeds and node.key is not None:
                lines += [
                    f"{pad}if {key} not in M:",
                    f"{pad}    M[{key}] = {target}",
                ]
            return lines
        return self._compute(node, target, inline, depth)

    def _compute(
        self,
        node: Node,
        target: str,
        inline: bool,
        depth: int,
        helper: tuple[list[str], list[str]] | None = None,
    ) -> list[str]:
        """Lines that compute *node*'s value into *target* (no memo logic).

        *helper*: for an async generator that may be set up in place, the lines
        (unindented) before and after the await of its helper branch, the only one
        that can suspend.
        """
        pad = "    " * depth
        fn = self.const("F", node.call, node)
        main = "True" if inline else "main"
        kind = node.kind
        if node.limit is None and (
            kind is CallKind.ASYNC or (kind is CallKind.SYNC and not node.thread)
        ):
            args = self._args(node, inline)
            if kind is CallKind.ASYNC:
                return [f"{pad}{target} = await {fn}({args})"]
            return [f"{pad}{target} = {fn}({args})"]
        n = self.const("N", node, node)
        exits = self._exits(node)
        if node.limit is not None:
            kwargs = self._kwargs_dict(node, inline)
            return [f"{pad}{target} = await LIMITED(E, {n}, {fn}, {kwargs}, {main})"]
        args = self._args(node, inline)
        if kind is CallKind.ASYNC:
            return [f"{pad}{target} = await {fn}({args})"]
        if kind is CallKind.SYNC:
            if not node.thread:
                return [f"{pad}{target} = {fn}({args})"]
            call = f"partial({fn}, {args})" if args else fn
            return [f"{pad}{target} = await RUN_SYNC({call})"]
        if kind is CallKind.SYNC_GEN:
            if node.thread:
                return [f"{pad}{target} = await THREAD_GEN({n}, {fn}({args}), {exits})"]
            if sync_gen_may_hold_scope(node.call):
                # It may keep a cancel scope open across its yield: placed and hosted
                # as an async generator is (_invoke.sync_as_async).
                gen = f"SYNC_AS_ASYNC({fn}({args}))"
                return [f"{pad}{target} = await AGEN(E, {n}, {gen}, {main}, SYNC_INFO)"]
            sync = [
                *self._before_function_gen(node, pad),
                f"{pad}g = {fn}({args})",
                f"{pad}{target} = FIRST(g, {n})",
                f"{pad}{exits}.append({n})",
                f"{pad}{exits}.append(g)",
            ]
            if self.variant == HELD:
                sync.append(f"{pad}E.here = None  # it may hold a cancel scope")
            return sync
        # An async generator: in place where its teardown will find the task as it
        # left it, else through AGEN (which decides, and may host it).
        info = gen_info(node.call)
        known = "None" if info is UNKNOWN_GEN else self.const("INFO", info, node)
        place = (
            placement(node, info, self.variant, self.first_fn_gen) if inline else HELPER
        )
        assert helper is None or place in (IN_HOST, CHECKED)
        if place == HELPER:
            gen = f"{fn}({args})"
            return [f"{pad}{target} = await AGEN(E, {n}, {gen}, {main}, {known})"]
        lines = self._before_function_gen(node, pad)
        lines.append(f"{pad}g = {fn}({args})")
        inner = pad
        if place == CHECKED:
            lines.append(f"{pad}if PLACE(E):")
            inner = pad + "    "
        elif place == IN_HOST:
            # _invoke.place_plain, inline: held runners always run in a Scope, and
            # E.task is the calling task once supervision opened.
            lines.append(f"{pad}if (E.task or E.rt.current_task()) is E.holder.host:")
            inner = pad + "    "
        bit = OWN_FUNCTION if node.lifetime is FUNCTION else OWN_REQUEST
        if info is UNKNOWN_GEN:
            lines.append(f"{inner}if GEN_INFO(g.ag_code).teardown_waits:")
            lines.append(f"{inner}    OWN(E, {exits}, {bit})")
        elif info.teardown_waits:
            lines.append(f"{inner}OWN(E, {exits}, {bit})")
        no_yield = self.no_yield.get(node.index)
        if no_yield is None:
            no_yield = self.no_yield[node.index] = self.const(
                "NO_YIELD", _no_yield_raiser(node), node
            )
        lines += [
            f"{inner}try:",
            f"{inner}    {target} = await g.__anext__()",
            f"{inner}except StopAsyncIteration:",
            f"{inner}    {no_yield}()",
            f"{inner}{exits}.append({n})",
            f"{inner}{exits}.append(g)",
        ]
        if place == IN_PLACE and self.variant == HELD and not plain(info):
            lines.append(f"{inner}E.here = None  # it may hold a cancel scope")
        if place != IN_PLACE:
            if self.variant == HELD and (info is UNKNOWN_GEN or info.may_hold_scope):
                lines.append(f"{inner}NOTE_LEVEL(E)")
            before, after = helper or ([], [])
            lines.append(f"{pad}else:")
            if self.concurrent:
                lines.append(f"{pad}    if E.task is None:")
                lines.append(f"{pad}        {OPEN}")
            lines.extend(f"{pad}    {h}" for h in before)
            lines.append(f"{pad}    {target} = await AGEN(E, {n}, g, True, {known})")
            lines.extend(f"{pad}    {h}" for h in after)
        return lines

    def _before_function_gen(self, node: Node, pad: str) -> list[str]:
        """:func:`._invoke.before_function_gen`, inline, where it is needed."""
        if self.level_needed and node.lifetime is FUNCTION:
            return [
                f"{pad}if E.level is LEVEL_UNSET:",
                f"{pad}    CAPTURE_LEVEL(E)",
            ]
        return []

    def _exits(self, node: Node) -> str:
        if node.lifetime is FUNCTION:
            return "XF"
        if node.lifetime is REQUEST:
            return "XR"
        return "APP_EXITS"

    def _args(self, node: Node, inline: bool) -> str:
        exprs = self._arg_exprs(node, inline)
        order = _positional_order(node.call, exprs)
        if order is not None:
            # The same binding as keywords, cheaper to compile and to call.
            return ", ".join(order)
        if len(exprs) > _MANY_ARGS:
            # CPython compiles a call's keyword arguments in time quadratic in their
            # number (5,000 take 0.15 s); a dict display is linear.
            return "**{" + ", ".join(f"{name!r}: {expr}" for name, expr in exprs) + "}"
        return ", ".join(f"{name}={expr}" for name, expr in exprs)

    def _kwargs_dict(self, node: Node, inline: bool) -> str:
        exprs = self._arg_exprs(node, inline)
        return "{" + ", ".join(f"{name!r}: {expr}" for name, expr in exprs) + "}"

    def _arg_exprs(self, node: Node, inline: bool) -> list[tuple[str, str]]:
        parts = [(name, _ref(j, inline)) for name, j in node.args]
        for name, default in node.values:
            if default is EMPTY:
                parts.append((name, f"V[{name!r}]"))
            else:
                dflt = self.const(f"D_{_IDENT.sub('_', name)}_", default, node)
                parts.append((name, f"V.get({name!r}, {dflt})"))
        for name, ctx in node.contexts:
            parts.append((name, f"CTX[{self.const('T', ctx)}]"))
        for name, cls in node.scope_args:
            scopes = self.const("SCOPES", node.scopes, node)
            make = self.const("SS", cls)
            parts.append((name, f"{make}(scopes=list({scopes}))"))
        return parts

    def _root_call(self, node: Node, depth: int, inline: bool) -> list[str]:
        pad = "    " * depth
        fn = self.const("F", node.call, node)
        args = self._args(node, inline)
        # inline leaves the root's result in E.out and returns nothing: a coroutine
        # that returns None ends its first step without a StopIteration made at all
        # (_call.run); the concurrent tail returns it.
        end = "E.out = " if inline else "return "
        lines = [f"{pad}# root: {node.name}"]
        if node.kind is CallKind.ASYNC:
            lines.append(f"{pad}{end}await {fn}({args})")
        elif node.thread:
            call = f"partial({fn}, {args})" if args else fn
            lines.append(f"{pad}{end}await RUN_SYNC({call})")
        else:
            lines.append(f"{pad}{end}{fn}({args})")
        return lines


def _positional_order(
    call: Callable[..., Any], exprs: list[tuple[str, str]]
) -> list[str] | None:
    """*exprs* (parameter name, expression) in positional order, if *call* is a
    plain function (or a bound method of one) whose leading positional parameters
    are exactly those names; else None (pass them by keyword)."""
    if not exprs:
        return None
    skip = 0
    func: object = call
    if isinstance(func, MethodType):
        func = func.__func__
        skip = 1
    if type(func) is not FunctionType:
        return None
    code = func.__code__
    names = code.co_varnames[skip : code.co_argcount]
    if len(exprs) > len(names):
        return None
    by_name = dict(exprs)
    try:
        return [by_name[name] for name in names[: len(exprs)]]
    except KeyError:
        return None


def _ref(index: int, inline: bool) -> str:
    """Where node *index*'s value is: a local on the inline path, else ``R``."""
    return f"v{index}" if inline else f"R[{index}]"


def _no_yield_raiser(node: Node) -> Callable[[], None]:
    def raise_no_yield() -> None:
        raise no_yield(node.name, node.path) from None

    return raise_no_yield
