"""The slow paths of running a node, called from generated code.

Generated code (:mod:`._codegen`) emits the common kinds inline (``await f(...)``,
``f(...)``, an async generator set up in place). Everything else is one function here,
used by every plan: worker threads for sync generators, ``max_concurrency`` permits,
where an async generator may be set up (in place, or hosted by a helper task), cancel
scopes of ours for generators whose teardown can wait, app-scoped values, and claims on
shared memos.

Placement of an async generator: it is set up in the calling task only where its
teardown will run in the same task with the cancel-scope stack exactly as the setup
left it; otherwise a helper task hosts it (:mod:`._hosting`).

- function lifetime: torn down when the call returns, in the calling task: in place,
  unless a runner task runs it;
- request lifetime, private scope (``container.call``): in place, unless a function-
  scoped generator set up before it may have left a cancel scope open that is closed
  first (checked with :func:`._backend.mark`);
- request lifetime, held :class:`~anydepends.Scope`: in place only in the scope's own
  task and at the cancel-scope level the scope was entered at (or the last generator
  of the scope left);
- a request-scoped generator that leaves nothing on the cancel-scope stack (no
  ``with`` block, a teardown that cannot wait: read from its code) needs only the
  task: in place in a private scope, and in a held scope's own task at any level;
- app lifetime: always hosted (the container exits in another task, later).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from functools import partial
from types import AsyncGeneratorType
from typing import Any, Final, cast

from anyio import to_thread
from anyio.lowlevel import checkpoint_if_cancelled

from ._backend import UNKNOWN, new_cancel_scope
from ._codeinfo import UNKNOWN as UNKNOWN_GEN
from ._codeinfo import GenInfo, gen_info, gen_info_of_code, sync_gen_may_hold_scope
from ._errors import container_closed_during_call, no_yield
from ._hosting import hosted_setup
from ._introspect import CallKind
from ._lifetime import Lifetime
from ._plan import Node
from ._state import LEVEL_UNSET, MISSING, CallState, Sentinel
from ._teardown import GenExit, Permit, ScopeExit, ThreadExit

__all__ = [
    "HANDED",
    "MISSING",
    "agen_setup",
    "app_value",
    "before_function_gen",
    "capture_level",
    "first_value",
    "limited",
    "note_level",
    "own_scope",
    "place_plain",
    "place_request",
    "sync_as_async",
    "thread_gen_setup",
    "unclaim",
    "wait_claim",
]

OWN_FUNCTION: Final = 1
OWN_REQUEST: Final = 2


#: What generated ``inline`` returns when the call went concurrent while it waited.
HANDED: Final = Sentinel("HANDED")


#: What the engine knows of a sync generator stepped by :func:`sync_as_async`.
SYNC_IN_TASK: Final = GenInfo(teardown_waits=False, may_hold_scope=True)


async def sync_as_async(gen: Generator[Any, None, None]) -> AsyncGenerator[Any, None]:
    """A sync generator run in place that may keep a cancel scope open across its
    ``yield``, stepped as an async generator in the same task (never a thread).

    So it is placed and hosted as async generators are (set up and torn down in one
    task, at one cancel-scope level), by the same code. Every step is the sync
    generator's own: what the teardown throws in is thrown into it, swallowing it or
    yielding twice reads as it would for an async generator.
    """
    try:
        value = next(gen)
    except StopIteration:
        return  # it never yielded: agen_setup reports that
    try:
        yield value
    except GeneratorExit:
        gen.close()
        raise
    except BaseException as exc:  # thrown in by the teardown: pass it on
        try:
            gen.throw(exc)
        except StopIteration:
            return  # it swallowed it
    else:
        try:
            next(gen)
        except StopIteration:
            return
    # It yielded a second time: so does this one, and the teardown reports it.
    try:
        yield None
    finally:
        gen.close()


def first_value(gen: Generator[Any, None, None], node: Node) -> Any:
    """Set up a sync generator: its first (and only) yielded value."""
    try:
        return next(gen)
    except StopIteration:
        raise no_yield(node.name, node.path) from None


async def thread_gen_setup(
    node: Node,
    gen: Generator[Any, None, None],
    exits: list[Any],
    permit: Permit | None = None,
) -> Any:
    """Set up a sync generator in a worker thread and register its teardown.

    The thread cannot be interrupted, so neither is the wait for it: a cancellation
    arriving meanwhile is raised right after the teardown is registered, never
    leaving a set-up generator behind.
    """
    with new_cancel_scope(shield=True):
        value = await to_thread.run_sync(first_value, gen, node)
    record = ThreadExit(node, gen)
    if permit is not None:
        permit.give_to(record)
    exits.append(record)
    await checkpoint_if_cancelled()
    return value


def own_scope(state: CallState, exits: list[Any], bit: int) -> None:
    """Enter a cancel scope of ours before a generator whose teardown can wait.

    One per exit list: it is closed when the teardown reaches it, after everything set
    up inside it, and shielded for that teardown (:func:`._teardown.teardown`).
    """
    holder: Any = state.holder if bit == OWN_REQUEST and state.holder else state
    if holder.owned & bit:
        return
    scope = new_cancel_scope()
    scope.__enter__()
    exits.append(ScopeExit(scope))
    holder.owned |= bit
    state.here = None  # the task's scope stack changed
    if holder is not state:
        note_level(state)  # the scope's generators now nest inside ours


def _in_place(state: CallState, node: Node, main: bool, info: GenInfo) -> bool:
    """Whether *node*'s async generator may be set up in the running task."""
    lifetime = node.lifetime
    if not main or lifetime is Lifetime.APP:
        return False
    if lifetime is Lifetime.FUNCTION:
        return True
    if not info.may_hold_scope and not info.teardown_waits:
        return place_plain(state)
    return place_request(state)


