"""The one run-then-teardown protocol every entry point goes through.

``container.call``, ``scope.call``, ``call_in``, ``Plan`` calls, ``inject`` and
``trace`` all build a :class:`~._state.CallState` and await :func:`run`:

1. a plan whose dependencies may overlap gets its supervisor (:mod:`._backend`);
2. the generated ``inline`` is stepped once: if nothing waits, that is the whole call;
   if something does, :func:`._resolution.resolve` finishes it (concurrently where it
   pays), or, where nothing is left to watch for, a plain driver of ``inline``;
3. the call's own teardowns run (function scope, then the private request scope of a
   ``container.call``), exactly once, in reverse order, whatever happened;
4. the caller gets the root's result, or the original exception, or what the
   teardowns turned it into (FastAPI's exit-stack semantics; a teardown's own
   ``__cause__`` is kept, the exception it replaced is its ``__context__``).
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

from anyio.lowlevel import checkpoint_if_cancelled

from ._resolution import ContainerLost, resolve, watched
from ._state import CallState
from ._teardown import _MORE, Started, close_clean, teardown

__all__ = ["finish", "run"]


@types.coroutine
def run(state: CallState) -> Generator[Any, Any, Any]:
    """Run one call to the end (see the module docstring).

    A generator-based coroutine, so that where nothing is left to watch for it drives
    the suspended ``inline`` itself: a call waiting there holds no frame or object of
    ours between the caller and the dependency.
    """
    runner = state.runner
    if runner.concurrent:
        state.rt.supervision.open(state)
    inline = runner.inline(state.values, state)
    try:
        try:
            pending = inline.send(None)
        except StopIteration as stop:
            result = stop.value
        else:
            if watched(state):
                result = yield from resolve(state, inline, pending).__await__()
            else:
                while True:  # _backend.Drive's loop
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
    except ContainerLost as lost:
        final = yield from finish(state, lost.error).__await__()
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
        xr = state.xr if state.holder is None else None
        outcome = close_clean(xr) if xr else None
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
