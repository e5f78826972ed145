"""Pausing the cyclic garbage collector around one large, allocation-heavy step.

Compiling a large plan, and generating its runner, allocate many long-lived objects
and no garbage cycles. The collector's passes during such a step only rescan the
heap, and its full passes grow with the heap: they took half of a 100,000-node
compile, and a third of a 10,000-node runner's generation. A step that reaches
:data:`LARGE` nodes pauses the collector until it returns; smaller ones (nearly all)
never touch it, and a collector someone else disabled is left alone.

Resuming would still leave every object the step allocated in the youngest
generation, to be scanned by the next young pass and again by the next middle one
(a fifth of a 10,000-node compile plus first call). They are long-lived and hold no
garbage cycles, so :func:`resume` moves every tracked object to the oldest
generation at once (``gc.freeze()`` then ``gc.unfreeze()``: two list splices, no
scan), where full passes see them as they see every long-lived object. The cost is
that garbage cycles other code made just before wait for the next full pass. Not
done when the process has frozen objects of its own (``gc.freeze()`` before a
``fork()``): unfreezing would give those back to the collector.
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
    """Undo :func:`pause` (*paused*: what it returned), the step's objects moved to
    the oldest generation (see the module docstring)."""
    if paused:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