def place_plain(state: CallState) -> bool:
    """Whether a request-scoped async generator that leaves nothing on the cancel-
    scope stack may be set up in place now: where its teardown will run, in the
    private scope's task or the held scope's own (the level does not matter)."""
    holder = state.holder
    if holder is None:
        return True
    # Only generated inline asks, in the calling task: the one supervision recorded.
    task = state.task
    if task is None:
        task = state.rt.current_task()
    return task is holder.host


def place_request(state: CallState) -> bool:
    """Whether a request-scoped async generator may be set up in place now, by the
    task running the call (see the module docstring)."""
    rt = state.rt
    holder = state.holder
    if holder is None:
        level = state.level
        if level is LEVEL_UNSET:
            return True  # no function-scoped generator before it
        here = rt.mark_of(rt.current_task())
    else:
        task = rt.current_task()
        if task is not holder.host:
            return False
        here = state.here  # the calling task's mark, while the call knows it
        if here is None:
            here = state.here = rt.mark_of(task)
        level = holder.level
    return here is not UNKNOWN and here is level


def capture_level(state: CallState) -> None:
    """Before the first function-scoped generator of a private scope: remember the
    level request-scoped generators after it must be set up at."""
    rt = state.rt
    state.level = rt.mark_of(rt.current_task())


def before_function_gen(state: CallState) -> None:
    """A function-scoped generator (sync or async) is about to be set up in the
    running task. A request-scoped one set up after it in this task must not nest
    inside what it may leave open (its teardown comes first): the level before it is
    recorded once, for :func:`place_request`, wherever it is set up and whatever
    order the call runs its dependencies in (the concurrent tail's is not inline's;
    generated code inlines this test)."""
    if state.holder is None and state.level is LEVEL_UNSET:
        capture_level(state)


def note_level(state: CallState) -> None:
    """A request-scoped generator that may hold a cancel scope across its ``yield``
    was set up in place: the next one must nest inside what it left open."""
    holder = state.holder
    if holder is not None:
        rt = state.rt
        holder.level = state.here = rt.mark_of(rt.current_task())


async def agen_setup(
    state: CallState,
    node: Node,
    gen: AsyncGenerator[Any, None],
    main: bool,
    info: GenInfo | None = None,
    permit: Permit | None = None,
) -> Any:
    """Set up an async generator where it belongs, register its teardown; return the
    value it yields. *info*: what its code says (read from the generator if None)."""
    exits = state.exits_for(node.lifetime)
    if info is None:
        info = gen_info_of_code(cast("AsyncGeneratorType[Any, None]", gen).ag_code)
    if not _in_place(state, node, main, info):
        rt = state.rt
        return await hosted_setup(
            rt.spawn, rt.hosts, node, lambda: gen, exits, permit, _keeper(state, node)
        )
    request = node.lifetime is Lifetime.REQUEST
    if not request:
        before_function_gen(state)
    if info.teardown_waits:
        own_scope(state, exits, OWN_REQUEST if request else OWN_FUNCTION)
    try:
        value = await gen.__anext__()
    except StopAsyncIteration:
        raise no_yield(node.name, node.path) from None
    if permit is None:
        exits.append(node)  # the plain entry: its node, then the generator
        exits.append(gen)
    else:
        exits.append(GenExit(node, gen, permit))
    if info.may_hold_scope:
        if request:
            note_level(state)
        else:
            state.here = None  # the task's cancel-scope stack may have changed
    return value


