"""The one run-then-teardown protocol every entry point goes through.

``container.call``, ``scope.call``, ``call_in``, ``Plan`` calls, ``inject`` and
``trace`` all build a :class:`~._state.CallState` and await :func:`run`:

1. the generated ``inline`` is stepped once: if nothing waits, that is the whole
   call; if something does, :func:`run` drives it on in the calling task, claiming a
   held scope's keys where it waits in them and, where other dependencies are
   ready, handing the call to a :class:`~._resolution.Resolution` that may take it
   concurrent (a plan whose dependencies may overlap opens its supervision,
   :mod:`._backend`, in ``inline`` where the call may first suspend);
2. the call's own teardowns run (function scope, then the private request scope of a
   ``container.call``), exactly once, in reverse order, whatever happened;
3. the caller gets the root's result, or the original exception, or what the
   teardowns turned it into (FastAPI's exit-stack semantics; a teardown's own
   ``__cause__`` is kept, the exception it replaced is its ``__context__``).
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

from anyio.lowlevel import checkpoint_if_cancelled

from ._invoke import HANDED
from ._resolution import ContainerLost, Resolution
from ._state import CallState
from ._teardown import _MORE, Started, close_clean, teardown

__all__ = ["finish", "run", "waits_in"]


@types.coroutine
def run(state: CallState) -> Generator[Any, Any, Any]:
    """Run one call to the end (see the module docstring).

    A generator-based coroutine, so that it drives a suspended ``inline`` itself:
    a call waiting in a dependency holds no frame or object of ours between the
    caller and the dependency but this one (and a :class:`~._resolution.Resolution`
    once it registered to go concurrent).
    """
    # Few locals: every one is a slot in the frame a waiting call keeps.
    # (Supervision opens in inline, where the call may first suspend: _codegen.)
    inline = state.inline = state.runner.inline(state.values, state)
    result: Any = None
    try:
        try:
            pending = inline.send(None)
        except StopIteration as stop:
            result = stop.value
        else:
            # The driver loop: everything the event loop sends or throws goes to
            # inline, as if it had been awaited in this task from the start. Where
            # inline waits (state.at, set by the generated code) is looked at
            # whenever it changed (see waits_in). It is _backend.Drive's loop with
            # that look in front, written out here rather than delegated: a waiting
            # call then keeps this one frame, not two.
            res: Resolution | None = None
            seen = -1
            try:
                while True:
                    if state.at != seen:
                        seen = state.at
                        res = waits_in(state, seen, res)
                    try:
                        sent = yield pending
                    except BaseException as exc:  # thrown in by the loop: pass it on
                        try:
                            pending = inline.throw(exc)
                        except StopIteration as stop:
                            result = stop.value
                            break
                    else:
                        try:
                            pending = inline.send(sent)
                        except StopIteration as stop:
                            result = stop.value
                            break
            except BaseException as exc:
                if state.claims:
                    state.release_claims()
                if res is None or not res.driven(exc):
                    raise  # nothing else runs: a plain failure or cancellation
                result = HANDED
            else:
                if res is not None:
                    res.driven(None)
            if result is HANDED:
                # The call went concurrent. Outside the handler: what the rest
                # raises is not chained to the calling task's own failure (or to
                # our interruption of it).
                assert res is not None
                result = yield from res.rest().__await__()
    except ContainerLost as exc:
        final = yield from finish(state, exc.error).__await__()
        # The container's tasks died: if a scope around it was cancelled, that is
        # what this caller gets too; otherwise the container closed under it.
        yield from checkpoint_if_cancelled().__await__()
        assert final is not None
        raise final from None
    except BaseException as exc:
        final = yield from finish(state, exc).__await__()
        if final is exc:
            raise
        assert final is not None
        raise final  # noqa: B904 - its __context__ is exc; its own __cause__ stays
    if state.owned == 0 and not state.xf:
        # The common end: generators set up here, nothing to throw in, no scope of
        # ours in the lists: step them closed in place, no coroutine at all.
        outcome = close_clean(state.xr) if state.holder is None and state.xr else None
        if outcome is None:
            if state.sup is not None:
                state.rt.supervision.close(state)
            return result
        final = yield from finish(state, outcome).__await__()
    else:
        final = yield from finish(state, None).__await__()
    if final is not None:
        raise final
    return result


def waits_in(state: CallState, at: int, res: Resolution | None) -> Resolution | None:
    """``inline`` suspended in node *at* (``QUIET``: nowhere that matters any more):
    claim a held scope's key there, and where other dependencies are ready, register
    the call to go concurrent (its :class:`~._resolution.Resolution`, made then)."""
    if res is not None:
        res.at = at
    if at < 0:
        return res
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
    if runner.concurrent and runner.ready_after[at] and state.task is not None:
        if res is None:
            res = Resolution(state, at)
        if not res.concurrent:
            res.register(at)
    return res


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
    return error
