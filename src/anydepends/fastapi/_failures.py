"""Several dependencies failed at once: answer as FastAPI would.

FastAPI resolves one dependency at a time, so the first dependency (in its order) that
raises decides the response and the others never run. Running them concurrently, two
may fail before either is cancelled; anydepends then raises an exception group, which
Starlette would turn into a 500. The bridge re-raises the failure of the dependency
FastAPI would have reached first instead, so an ``HTTPException`` stays its response.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable
from types import CodeType
from typing import Any, Final, cast

from .. import Plan

__all__ = ["first_failure", "is_concurrent_failure"]

# The message of the group anydepends raises when several dependencies failed at once
# (and only then): a dependency's own exception group is never unwrapped.
_GROUP_MESSAGE: Final = re.compile(r"\d+ dependencies failed at once")


def is_concurrent_failure(group: BaseExceptionGroup[BaseException]) -> bool:
    """Whether *group* is anydepends' "several dependencies failed at once": its
    message, raised by anydepends' own code (not by a dependency)."""
    if _GROUP_MESSAGE.fullmatch(group.message) is None:
        return False
    raised_in = ""
    for frame, _line in traceback.walk_tb(group.__traceback__):
        raised_in = str(frame.f_globals.get("__name__", ""))
    return raised_in.startswith("anydepends.") and not raised_in.startswith(
        "anydepends.fastapi"
    )


def first_failure(
    group: BaseExceptionGroup[BaseException], plan: Plan[Any]
) -> BaseException:
    """The exception of the dependency FastAPI would have run first.

    Each exception is attributed to the innermost dependable of *plan* in its
    traceback; FastAPI runs dependencies in the plan's order (depth first, in
    declaration order), so the lowest node index wins. An exception that cannot be
    attributed ranks after those that can, in the group's order.
    """
    codes = _codes(plan)
    best: BaseException = group.exceptions[0]
    best_rank = (len(plan.nodes), 0)
    for position, exc in enumerate(_flatten(group)):
        index = _node_of(exc, codes)
        rank = (len(plan.nodes) if index is None else index, position)
        if position == 0 or rank < best_rank:
            best, best_rank = exc, rank
    return best


def _flatten(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for member in group.exceptions:
        nested = _as_group(member)
        if nested is not None and is_concurrent_failure(nested):
            found.extend(_flatten(nested))
        else:
            found.append(member)
    return found


def _as_group(exc: BaseException) -> BaseExceptionGroup[BaseException] | None:
    if isinstance(exc, BaseExceptionGroup):
        return cast("BaseExceptionGroup[BaseException]", exc)
    return None


def _node_of(exc: BaseException, codes: dict[CodeType, int]) -> int | None:
    """The plan node whose code raised *exc* (the innermost one in its traceback)."""
    found: int | None = None
    for frame, _line in traceback.walk_tb(exc.__traceback__):
        index = codes.get(frame.f_code)
        if index is not None:
            found = index
    return found


def _codes(plan: Plan[Any]) -> dict[CodeType, int]:
    """The code objects that run each node's callable -> the node's index."""
    codes: dict[CodeType, int] = {}
    for node in plan.nodes[:-1]:
        for code in _code_objects(node.call):
            codes.setdefault(code, node.index)
    return codes


def _code_objects(call: object) -> list[CodeType]:
    """Code that runs when *call* is called: the function, ``__init__``, ``__call__``,
    through ``functools.partial`` and ``__wrapped__`` layers."""
    found: list[CodeType] = []
    layer: object = call
    for _ in range(20):
        while isinstance(layer, functools.partial):
            layer = layer.func
        if isinstance(layer, type):
            candidates: list[object] = [
                getattr(layer, "__init__", None),
                getattr(layer, "__new__", None),
            ]
        else:
            dunder = getattr(type(layer), "__call__", None)  # noqa: B004 - the method
            candidates = [layer, dunder]
        for candidate in candidates:
            code = getattr(_function(candidate), "__code__", None)
            if isinstance(code, CodeType):
                found.append(code)
        wrapped = getattr(layer, "__wrapped__", None)
        if wrapped is None:
            break
        layer = wrapped
    return found


def _function(obj: object) -> Callable[..., Any] | None:
    func = getattr(obj, "__func__", obj)  # bound methods
    return func if callable(func) else None