def _keeper(state: CallState, node: Node) -> Callable[[Any], None] | None:
    """Where the value of a hosted setup that completed as its call gave up goes:
    the memo the call would have written it to (the container's, or its held
    scope's), so nothing sets it up twice."""
    if node.lifetime is Lifetime.APP:
        if not node.use_cache:
            return None
        return partial(_kept, state, state.rt.app_memo, node.key)
    claim_keys = state.runner.claim_keys
    key = None if claim_keys is None else claim_keys[node.index]
    if key is None:
        return None
    assert state.memo is not None
    return partial(_kept, state, state.memo, key)


def _kept(state: CallState, memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Store *value* as the call would have, had it not given up; wake its waiters."""
    if key not in memo or memo[key] is state:
        memo[key] = value
    state.wake(key)


async def limited(
    state: CallState,
    node: Node,
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    main: bool,
) -> Any:
    """Run a node under its ``max_concurrency`` permit.

    A ``yield`` dependency keeps the permit until its teardown (its exit entry owns
    it); every other kind gives it back when its call returns. Released exactly once.
    """
    assert node.limit is not None
    permit = Permit(state.rt.limiter(node.limit))
    await permit.acquire()
    try:
        kind = node.kind
        if kind is CallKind.ASYNC:
            return await fn(**kwargs)
        if kind is CallKind.SYNC:
            if node.thread:
                return await to_thread.run_sync(partial(fn, **kwargs))
            return fn(**kwargs)
        if kind is CallKind.ASYNC_GEN:
            gen = fn(**kwargs)
            info = gen_info(node.call)
            known = None if info is UNKNOWN_GEN else info
            return await agen_setup(state, node, gen, main, known, permit)
        exits = state.exits_for(node.lifetime)
        gen = fn(**kwargs)
        if node.thread:
            return await thread_gen_setup(node, gen, exits, permit)
        if sync_gen_may_hold_scope(node.call):
            adapted = sync_as_async(gen)
            return await agen_setup(state, node, adapted, main, SYNC_IN_TASK, permit)
        if node.lifetime is Lifetime.FUNCTION:
            before_function_gen(state)
        value = first_value(gen, node)
        state.here = None  # it may hold a cancel scope (as generated code says)
        exits.append(GenExit(node, gen, permit))
        return value
    finally:
        if permit.owner is None:
            permit.release()


async def app_value(state: CallState, node: Node, main: bool) -> Any:
    """An app-scoped value: from the container's memo, or created once.

    Concurrent first uses from many calls compute it once: the first claims the key,
    the others wait; if it fails, the next one tries.
    """
    rt = state.rt
    memo = rt.app_memo
    key = node.key
    if node.alias:
        found = memo.get(key, MISSING)
        if found is MISSING or type(found) is CallState:
            return state.rs()[node.deps[0]]
        return found
    if not node.use_cache:
        value = await _create(state, node, main)
        if node.seeds and key not in memo:
            memo[key] = value
        return value
    while True:
        found = memo.get(key, MISSING)
        if found is MISSING:
            return await _claim_and_create(state, memo, key, node, main)
        if type(found) is CallState:
            await found.wait(key)
            continue
        return found


async def _claim_and_create(
    state: CallState, memo: dict[Any, Any], key: Any, node: Node, main: bool
) -> Any:
    """Claim *key* in *memo*, compute it, store it and wake its waiters; on failure
    give the claim up (a waiter then tries)."""
    memo[key] = state
    try:
        value = await _create(state, node, main)
    except BaseException:
        unclaim(state, memo, key)
        raise
    memo[key] = value
    state.wake(key)
    return value


async def _create(state: CallState, node: Node, main: bool) -> Any:
    if not state.rt.open:
        raise container_closed_during_call(node.name)
    compute = state.runner.compute_fn(node.index)
    return await compute(state.rs(), state.values, state, main)


async def wait_claim(
    state: CallState, memo: dict[Any, Any], key: Any, node: Node, main: bool
) -> Any:
    """Wait for another call computing *key* of a shared memo; if it gives up,
    compute it here (an alias takes its twin's value instead).

    Inline (*main*) may come here before its supervision opened (see ``_codegen``):
    it opens now, as the call may suspend (and go concurrent) from here.
    """
    if main and state.task is None and state.runner.concurrent:
        state.rt.supervision.open(state)
    while True:
        found = memo.get(key, MISSING)
        if type(found) is CallState:
            await found.wait(key)
            continue
        if found is not MISSING:
            return found
        if node.alias:
            return state.rs()[node.deps[0]]
        return await _claim_and_create(state, memo, key, node, main)


def unclaim(state: CallState, memo: dict[Any, Any], key: Any) -> None:
    """Give up a claim (the computation failed): waiters will try themselves."""
    if memo.get(key) is state:
        del memo[key]
    state.wake(key)
