"""The plan cache: compiled plans and their generated runners, per override set.

A container compiles each root once per *override set* (the contents of
``container.overrides``) and keeps the result, so changing overrides never costs
introspection per call. The sets seen most recently are kept (a bounded LRU): a test
suite that installs a fresh replacement in a loop leaves at most :data:`MAX_SETS`
sets of plans behind, never one per replacement.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._codegen import FRESH, HELD, Runner, build_runner

if TYPE_CHECKING:
    from ._plan import Plan
    from ._runtime import Runtime

__all__ = ["MAX_SETS", "Entry", "PlanCache"]

#: How many override sets keep their plans.
MAX_SETS: Final = 16
#: How many pinned plans (compiled with explicit overrides or a mode) are kept.
MAX_PINNED: Final = 256


class Entry:
    """One compiled root: its plan and (built on first use) its runners."""

    __slots__ = ("fresh", "held", "plan", "runtime", "sequential", "uses_scope")

    def __init__(self, plan: Plan[Any], runtime: Runtime, scope_type: type) -> None:
        self.plan = plan
        self.runtime = runtime
        # A plan that injects the Scope object itself needs a real one, even for
        # container.call: it runs in a private Scope with the HELD runner.
        self.uses_scope = scope_type in plan.context_types
        # The plan's own mode (a pinned plan), else the container's.
        mode = plan.sequential
        self.sequential = runtime.sequential if mode is None else mode
        self.fresh: Runner | None = None
        self.held: Runner | None = None

    def fresh_runner(self) -> Runner:
        runner = self.fresh
        if runner is None:
            runner = self.fresh = build_runner(self.plan, FRESH, self.runtime)
        return runner

    def held_runner(self) -> Runner:
        runner = self.held
        if runner is None:
            runner = self.held = build_runner(self.plan, HELD, self.runtime)
        return runner


# One override set's entries: by root, by plan id, and the replacements it holds.
_Set = tuple[dict[Hashable, "Entry"], dict[int, "Entry"], Any]


class PlanCache:
    """Entries by root (and by plan object), for the current override set."""

    __slots__ = (
        "_compile",
        "_runtime",
        "_scope_type",
        "_sets",
        "by_plan",
        "current",
        "pinned",
        "pinned_by_plan",
    )

    def __init__(
        self,
        compile: Callable[[Callable[..., Any], tuple[Any, ...]], Plan[Any]],
        runtime: Runtime,
        scope_type: type,
    ) -> None:
        self._compile = compile
        self._runtime = runtime
        self._scope_type = scope_type
        self.current: dict[Hashable, Entry] = {}
        self.by_plan: dict[int, Entry] = {}
        self._sets: OrderedDict[Hashable, _Set] = OrderedDict()
        self._sets[frozenset()] = (self.current, self.by_plan, None)
        self.pinned: OrderedDict[Hashable, Entry] = OrderedDict()
        self.pinned_by_plan: dict[int, Entry] = {}

    def switch(self, overrides: Mapping[Any, Any]) -> None:
        """The override set changed: use (or start) the entries of the new one."""
        key = frozenset((original, id(new)) for original, new in overrides.items())
        found: _Set | None = self._sets.get(key)
        if found is None:
            # The replacements are kept alive with their plans, so an id in a key
            # is never reused while the key exists.
            found = ({}, {}, dict(overrides))
            self._sets[key] = found
            while len(self._sets) > MAX_SETS:
                self._sets.popitem(last=False)
        else:
            self._sets.move_to_end(key)
        self.current, self.by_plan = found[0], found[1]

    def clear(self) -> None:
        """Forget every plan (the container's context types changed)."""
        for current, by_plan, _ in self._sets.values():
            current.clear()
            by_plan.clear()
        self.pinned.clear()
        self.pinned_by_plan.clear()

    def pin(self, key: Hashable, build: Callable[[], Plan[Any]]) -> Entry:
        """The pinned entry for *key* (compiled with *build* if needed); the most
        recent :data:`MAX_PINNED` are kept."""
        found = self.pinned.get(key)
        if found is None:
            found = Entry(build(), self._runtime, self._scope_type)
            self.pinned[key] = found
            self.pinned_by_plan[id(found.plan)] = found
            while len(self.pinned) > MAX_PINNED:
                _, old = self.pinned.popitem(last=False)
                self.pinned_by_plan.pop(id(old.plan), None)
        else:
            self.pinned.move_to_end(key)
        return found

    def entry(
        self, key: Hashable, fn: Callable[..., Any], extra: tuple[Any, ...]
    ) -> Entry:
        """The entry for *key* (compiling *fn* with *extra* dependencies if needed)."""
        found = self.current.get(key)
        if found is None:
            found = self.new_entry(fn, extra)
            self.current[key] = found
        return found

    def new_entry(self, fn: Callable[..., Any], extra: tuple[Any, ...]) -> Entry:
        """Compile *fn* into a new entry (not cached under a root key)."""
        entry = Entry(self._compile(fn, extra), self._runtime, self._scope_type)
        self.by_plan[id(entry.plan)] = entry
        return entry

    def of_plan(self, plan: Plan[Any]) -> Entry | None:
        """The entry of a plan this cache compiled under the current override set
        (or pinned: it runs as compiled wherever it is called)."""
        found = self.by_plan.get(id(plan)) or self.pinned_by_plan.get(id(plan))
        return found if found is not None and found.plan is plan else None
