"""Helper tasks that host ``yield`` dependencies whose teardown comes later.

An async generator must be torn down in the task that set it up. When that task
cannot be the one that will tear it down (an app-scoped dependency, one set up by a
runner task, one whose scope outlives the calling task's position), a helper task in
the container's task group sets it up, waits, and tears it down when signalled.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio import CancelScope, CapacityLimiter

from ._lowlevel import cancel_scope_marker
from ._plan import Node
from ._teardown import Exit, Host

__all__ = ["hosted_setup"]


async def hosted_setup(
    spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None],
    node: Node,
    kwargs: dict[str, Any],
    exits: list[Exit],
    permit: tuple[CapacityLimiter, object] | None,
) -> Any:
    """Set up *node*'s async generator in a helper task; return its value.

    If the caller gives up while the setup runs, the setup is cancelled and waited
    for; a setup that completed anyway is registered in *exits*, so it is still torn
    down exactly once.
    """
    box = _Box()
    spawn(lambda: _host_generator(node, kwargs, exits, permit, box))
    try:
        await box.ready.wait()
    except BaseException:
        box.abandon()
        with CancelScope(shield=True):
            await box.ready.wait()
        raise
    if box.error is not None:
        raise box.error
    return box.value


class _Box:
    """What a helper task reports about the setup it ran."""

    __slots__ = ("abandoned", "error", "ready", "scope", "value")

    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.scope: CancelScope | None = None
        self.abandoned = False

    def abandon(self) -> None:
        self.abandoned = True
        if self.scope is not None:
            self.scope.cancel()


async def _host_generator(
    node: Node,
    kwargs: dict[str, Any],
    exits: list[Exit],
    permit: tuple[CapacityLimiter, object] | None,
    box: _Box,
) -> None:
    """A helper task: set up one async generator, then wait to tear it down.

    Everything happens inside one cancel scope, so a cancel scope the generator holds
    across its ``yield`` nests properly. The scope may be cancelled only while the
    setup runs (the caller gave up); once set up, only the container's shutdown can
    interrupt the wait for the teardown.
    """
    from ._scheduler import _no_yield

    host = Host()
    try:
        with CancelScope() as scope:
            box.scope = scope
            if box.abandoned:
                scope.cancel()
            baseline = cancel_scope_marker()
            try:
                gen = node.call(**kwargs)
                try:
                    value = await gen.__anext__()
                except StopAsyncIteration:
                    raise _no_yield(node.name, node.path) from None
            except BaseException as exc:
                if permit is not None:
                    permit[0].release_on_behalf_of(permit[1])
                box.error = exc
                raise
            record = Exit(
                node.kind, gen, node.name, host=host, permit=permit, path=node.path
            )
            exits.append(record)
            box.value = value
            box.scope = None  # set up: from now on nobody may cancel it
            box.ready.set()
            try:
                await host.serve([record], baseline)
            finally:
                host.dead = True
    except BaseException as exc:
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            raise  # the container is shutting down
        # Anything else was reported through the box: never fail the container.
    finally:
        box.ready.set()
