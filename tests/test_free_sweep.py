"""Nothing of a call outlives it: failure and cancellation at every loop round.

A call that failed or was cancelled must be freed as soon as the caller lets go of
the outcome, without waiting for the garbage collector: an exception's traceback
reaches every frame it passed through, so a frame there that still keeps the
exception (or an object that keeps it) makes a cycle, and the whole call (its values,
state and frames) stays in memory until a collection (under load, through the
collector's older generations). These sweeps run each shape of call, failing at each
place and cancelled by the caller at each loop round, with the collector off, and
check that the value the call was given is gone afterwards.

On trio the sweep covers ``sequential=True`` only: a concurrent call stops its runner
tasks by cancelling them, and trio delivers a cancellation to a waiting task at once,
inside ``cancel()``, where it is raised and caught; its traceback's frames then link
(``f_back``) to every frame that called ``cancel()``, and the task's outcome keeps them
until a collection. That cycle is trio's, not one of ours.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from anydepends import Container, Depends

from .helpers import prompt

pytestmark = pytest.mark.anyio

FAILS = (None, "leaf", "sibling", "setup", "teardown", "root")
CANCEL_AT = (None, 0, 1, 2, 3, 4, 5, 6)


class Value:
    """What the call is given (its probe tells whether anything still keeps it)."""


class Boom(Exception):
    """The failure a dependency raises on purpose."""


async def rounds(n: int) -> None:
    """Let the event loop run *n* rounds."""
    for _ in range(n):
        await checkpoint()


def shape(kind: str, fail: str | None) -> Callable[..., Coroutine[Any, Any, int]]:
    """A root whose dependencies wait 1-3 rounds and fail where *fail* says:
    ``plain`` (two waiting leaves), ``gens`` (request- and function-scoped ``yield``
    dependencies whose teardowns wait), ``app`` (an app-scoped one, set up by a
    helper task), ``capped`` (one holding a ``max_concurrency`` permit)."""

    async def leaf(value: Value) -> int:
        await rounds(3)
        if fail == "leaf":
            raise Boom("leaf")
        return 1

    async def sibling() -> int:
        await rounds(1)
        if fail == "sibling":
            raise Boom("sibling")
        return 2

    async def gen() -> AsyncIterator[int]:
        await rounds(1)
        if fail == "setup":
            raise Boom("setup")
        try:
            yield 3
        finally:
            await rounds(1)
            if fail == "teardown":
                raise Boom("teardown")

    if kind == "plain":

        async def root(a: int = Depends(leaf), b: int = Depends(sibling)) -> int:
            await rounds(1)
            if fail == "root":
                raise Boom("root")
            return a + b

    elif kind == "gens":

        async def root(
            a: int = Depends(leaf),
            g: int = Depends(gen),
            f: int = Depends(gen, scope="function", use_cache=False),
        ) -> int:
            await rounds(1)
            if fail == "root":
                raise Boom("root")
            return a + g + f

    else:
        lifetime = "app" if kind == "app" else "request"
        cap = 1 if kind == "capped" else None

        async def root(
            a: int = Depends(leaf),
            g: int = Depends(gen, scope=lifetime, max_concurrency=cap),
            b: int = Depends(sibling),
        ) -> int:
            await rounds(1)
            if fail == "root":
                raise Boom("root")
            return a + g + b

    return root


async def outcome(
    container: Container,
    root: Callable[..., Coroutine[Any, Any, int]],
    value: Value,
    entry: str,
    cancel_at: int | None,
) -> str:
    """Call *root* (cancelled by the caller after *cancel_at* rounds): what came of
    it (``failed``: the failure, or a group of failures that happened at once), the
    exception let go of."""
    with anyio.CancelScope() as own:
        async with anyio.create_task_group() as tg:
            if cancel_at is not None:

                async def canceller() -> None:
                    await rounds(cancel_at)
                    own.cancel()

                tg.start_soon(canceller)
            try:
                if entry == "container":
                    await container.call(root, value=value)
                else:
                    async with container.scope() as scope:
                        await scope.call(root, value=value)
            except Exception as exc:
                # The failure, or several that really happened at once.
                group = isinstance(exc, ExceptionGroup) and not exc.split(Boom)[1]
                assert isinstance(exc, Boom) or group, repr(exc)
                return "failed"
            finally:
                tg.cancel_scope.cancel()
    return "cancelled" if own.cancelled_caught else "ok"


@pytest.mark.parametrize("kind", ["plain", "gens", "app", "capped"])
@pytest.mark.parametrize("entry", ["container", "scope"])
async def test_no_failed_or_cancelled_call_outlives_its_outcome(
    kind: str, entry: str, anyio_backend_name: str
) -> None:
    """For each place a dependency (or the root) can fail and each round the caller
    can cancel at: the outcome is the result, the failure or the cancellation, and
    with the collector off nothing keeps the call's value once the call is over
    (concurrent and ``sequential=True`` on asyncio; ``sequential=True`` on trio, see
    the module docstring)."""
    modes = [True] if anyio_backend_name == "trio" else [False, True]
    seen: set[str] = set()
    kept: list[tuple[str | None, int | None, bool, str]] = []
    with prompt(60):
        for sequential in modes:
            for fail in FAILS:
                await sweep(kind, fail, entry, sequential, seen, kept)
    assert kept == []
    assert seen == {"ok", "failed", "cancelled"}


async def sweep(
    kind: str,
    fail: str | None,
    entry: str,
    sequential: bool,
    seen: set[str],
    kept: list[tuple[str | None, int | None, bool, str]],
) -> None:
    """One container, the call cancelled at each round in turn (an app-scoped
    teardown that fails makes the container's exit raise it: expected)."""
    root = shape(kind, fail)
    try:
        async with Container(sequential=sequential) as container:
            for cancel_at in CANCEL_AT:
                gc.disable()
                try:
                    value = Value()
                    probe = weakref.ref(value)
                    got = await outcome(container, root, value, entry, cancel_at)
                    del value
                    await rounds(4)  # hosts and the dispatcher have their turn
                    await anyio.wait_all_tasks_blocked()
                    seen.add(got)
                    if probe() is not None:
                        kept.append((fail, cancel_at, sequential, got))
                finally:
                    gc.enable()
    except Boom:
        assert kind == "app" and fail == "teardown"
