"""The one run-then-teardown protocol every entry point goes through.

``container.call``, ``scope.call``, ``call_in``, ``Plan`` calls, ``inject`` and
``trace`` all build a :class:`~._state.CallState` and await :func:`run`:

1. the generated ``inline`` is stepped once: if nothing waits, that is the whole
   call; if something does, :func:`run` drives it on in the calling task, claiming
   a held scope's keys where it waits in them and, where other dependencies are
   ready, registering the call with the container's dispatcher (:mod:`._dispatch`),
   which may take it concurrent (a :class:`~._resolution.Resolution` finishes it
   then; a plan whose dependencies may overlap opens its supervision,
   :mod:`._backend`, in ``inline`` where the call may first suspend);
2. the call's own teardowns run (function scope, then the private request scope of a
   ``container.call``), exactly once, in reverse order, whatever happened;
3. the caller gets the root's result, or the original exception, or what the
   teardowns turned it into (FastAPI's exit-stack semantics; a teardown's own
   ``__cause__`` is kept, the exception it replaced is its ``__context__``).

A call waiting in a dependency keeps every frame between its caller and that
dependency, so :func:`run` keeps few locals: the paths that come after ``inline``
and must wait (the rest of a concurrent call, teardowns to await, a failure) are
small generators (:func:`rest`, :func:`closing`, :func:`failed`) it delegates to.
A failed call's exception reaches, through its traceback, every frame it passed
through and their callers': a frame there that still keeps the exception (or the
one thrown into a generator) in a local when it returns makes a cycle, and the
whole call (state, values, frames) stays alive until the garbage collector runs.
So every function on the failure and teardown paths lets go of such locals on its
way out (``try: return ... finally: x = None``; the tests run with the collector
off to prove it).

(An awaitable object instead of :func:`run` keeps ~180 bytes less per waiting call
but costs ~0.5 µs per suspension in Python-level ``send`` calls and a raised
``StopIteration``: measured, and not taken.)
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from contextvars import copy_context
from typing import Any, Final, cast

from anyio.lowlevel import checkpoint_if_cancelled

from ._dispatch import NO_TICKET
from ._invoke import HANDED
from ._resolution import ContainerLost, Resolution
from ._state import CallState, Sentinel
from ._teardown import _MORE, Started, close_clean, teardown

__all__ = ["finish", "run", "waits_in"]

_OVER: Final = Sentinel("OVER")  # nothing left to tear down or wait for
# Added to where inline waits when waits_in did not register it: ask it again at the
# next suspension (where inline never waits, node indices being far smaller).
_AGAIN: Final = 1 << 40


@types.coroutine
def run(state: CallState) -> Generator[Any, Any, Any]:
    """Run one call to the end (see the module docstring).

    A generator-based coroutine, so that it drives a suspended ``inline`` itself:
    everything the event loop sends or throws goes to ``inline``, as if it had been
    awaited in this task from the start, and where ``inline`` waits (``state.at``,
    set by the generated code) is looked at whenever it changed (:func:`waits_in`).
    """
    # Few locals (each is a slot in the frame a waiting call keeps).
    inline: Coroutine[Any, Any, Any] | None
    inline = state.inline = state.runner.inline(state.values, state)
    sent: Any = None  # what the loop sent in; then what ends the call
    try:
        # The first step through the iteration protocol: when inline returns
        # without suspending (the common case) it returns None, having left the
        # root's result in state.out, and no StopIteration is made at all (~0.25 µs
        # less per call than send()'s, which is raised, caught and matched here).
        for pending in inline.__await__():  # noqa: B007 (used after the loop)
            break  # it suspended (the iterator let go of: a waiting call keeps less)
        else:
            pending = inline = None  # it returned
        seen = -1
        while inline is not None:  # drive it on
            if state.at != seen:
                # (No local for state.at: each is a slot a waiting call keeps.)
                seen = (
                    state.at
                    if waits_in(state, state.at, pending, seen == state.at + _AGAIN)
                    else state.at + _AGAIN
                )
            try:
                sent = yield pending
            except BaseException as exc:  # thrown in by the loop: pass it on
                pending = inline.throw(exc)
            else:
                pending = inline.send(sent)
    except StopIteration as exc:  # inline returned after it suspended
        if state.ticket != NO_TICKET:
            state.rt.dispatcher.withdraw(state)
        # The call went concurrent (the rest finishes it), or it returned.
        sent = rest(state, state.handed, None) if exc.value is HANDED else None
    except BaseException as exc:  # inline raised
        sent = raised(state, exc)
    # Outside the handlers: what the rest raises is not chained to the calling
    # task's own failure (or to our interruption of it), nor to a StopIteration.
    if sent is None:  # inline returned: the common end (ending's), written out
        if state.owned == 0 and not state.xf:
            # Generators set up here, nothing to throw in, no scope of ours in the
            # lists: close them in place.
            sent = close_clean(state.xr) if state.holder is None and state.xr else None
            if sent is None:
                if state.sup is not None:
                    state.rt.supervision.close(state)
                return state.out
            sent = closing(state, sent, state.out)  # (not the exception: module doc)
        else:
            sent = closing(state, None, state.out)
    return (yield from cast("Generator[Any, Any, Any]", sent))


def raised(state: CallState, exc: BaseException) -> Generator[Any, Any, Any]:
    """``inline`` raised *exc*: what ends the call (the rest, if it went on
    concurrently; else the failure)."""
    if state.ticket != NO_TICKET:
        state.rt.dispatcher.withdraw(state)
    if state.claims:
        state.release_claims()
    if state.handed:
        return rest(state, state.handed, exc)
    return failed(state, exc)


def ending(state: CallState) -> Any:
    """The root returned: close what can be closed in place. ``_OVER``: the call is
    over; otherwise what :func:`finish` must be given."""
    if state.owned == 0 and not state.xf:
        # The common end: generators set up here, nothing to throw in, no scope of
        # ours in the lists: step them closed in place, no coroutine at all.
        outcome = close_clean(state.xr) if state.holder is None and state.xr else None
        if outcome is None:
            if state.sup is not None:
                state.rt.supervision.close(state)
            return _OVER
        try:
            return outcome
        finally:
            outcome = None  # (it may be an exception: see the module docstring)
    return None


def rest(
    state: CallState, res: Resolution, exc: BaseException | None
) -> Generator[Any, Any, Any]:
    """The call went concurrent: the calling task's part of its rest, then its end.
    *exc*: what ``inline`` raised (``None``: it handed over)."""
    res.driven(exc)
    exc = None  # (no reference to it in a frame it passes through)
    failure: BaseException | None = None
    result: Any = None
    try:
        result = yield from res.rest().__await__()
    except BaseException as exc:
        failure = exc
    if failure is not None:
        end = failed(state, failure)
        failure = None  # (no reference to it in a frame it passes through)
        return (yield from end)
    over = ending(state)
    if over is _OVER:
        return result
    return (yield from closing(state, over, result))


def closing(state: CallState, outcome: object, result: Any) -> Generator[Any, Any, Any]:
    """The root returned *result*; the teardowns left to await run."""
    final = yield from finish(state, outcome).__await__()
    outcome = None  # (see the module docstring)
    if final is not None:
        try:
            raise final
        finally:
            final = None
    return result


def failed(state: CallState, failure: BaseException) -> Generator[Any, Any, Any]:
    """The call failed (or was cancelled): tear down what it owns and raise what
    the caller must get. (Frames it passes through keep no reference to it.)"""
    try:
        raise failure  # handled here: what the teardowns raise has it as __context__
    except ContainerLost as lost:
        del failure
        final = yield from finish(state, lost.error).__await__()
        # The container's tasks died: if a scope around it was cancelled, that is
        # what this caller gets too; otherwise the container closed under it.
        yield from checkpoint_if_cancelled().__await__()
        assert final is not None
        try:
            raise final from None
        finally:
            final = None
    except BaseException as exc:
        del failure
        final = yield from finish(state, exc).__await__()
        if final is exc:
            final = None
            raise
        assert final is not None
        try:
            raise final  # its __context__ is exc; its own __cause__ stays
        finally:
            final = None


def waits_in(state: CallState, at: int, awaiting: object, again: bool) -> bool:
    """``inline`` suspended in node *at* (``QUIET``: nowhere that matters any more),
    awaiting *awaiting* (what it gave the event loop): claim a held scope's key
    there, and where other dependencies are ready, register the call with the
    dispatcher, which may take it concurrent (withdrawn from where it waited
    before). ``False``: not registered, because this wait ends next round for
    certain (:meth:`~._dispatch.Dispatcher.lasts`); then at the next suspension it
    is asked again, *again* true if that is in *at* still: a loop round waited
    there already counts (a dependency that passes checkpoint after checkpoint
    goes concurrent as soon as one that waits on)."""
    if state.ticket != NO_TICKET:
        state.rt.dispatcher.withdraw(state)
    if at < 0:
        return True
    runner = state.runner
    claim_keys = runner.claim_keys
    if claim_keys is not None:
        key = claim_keys[at]
        # A call alone in its scope claims nothing: a call that starts in the
        # scope meanwhile claims for it (_lazymemo.share_lone).
        if key is not None and state.holder.lone is not state:
            state.claim(key)
    # Only a supervised call goes concurrent (inline opens its supervision before
    # anything that may suspend; a suspension it did not foresee runs on in order).
    if (
        runner.concurrent
        and runner.ready_after[at]
        and state.task is not None
        and not state.handed
    ):
        rt = state.rt
        dispatcher = rt.dispatcher
        if not again and not dispatcher.lasts(awaiting):
            return False
        # Where only this task can copy its context: now, for the runners it may get.
        ctx = copy_context() if rt.context_of is None else None
        dispatcher.defer(state, ctx, awaiting, waited=again)
    return True


async def finish(state: CallState, exc: object) -> BaseException | None:
    """Tear down what the call owns; return the exception the caller must get.

    *exc*: the exception being handled, or ``None``, or where :func:`close_clean`
    stopped on the private request list.
    """
    started: Started | None = None
    if type(exc) is Started:
        started, exc = exc, None
    elif exc is _MORE:
        exc = None
    error: BaseException | None = exc if isinstance(exc, BaseException) else None
    if error is not None and state.claims:
        state.release_claims()  # what it had still to compute (_lazymemo)
    xf = state.xf
    if xf:
        error = await teardown(xf, error)
    if state.holder is None:
        xr = state.xr
        if xr or started is not None:
            error = await teardown(xr or [], error, started)
    if state.sup is not None:
        state.rt.supervision.close(state)
        state.sup = None
    state.task = None
    try:
        return error
    finally:
        exc = error = None  # (see the module docstring)
