"""What generated code may assume about each node of a plan, read before it is written.

:mod:`._codegen` writes a plan's code for one of two *variants* (``FRESH``: the private
scope of ``container.call``; ``HELD``: a :class:`~anydepends.Scope` shared by calls).
Which checks that code needs around a node follows from a few facts about the node,
its variant and its place in the plan, all decided here, from the plan and the
dependables' bytecode (:mod:`._codeinfo`), never from earlier calls:

- :func:`ready_after`: whether another dependency could be ready while a node runs
  (where a waiting call may go concurrent);
- :func:`computation_may_wait`: whether computing a node may suspend at all;
- :func:`placement`: where an async generator is set up (in place, in place after a
  check, or by a helper task);
- :func:`claims`: whether a held scope's memo key is claimed lazily;
- :func:`stirs`: whether computing a node in place may suspend or change the calling
  task's cancel-scope stack (the call's supervision opens before the first that does);
- :func:`waits_only_in_helper`: whether computing a node may suspend only in its
  helper branch (where a held call looks, after it, for a call that came meanwhile).
"""

from __future__ import annotations

from typing import Any, Final

from ._codeinfo import UNKNOWN as UNKNOWN_GEN
from ._codeinfo import GenInfo, gen_info, may_suspend
from ._introspect import CallKind
from ._lifetime import Lifetime
from ._plan import Node, Plan

__all__ = [
    "CHECKED",
    "FRESH",
    "HELD",
    "HELPER",
    "IN_HOST",
    "IN_PLACE",
    "claims",
    "computation_may_wait",
    "placement",
    "plain",
    "ready_after",
    "stirs",
    "waits_only_in_helper",
]

FRESH: Final = 0  #: a private scope (container.call): no memo to consult
HELD: Final = 1  #: a Scope shared by calls: memo, claims

# Where inline sets an async generator up (see placement).
IN_PLACE: Final = 0  #: in place, no check
CHECKED: Final = 1  #: in place if _invoke.place_request says so, else by a helper
HELPER: Final = 2  #: by a helper (_invoke.agen_setup)
IN_HOST: Final = 3  #: in place in the held scope's own task, else by a helper


def ready_after(plan: Plan[Any]) -> list[bool]:
    """Per node position *i*: could another dependency be ready while *i* runs?

    Running in plan order, when node *i* starts every earlier node is done; a later
    node (not the root) is ready then if all its dependencies come before *i*. A
    suffix minimum of each node's last dependency answers it for every *i* at once.
    """
    nodes = plan.nodes
    last = len(nodes) - 1
    result = [False] * len(nodes)
    lowest = last  # min over later non-root nodes of their highest dependency
    for i in range(last - 1, -1, -1):
        result[i] = lowest < i
        deps = nodes[i].deps
        lowest = min(lowest, max(deps) if deps else -1)
    return result


def computation_may_wait(node: Node) -> bool:
    """Whether computing *node* may suspend, leaving memo claims aside: a permit,
    the app memo, a worker thread, a generator, or a coroutine that awaits."""
    if node.limit is not None or node.lifetime is Lifetime.APP or node.alias:
        return True
    if node.kind is CallKind.SYNC:
        return node.thread
    if node.kind is CallKind.ASYNC:
        return may_suspend(node.call)
    return True


def plain(info: GenInfo) -> bool:
    """Whether an async generator leaves nothing on the task's cancel-scope stack
    across its ``yield``: no ``with`` block, and a teardown that cannot wait (so no
    cancel scope of ours around it either)."""
    return (
        info is not UNKNOWN_GEN and not info.may_hold_scope and not info.teardown_waits
    )


def placement(node: Node, info: GenInfo, variant: int, first_fn_gen: int) -> int:
    """How generated ``inline`` sets this async generator up: in place, in place
    after a check (:func:`._invoke.place_request`, or the test of
    :func:`._invoke.place_plain` for one that leaves nothing on the cancel-scope
    stack), or through the helper. *first_fn_gen*: the position of the plan's first
    function-scoped generator (a private scope's request-scoped generator after it
    must check where it is)."""
    if node.lifetime is Lifetime.FUNCTION:
        return IN_PLACE
    if node.lifetime is Lifetime.REQUEST:
        if variant == FRESH and (node.index < first_fn_gen or plain(info)):
            return IN_PLACE
        return IN_HOST if plain(info) else CHECKED
    return HELPER


def claims(node: Node, variant: int) -> bool:
    """Whether inline claims *node*'s key of a held scope's memo lazily (at its
    first suspension)."""
    return (
        variant == HELD
        and node.lifetime is Lifetime.REQUEST
        and node.use_cache
        and not node.alias
    )


def stirs(node: Node, variant: int, first_fn_gen: int) -> bool:
    """Whether computing *node* inline, where it is computed in place, may suspend
    or change the calling task's cancel-scope stack (a yield dependency set up in
    place that may hold a scope); its helper branch is apart."""
    if not computation_may_wait(node):
        return False
    info = _placeable_gen(node)
    return (
        info is None
        or info is UNKNOWN_GEN
        or info.setup_waits
        or not plain(info)
        or placement(node, info, variant, first_fn_gen) not in (IN_PLACE, IN_HOST)
    )


def waits_only_in_helper(node: Node, variant: int, first_fn_gen: int) -> bool:
    """Whether computing *node* may suspend, but only in its helper branch: an async
    generator set up in place whose code before its ``yield`` has no suspension
    point (the in-place branch runs straight to the ``yield``)."""
    info = _placeable_gen(node)
    return (
        info is not None
        and info is not UNKNOWN_GEN
        and not info.setup_waits
        and placement(node, info, variant, first_fn_gen) in (IN_HOST, CHECKED)
    )


def _placeable_gen(node: Node) -> GenInfo | None:
    """What is known of *node*'s code if it is an async generator inline may set up
    in place (no permit, not app-scoped, not an alias); ``None`` for anything else."""
    if (
        node.kind is not CallKind.ASYNC_GEN
        or node.limit is not None
        or node.lifetime is Lifetime.APP
        or node.alias
    ):
        return None
    return gen_info(node.call)
