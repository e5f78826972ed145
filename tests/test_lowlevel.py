"""The event-loop helpers the scheduler relies on, on both backends."""

# ruff: noqa: ASYNC100 - the scopes here are inspected, not waited in

from __future__ import annotations

import anyio

from anydepends._lowlevel import (
    Drive,
    cancel_scope_marker,
    current_task,
    in_cancelled_scope,
    shield_open_scopes,
)


async def test_cancel_scope_marker_tracks_the_innermost_scope() -> None:
    """The marker is stable in one place, differs inside a cancel scope, and comes
    back when the scope exits (a broken marker would make every check "changed")."""
    before = cancel_scope_marker()
    assert cancel_scope_marker() is before
    with anyio.CancelScope():
        inside = cancel_scope_marker()
        assert inside is not before
        assert cancel_scope_marker() is inside
    assert cancel_scope_marker() is before


async def test_in_cancelled_scope_sees_a_cancelled_scope_only_where_it_matters() -> (
    None
):
    """On trio a task inside a cancelled scope would raise at its next checkpoint;
    asyncio delivers cancellation only to waiting tasks, so it always says no."""
    assert not in_cancelled_scope()
    with anyio.CancelScope() as scope:
        scope.cancel()
        expected = current_task().__class__.__module__.startswith("trio")
        assert in_cancelled_scope() is expected
    assert not in_cancelled_scope()


async def test_shield_open_scopes_shields_the_outermost_scope_above_the_baseline() -> (
    None
):
    """A scope opened above the baseline is shielded in place (outer cancellation no
    longer reaches inside it); at the baseline there is nothing to shield."""
    baseline = cancel_scope_marker()
    assert shield_open_scopes(baseline) is False
    with anyio.CancelScope() as outer:
        with anyio.CancelScope() as inner:
            assert shield_open_scopes(baseline) is True
            outer.cancel()
            await anyio.lowlevel.checkpoint()  # would raise if inner were not shielded
            assert outer.shield or not inner.cancel_called
        assert not inner.cancelled_caught


async def test_drive_finishes_a_stepped_coroutine_in_the_same_task() -> None:
    """A coroutine stepped once with send(None) and suspended is finished by Drive,
    which passes the loop's values and exceptions through unchanged."""
    event = anyio.Event()
    seen: list[object] = []

    async def waits() -> str:
        seen.append(current_task())
        await event.wait()
        seen.append(current_task())
        return "done"

    async def main() -> str:
        coro = waits()
        pending = coro.send(None)
        event.set()
        return await Drive(coro, pending)

    assert await main() == "done"
    assert seen[0] is seen[1] is current_task()
