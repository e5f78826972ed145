"""What callables declare, read once and shared by every compile.

A callable's :class:`~anydepends._introspect.Shape` does not depend on the container,
the override set or where the callable is met, so :func:`shape_of` reads it once: a
service compiling hundreds of handlers over one graph reads each dependable once, and
a test suite creating a container per test reads its module-level dependables once.

Process-wide, only functions and classes their module binds by their qualified name
are cached (bound methods through their function): a shape holds the markers it read,
and through them other callables, strongly, and such callables live as long as their
module anyway. Everything else (closures, partials, callable objects) is cached in a
:class:`LocalShapes` the caller owns (the container's). Entries of both are keyed
weakly and go when their callable does (so neither cache keeps a closure's
dependencies alive, and a test suite installing a fresh replacement per test leaves
nothing behind), are checked against the function's ``__code__``, ``__defaults__``,
``__kwdefaults__`` and ``__annotations__`` (so reassigning them is seen), and
process-wide ones are dropped once their module is no longer imported (a sweep
whenever the cache has doubled). Failures are never cached. String annotations
are evaluated at the first read: a module global rebound later is not seen, as with
annotations evaluated at definition time.
"""

from __future__ import annotations

import sys
import types
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from ._introspect import Shape, read

__all__ = ["LocalShapes", "shape_of"]

_SWEEP_FLOOR: Final = 1024  # never sweep a cache smaller than this


class _Entry(weakref.ref[Any]):
    """A cache entry: a weak reference to the callable, its shape, what it was read
    from (to notice reassignments) and the module that binds it (to notice it is
    gone). One object per callable."""

    __slots__ = (
        "annotations",
        "bound",
        "code",
        "defaults",
        "key",
        "kwdefaults",
        "module",
        "namespace",
        "shape",
    )
    key: int  # id() of the callable
    module: str  # its sys.modules key
    namespace: int  # id() of that module's __dict__
    shape: Shape | None  # the shape of the callable itself
    bound: Shape | None  # of its bound methods (``self`` dropped)
    code: object
    defaults: object
    kwdefaults: object
    annotations: object


_CACHE: dict[int, _Entry] = {}  # id(callable) -> entry, while the callable lives
_sweep_at = _SWEEP_FLOOR


class LocalShapes:
    """The shapes of one owner's callables that are not module-level (closures,
    partials, callable objects), keyed weakly by identity: an entry is dropped when
    its callable dies. Callables that cannot be referenced weakly are not cached."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[int, _Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, target: object) -> _Entry | None:
        """The live entry of *target*, if any."""
        entry = self.entries.get(id(target))
        return entry if entry is not None and _fresh(entry, target) else None

    def add(self, target: object) -> _Entry | None:
        """A new entry for *target* (``None``: it cannot be referenced weakly)."""
        entries = self.entries
        try:
            entry = _Entry(target, partial(_forget, cache=entries))
        except TypeError:
            return None
        _fill(entry, target, "", 0)
        entries[entry.key] = entry
        return entry


def shape_of(
    call: Callable[..., Any],
    where: Callable[[], tuple[str, ...]],
    fallback: LocalShapes | None = None,
) -> Shape:
    """*call*'s shape, read once (see the module docstring for what is cached where).

    *where* gives the dependency path to *call*, for error messages only (it is called
    only when reading fails). *fallback* caches callables that are not module-level
    (weakly, by identity).
    """
    target: object = call
    bound = False
    if isinstance(call, types.MethodType) and type(call.__func__) is types.FunctionType:
        target = call.__func__  # bound methods are recreated on every access
        bound = True
    entry = _CACHE.get(id(target))
    if entry is not None and not _fresh(entry, target):
        entry = None
    if entry is None and fallback is not None:
        entry = fallback.get(target)
    if entry is not None:
        found = entry.bound if bound else entry.shape
        if found is not None:
            return found
    shape = read(call, where)
    if entry is None:
        entry = _remember(target)
    if entry is None and fallback is not None:
        entry = fallback.add(target)
    if entry is None:
        pass  # neither module-level nor weakly referenceable: read each time
    elif bound:
        entry.bound = shape
    else:
        entry.shape = shape
    return shape


def _fresh(entry: _Entry, target: object) -> bool:
    """Whether *entry* still describes *target* (a function may be reassigned)."""
    if entry() is not target:
        return False
    if type(target) is not types.FunctionType:
        return True
    function: types.FunctionType = target
    return (
        entry.code is function.__code__
        and entry.defaults is function.__defaults__
        and entry.kwdefaults is function.__kwdefaults__
        and entry.annotations is function.__annotations__
    )


def _module_of(target: object) -> types.ModuleType | None:
    """The imported module that binds *target* (a function or class) by its qualified
    name, if there is one."""
    if type(target) is not types.FunctionType and not isinstance(target, type):
        return None
    module = sys.modules.get(getattr(target, "__module__", None) or "")
    qualified = getattr(target, "__qualname__", None)
    if not isinstance(module, types.ModuleType) or not isinstance(qualified, str):
        return None
    found: object = module
    for name in qualified.split("."):
        namespace = getattr(found, "__dict__", None)  # no __getattr__, no descriptors
        if namespace is None:
            return None
        found = namespace.get(name)
    return module if found is target else None


def _forget(entry: _Entry, cache: dict[int, _Entry] = _CACHE) -> None:
    """Weakref callback: drop the entry of a callable that died (binds the cache: it
    may run while the interpreter shuts down)."""
    if cache.get(entry.key) is entry:
        cache.pop(entry.key, None)  # another thread may have swept it meanwhile


def _remember(target: object) -> _Entry | None:
    """A new entry for *target*, if it is module-level (else ``None``)."""
    global _sweep_at
    module = _module_of(target)
    if module is None:
        return None
    if len(_CACHE) >= _sweep_at:
        _sweep()
        _sweep_at = max(_SWEEP_FLOOR, 2 * len(_CACHE))
    entry = _Entry(target, _forget)
    # The module key _module_of used, and its namespace (to notice a reload).
    _fill(entry, target, getattr(target, "__module__", ""), id(module.__dict__))
    _CACHE[entry.key] = entry
    return entry


def _fill(entry: _Entry, target: object, module: str, namespace: int) -> None:
    entry.key = id(target)
    entry.module = module
    entry.namespace = namespace
    entry.shape = entry.bound = None
    entry.code = getattr(target, "__code__", None)
    entry.defaults = getattr(target, "__defaults__", None)
    entry.kwdefaults = getattr(target, "__kwdefaults__", None)
    entry.annotations = (
        target.__annotations__ if type(target) is types.FunctionType else None
    )


def _sweep() -> None:
    """Drop the entries of callables whose module is no longer imported, so that a
    discarded module (and what its shapes hold) can be collected."""
    modules = sys.modules
    for key, entry in list(_CACHE.items()):
        module = modules.get(entry.module)
        if module is None or id(getattr(module, "__dict__", None)) != entry.namespace:
            _CACHE.pop(key, None)
