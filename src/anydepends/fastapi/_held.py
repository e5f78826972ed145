"""A call held open until FastAPI is done with the response.

anydepends tears a call's ``yield`` dependencies down when the call returns. FastAPI
tears ``Depends(scope="function")`` ones down after the response is *made* (the
endpoint returned and the result was serialized) and request-scoped ones after it was
*sent* and the background tasks ran. So the route class runs such a call in a task of
a :class:`HeldCall`'s task group, opened by a FastAPI ``yield`` dependency of the
bridge (function- or request-scoped): the call's root hands the endpoint's result to
the bridge and waits; when FastAPI leaves that stack, the root returns (or raises what
FastAPI saw there) and the call's teardown runs, in the task that set it up.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from functools import partial
from typing import Any

import anyio
from anyio import CancelScope
from anyio.abc import TaskGroup

__all__ = ["HeldCall", "held_call", "held_root"]


class HeldCall:
    """One call run in a task, whose root waits for :meth:`finish` to return."""

    __slots__ = (
        "_done",
        "_error",
        "_final",
        "_has_result",
        "_release",
        "_result",
        "_result_ready",
        "_started",
        "_tg",
        "_thrown",
    )

    def __init__(self, tg: TaskGroup) -> None:
        self._tg = tg
        self._started = False
        self._result_ready = anyio.Event()
        self._release = anyio.Event()
        self._done = anyio.Event()
        self._has_result = False
        self._result: Any = None
        self._error: BaseException | None = None  # the call failed before a result
        self._thrown: BaseException | None = None  # what FastAPI saw afterwards
        self._final: BaseException | None = None  # what the call raised at the end

    async def run(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Start *call* (whose root calls :meth:`hand_over`); return the endpoint's
        result as soon as it has one, or raise what the call raised before."""
        self._started = True
        self._tg.start_soon(self._call, call)
        await self._result_ready.wait()
        if not self._has_result:
            assert self._error is not None
            raise self._error
        return self._result

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except BaseException as exc:
            if self._has_result:
                self._final = exc
            else:
                self._error = exc
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
        finally:
            self._result_ready.set()
            self._done.set()

    async def hand_over(self, result: Any) -> None:
        """In the call's root: pass the result on, wait for FastAPI to be done."""
        self._result = result
        self._has_result = True
        self._result_ready.set()
        await self._release.wait()
        if self._thrown is not None:
            raise self._thrown

    async def finish(self, exc: BaseException | None) -> BaseException | None:
        """FastAPI left the stack (with *exc*): let the call end, wait for it.

        Returns what the call finally raised (its teardown may replace *exc*).
        """
        if not self._started:
            return None
        self._thrown = exc
        self._release.set()
        with CancelScope(shield=True):
            await self._done.wait()
        return self._final


async def held_call() -> AsyncGenerator[HeldCall]:
    """The bridge's FastAPI ``yield`` dependency holding a :class:`HeldCall`.

    Declared ``Depends(held_call, scope="function")`` or request-scoped. Exceptions
    are raised after the task group is closed: one propagating through it would come
    out wrapped in an exception group.
    """
    outcome: BaseException | None = None
    async with anyio.create_task_group() as tg:
        held = HeldCall(tg)
        try:
            yield held
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                tg.cancel_scope.cancel()
                await held.finish(exc)
                outcome = exc
            else:
                final = await held.finish(exc)
                outcome = exc if final is None else final
        else:
            outcome = await held.finish(None)
    if outcome is not None:
        raise outcome


def held_root(
    endpoint: Callable[..., Any],
    parameters: list[Any],
    name: str,
    *,
    kind: str,
    thread: bool,
) -> Callable[..., Any]:
    """A plan root with the endpoint's *parameters* plus the :class:`HeldCall`
    (injected by type as *name*) that calls the endpoint (``kind`` ``"collect"``:
    returns its arguments, for a streaming endpoint), hands the result over and
    returns only when FastAPI is done."""

    async def root(**arguments: Any) -> None:
        held: HeldCall = arguments.pop(name)
        if kind == "collect":
            result: Any = arguments
        elif kind == "ASYNC":
            result = await endpoint(**arguments)
        elif thread:
            result = await anyio.to_thread.run_sync(partial(endpoint, **arguments))
        else:
            result = endpoint(**arguments)
        await held.hand_over(result)

    root.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            *parameters,
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=HeldCall
            ),
        ]
    )
    root.__qualname__ = getattr(endpoint, "__qualname__", root.__qualname__)
    root.__module__ = getattr(endpoint, "__module__", root.__module__)
    return root
