"""Synthetic dependency graphs for the compiler's scale tests: chains, seeded layered
DAGs and wide fan-in, of any size, built fast; and a stack with little room left.

Each dependable is a copy of one small template function per arity
(``types.FunctionType`` over a shared code object) whose defaults are its
``Depends(...)`` markers, so a 100,000-node graph is built in about a second instead
of compiling 100,000 function definitions. Every dependable has its own qualified
name (``n<i>``; the root is ``root``).
"""

from __future__ import annotations

import contextlib
import random
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from anydepends import Depends

__all__ = ["chain", "fan_in", "layered", "make", "shallow_stack"]

_CODES: dict[int, types.CodeType] = {}


def _code(arity: int) -> types.CodeType:
    """An ``async def f(p0=None, ..., p<arity-1>=None): return 0`` code object."""
    code = _CODES.get(arity)
    if code is None:
        params = ", ".join(f"p{i}=None" for i in range(arity))
        namespace: dict[str, Any] = {}
        exec(f"async def f({params}):\n    return 0", namespace)
        code = _CODES[arity] = namespace["f"].__code__
    return code


_NAMESPACE: dict[str, Any] = {"__name__": "synthetic"}  # not a module: not shared


def make(
    name: str,
    deps: Sequence[Callable[..., Any]],
    module: types.ModuleType | None = None,
) -> Callable[..., Any]:
    """An async dependable named *name* taking ``p<i> = Depends(deps[i])``; bound in
    *module* under its name if one is given (a module-level dependable)."""
    namespace = _NAMESPACE if module is None else module.__dict__
    markers = tuple(Depends(dep) for dep in deps)
    fn = types.FunctionType(_code(len(deps)), namespace, name, markers or None)
    fn.__qualname__ = name
    if module is not None:
        namespace[name] = fn
    return fn


def chain(length: int) -> Callable[..., Any]:
    """A root over a chain of *length* dependencies (``n0`` is the deepest)."""
    below = make("n0", [])
    for i in range(1, length):
        below = make(f"n{i}", [below])
    return make("root", [below])


def layered(
    count: int,
    width: int = 40,
    parents: int = 3,
    seed: int = 0,
    module: types.ModuleType | None = None,
) -> list[Callable[..., Any]]:
    """A seeded layered DAG of *count* dependencies, layers of *width*, each node
    depending on *parents* distinct nodes of the layer below, followed by a root
    (``root``, the last item) over the nodes nobody depends on."""
    rng = random.Random(seed)
    previous: list[Callable[..., Any]] = []
    made: list[Callable[..., Any]] = []
    used: set[int] = set()
    while len(made) < count:
        current = []
        for _ in range(min(width, count - len(made))):
            deps = rng.sample(previous, min(parents, len(previous)))
            used.update(map(id, deps))
            fn = make(f"n{len(made)}", deps, module)
            current.append(fn)
            made.append(fn)
        previous = current
    return [*made, make("root", [fn for fn in made if id(fn) not in used], module)]


def fan_in(count: int) -> Callable[..., Any]:
    """A root with *count* parameters, each a distinct dependency."""
    return make("root", [make(f"n{i}", []) for i in range(count)])


def stack_depth() -> int:
    """How many frames are on the stack right now."""
    depth = 0
    frame: types.FrameType | None = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


@contextlib.contextmanager
def shallow_stack(room: int = 150) -> Iterator[None]:
    """Allow only *room* more frames than are on the stack now: anything that
    recurses once per level of a deep graph raises RecursionError."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(stack_depth() + room)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)
