"""Dependables written with string annotations (``from __future__ import annotations``).

This module is not imported normally: ``test_declarations`` loads a fresh copy of it
per run (``load_future_module``), after putting the marker set in its globals as
``M`` and a fresh log as ``LOG``. Every annotation below is therefore a string that
must be resolved against this module's globals, exactly as in user code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    from .harness import Log, Markers

# Put in this module's globals by the loader before the body runs.
M: Markers = globals()["M"]
LOG: Log = globals()["LOG"]


class Pager:
    def __init__(self, size: int = 10) -> None:
        LOG("Pager", "init")
        self.size = size


def base(n: int) -> int:
    LOG("base", "call")
    return n + 1


async def doubled(b: Annotated[int, M.Depends(base)]) -> int:
    LOG("doubled", "call")
    return b * 2


def scoped(ss: M.SecurityScopes, b: int = M.Depends(base)) -> list[Any]:
    LOG("scoped", "call", tuple(ss.scopes))
    return [ss.scope_str, b]


async def session() -> Any:
    LOG("session", "enter")
    yield "session"
    LOG("session", "exit")


def root(
    d: Annotated[int, M.Depends(doubled)],
    p1: Annotated[Pager, M.Depends()],
    s: Annotated[list[Any], M.Security(scoped, scopes=["read"])],
    k: int,
    p2: Pager = M.Depends(),
    sess: str = M.Depends(session),
) -> dict[str, Any]:
    LOG("root", "call")
    return {"d": d, "size": p1.size, "same": p1 is p2, "s": s, "k": k, "sess": sess}
