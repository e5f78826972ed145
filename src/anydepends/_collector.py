"""Pausing the cyclic garbage collector around one large, allocation-heavy step.

Compiling a large plan, and generating its runner, allocate many long-lived objects
and no garbage cycles. The collector's passes during such a step only rescan the
heap, and its full passes grow with the heap: they took half of a 100,000-node
compile, and a third of a 10,000-node runner's generation. A step that reaches
:data:`LARGE` nodes pauses the collector until it returns; smaller ones (nearly all)
never touch it, and a collector someone else disabled is left alone.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["LARGE", "pause", "resume"]

#: Steps over at least this many nodes pause the collector.
LARGE: Final = 2_000


def pause() -> bool:
    """Disable the collector if it is enabled; return whether this call did."""
    if gc.isenabled():
        gc.disable()
        return True
    return False


def resume(paused: bool) -> None:
    """Undo :func:`pause` (*paused*: what it returned)."""
    if paused:
        gc.enable()
