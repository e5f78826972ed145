"""A request scope's memo, written lazily (docs/concepts.md, "A request scope's memo").

A call that started on an empty memo, with no other call of its scope in progress, is
*alone* in the scope (:attr:`Scope.lone <anydepends.Scope>` is its state). While it
stays alone, nobody else can look at the memo, so the generated code (:mod:`._codegen`)
writes none of the values it computes: they stay in ``inline``'s variables. They
reach the memo in one of four ways, all here or in that code:

- another call starts in the scope (another task's, or one made from inside a
  dependency): before it runs, :func:`share_lone` writes them from the waiting
  call's frame and claims the key the call waits in, so the newcomer finds the
  values and waits for that one instead of computing it again; the first call, when
  its dependency returns, sees it is no longer alone, writes that value, wakes the
  newcomer and looks up from then on;
- the call goes concurrent (runner tasks share the memo): :func:`share_handed`
  does the same from the results moved out of the frame;
- the call fails: :func:`flush_deferred` writes what it computed, so a later call in
  the scope does not set a ``yield`` dependency up twice;
- the call ends alone: the generated code leaves them to the scope as one stash,
  written into the memo when (if ever) another call starts.
"""

from __future__ import annotations

from types import CoroutineType
from typing import Any, Final, cast

from ._invoke import MISSING
from ._state import CallState

__all__ = ["SHARED", "Shared", "flush_deferred", "share_handed", "share_lone"]


class Shared:
    """The type of :data:`SHARED`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SHARED"


#: ``Scope.lone`` once calls overlapped: no call is alone in the scope any more.
SHARED: Final = Shared()


def flush_deferred(
    memo: dict[Any, Any],
    keys: tuple[Any, ...],
    names: tuple[str, ...],
    local: dict[str, Any],
) -> None:
    """Write the values a call alone in its scope computed but did not write (*local*:
    ``inline``'s variables, where they are *names*), as an eager write would have. A
    value never computed is absent or ``MISSING``; a key already in the memo
    (written, or claimed by the node that failed) is left."""
    for key, name in zip(keys, names, strict=True):
        value = local.get(name, MISSING)
        if value is not MISSING and key not in memo:
            memo[key] = value


def share_lone(state: CallState) -> None:
    """Another call starts in the scope *state* has been alone in: write what it
    computed, claim the key it waits in, and let it know it is alone no more."""
    inline = cast("CoroutineType[Any, Any, Any] | None", state.inline)
    frame = None if inline is None else inline.cr_frame
    if inline is not None and frame is not None:
        # Read the public way (a rare path: only where calls overlap). The call is
        # in node state.at (suspended there, or running it: a call made from
        # inside that dependency) unless it got its value already.
        local = frame.f_locals
        keys, names, _ = state.runner.lone_values
        memo = state.memo
        assert memo is not None
        flush_deferred(memo, keys, names, local)
        at = state.at
        if at >= 0 and local.get(f"v{at}", MISSING) is MISSING:
            _claim(state, at)
        if type(local) is dict:
            # CPython < 3.13 keeps this snapshot on the frame: it is only a copy.
            local.clear()
    _no_longer_alone(state)


def share_handed(state: CallState, results: list[Any], at: int) -> None:
    """*state* goes concurrent while alone in its scope, waiting in node *at*, its
    results so far moved to *results*: write them, claim *at*'s key, and let it
    know it is alone no more (runner tasks use the memo as any call does)."""
    memo = state.memo
    assert memo is not None
    keys, _, indices = state.runner.lone_values
    need = state.need  # None: every node runs (else a memo hit skipped some)
    for key, index in zip(keys, indices, strict=True):
        if index < at and (need is None or need[index]) and key not in memo:
            memo[key] = results[index]
    _claim(state, at)
    _no_longer_alone(state)


def _claim(state: CallState, at: int) -> None:
    claim_keys = state.runner.claim_keys
    if claim_keys is not None:
        key = claim_keys[at]
        if key is not None:
            state.claim(key)


def _no_longer_alone(state: CallState) -> None:
    holder = state.holder
    if holder is not None and holder.lone is state:
        holder.lone = SHARED
