"""A request scope's memo, written lazily (docs/concepts.md, "A request scope's memo").

A call that started on an empty memo, with no other call of its scope in progress, is
*alone* in the scope (:attr:`Scope.lone <anydepends.Scope>` is its state). While it
stays alone, nobody else can look at the memo, so it writes none of the values it
computes, and claims nothing: they stay in ``inline``'s variables (:mod:`._codegen`),
or once the call went concurrent, in its results list. They reach the memo in one of
three ways, all here or in the generated code:

- another call starts in the scope (another task's, or one made from inside a
  dependency): before it runs, :func:`share_lone` writes them (from the waiting
  call's frame, or its results) and claims for that call what it is computing (the
  dependency ``inline`` waits in) or, once concurrent, has still to compute, so the
  newcomer finds the values and waits instead of computing them again. The first
  call, after each dependency that may have suspended, sees it is no longer alone,
  writes that value, wakes the newcomer and looks up from then on;
- the call fails: :func:`flush_deferred` (``inline``) or :func:`close_lone` (the
  concurrent tail) writes what it computed, so a later call in the scope does not
  set a ``yield`` dependency up twice;
- the call ends alone: the values go to the scope as one stash (written by
  ``inline``, or by :func:`close_lone`), written into the memo when (if ever)
  another call starts.
"""

from __future__ import annotations

from types import CoroutineType
from typing import Any, Final, cast

from ._state import MISSING, CallState

__all__ = ["SHARED", "Shared", "close_lone", "flush_deferred", "share_lone"]


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
    computed, claim for it what it is computing or has still to compute, and let it
    know it is alone no more."""
    memo = state.memo
    assert memo is not None
    if state.handed:
        _share_results(state, memo)
    else:
        _share_frame(state, memo)
    _no_longer_alone(state)


def _share_frame(state: CallState, memo: dict[Any, Any]) -> None:
    inline = cast("CoroutineType[Any, Any, Any] | None", state.inline)
    frame = None if inline is None else inline.cr_frame
    if frame is None:
        return  # inline ended (its values are in the stash, or flushed)
    # Read the public way (a rare path: only where calls overlap). The call is in
    # node state.at (suspended there, or running it: a call made from inside that
    # dependency) unless it got its value already.
    local = frame.f_locals
    keys, names = state.runner.lone_values
    flush_deferred(memo, keys, names, local)
    at = state.at
    if at >= 0 and local.get(f"v{at}", MISSING) is MISSING:
        _claim(state, at)
    if type(local) is dict:
        # CPython < 3.13 keeps this snapshot on the frame: it is only a copy.
        local.clear()


def _share_results(state: CallState, memo: dict[Any, Any]) -> None:
    """The call went concurrent: its values so far are in its results list; every
    key it has still to compute is claimed for it (its generated code treats its
    own claim as missing, and releases it if it fails)."""
    claim_keys = state.runner.claim_keys
    if claim_keys is None:
        return
    results = state.rs()
    need = state.need  # None: every node runs (else a memo hit skipped some)
    for index, key in enumerate(claim_keys):
        if key is None or (need is not None and not need[index]) or key in memo:
            continue
        value = results[index]
        if value is MISSING:
            state.claim(key)
        else:
            memo[key] = value


def close_lone(state: CallState, failed: bool) -> None:
    """A call that went concurrent while alone in its scope ends (*failed*: with an
    exception), still alone: its values go to the memo if it failed, else to the
    scope's stash."""
    holder = state.holder
    claim_keys = state.runner.claim_keys
    if holder is None or holder.lone is not state or claim_keys is None:
        return
    results = state.rs()
    done = [
        (key, results[index])
        for index, key in enumerate(claim_keys)
        if key is not None and results[index] is not MISSING
    ]
    if failed:
        memo = state.memo
        assert memo is not None
        for key, value in done:
            if key not in memo:
                memo[key] = value
    elif done:
        keys, values = zip(*done, strict=True)
        holder.stash = (keys, values)


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
