"""The state of one call, as the generated code and the engine share it.

A :class:`CallState` is created per call and is everything the generated code of a
plan (:mod:`._codegen`) reads besides its constants: results, values, context objects,
the exit lists, the memo. It is also the call's *claim*: while a call computes a
``use_cache`` key of a shared memo (a :class:`~anydepends.Scope`'s, or the app
memo), the memo maps the key to the call's state, and other calls wait on it
(:meth:`wait`) instead of computing the key again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import anyio

from ._dispatch import NO_TICKET
from ._lifetime import Lifetime

if TYPE_CHECKING:
    from ._codegen import Runner
    from ._runtime import Runtime

__all__ = ["LEVEL_UNSET", "MISSING", "CallState", "Sentinel"]

#: ``CallState.level`` before anything set it (never equal to a mark).
LEVEL_UNSET: Final = object()


class Sentinel:
    """A named marker value."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: No value: a memo lookup that found nothing (its class marks that in generated
#: code), a result not computed yet.
MISSING: Final = Sentinel("MISSING")


class CallState:
    """One call in progress (see the module docstring)."""

    __slots__ = (
        "at",
        "claims",
        "context",
        "handed",
        "here",
        "holder",
        "inline",
        "level",
        "level0",
        "memo",
        "need",
        "out",
        "owned",
        "results",
        "rt",
        "runner",
        "sup",
        "task",
        "ticket",
        "values",
        "waiters",
        "xf",
        "xr",
    )

    # The root's result, left by inline when it returns (_call.run reads it only
    # then: never before it is set, so __init__ spends nothing on it).
    out: Any

    def __init__(
        self,
        runner: Runner,
        values: dict[str, Any],
        context: dict[type, Any],
        rt: Runtime,
        memo: dict[Any, Any] | None = None,
        xr: list[Any] | None = None,
        holder: Any = None,
    ) -> None:
        self.runner = runner
        # Results by node index, for the slow paths and the concurrent tail only
        # (inline keeps them in locals): allocated by rs() on first use.
        self.results: list[Any] | None = None
        self.values = values
        self.context = context
        self.rt = rt
        self.memo = memo
        self.xf: list[Any] | None = None
        self.xr = xr
        # The Scope whose request lifetime this call resolves in (None: a private
        # one, torn down by the call itself).
        self.holder = holder
        # The call's generated inline, once start() made it (a newcomer in a scope
        # this call is alone in reads what it computed from its frame: _lazymemo).
        self.inline: Any = None
        # The call's Resolution once it went concurrent (generated code tests it
        # for truth: False until then).
        self.handed: Any = False
        self.at = -1  # the node inline may wait in (see _codegen.QUIET)
        # Where the dispatcher keeps this call's registration (_dispatch): only
        # while the calling task waits in node `at`.
        self.ticket = NO_TICKET
        self.need: list[bool] | None = None
        self.waiters: dict[Any, anyio.Event] | None = None
        # Keys of a held scope's memo this call claimed while it waited in them.
        self.claims: list[Any] | None = None
        self.level: object = LEVEL_UNSET  # where request generators may be set up
        self.owned = 0  # exit lists that already have a cancel scope of ours
        self.task: Any = None  # the calling task, once supervision opened (_backend)
        self.level0: Any = None
        # The calling task's cancel-scope mark now, while the call knows it (None:
        # look it up): where a held scope's generators may be set up in place.
        self.here: Any = None
        self.sup: Any = None

    def rs(self) -> list[Any]:
        """The results list (allocated on first use; ``MISSING``: not computed)."""
        results = self.results
        if results is None:
            results = self.results = [MISSING] * len(self.runner.plan.nodes)
        return results

    # -- claims ---------------------------------------------------------------------
    def claim(self, key: Any) -> None:
        """The calling task waits while computing *key*: claim it, so other calls in
        the scope wait for this one instead of computing it too (generated code
        claims lazily: only a computation that waits can be seen by another call)."""
        memo = self.memo
        if memo is not None and key not in memo:
            memo[key] = self
            claims = self.claims
            if claims is None:
                claims = self.claims = []
            claims.append(key)

    def release_claims(self) -> None:
        """The call failed: give up the claims it still holds (waiters then try
        themselves)."""
        memo = self.memo
        claims = self.claims
        if memo is None or not claims:
            return
        for key in claims:
            if memo.get(key) is self:
                del memo[key]
            self.wake(key)
        claims.clear()

    async def wait(self, key: Any) -> None:
        """Wait until this call stored (or gave up) *key*."""
        waiters = self.waiters
        if waiters is None:
            waiters = self.waiters = {}
        event = waiters.get(key)
        if event is None:
            event = waiters[key] = anyio.Event()
        await event.wait()

    def wake(self, key: Any) -> None:
        """Wake the calls waiting for *key* (it was stored, or given up)."""
        waiters = self.waiters
        if waiters:
            event = waiters.pop(key, None)
            if event is not None:
                event.set()

    def exits_for(self, lifetime: Lifetime) -> list[Any]:
        """The exit list of a lifetime: the call's, the scope's or the container's."""
        if lifetime is Lifetime.FUNCTION:
            xf = self.xf
            if xf is None:
                xf = self.xf = []
            return xf
        if lifetime is Lifetime.REQUEST:
            xr = self.xr
            if xr is None:
                xr = self.xr = []
            return xr
        return self.rt.app_exits
