"""How a request runs its plan, paying only for the lifetimes the plan uses.

* ``"call"``: nothing outlives the call (no ``yield`` dependency of request or
  function scope): one ``container.call`` (``call_in`` with the request objects).
* ``"scope"``: request-scoped ``yield`` dependencies: the request's :class:`Scope`
  is entered in the bridge and its exit pushed onto FastAPI's request exit stack, so
  FastAPI closes it after the response is sent and the background tasks ran, with
  the endpoint's exception thrown in, as it does for its own ``yield`` dependencies.
* ``"held"``/``"held-function"``: the call runs in a task held open until FastAPI
  leaves its request (or function) stack (:class:`HeldCall`). Used for
  ``Depends(scope="function")`` ``yield`` dependencies (FastAPI tears them down after
  the response is made, anydepends when the call returns), and for two or more
  request-scoped async ones that can overlap (a scope held across a call sets those
  up in helper tasks, one each; a held call sets them up in its own task).
* ``"scope-held"``: both lifetimes: a scope on the request stack, the call in it held
  on the function stack.

FastAPI's two exit stacks are ``request.scope["fastapi_inner_astack"]`` and
``["fastapi_function_astack"]``, set for every request by ``request_response`` (the
keys FastAPI's own ``yield`` dependencies use, since 0.106 and 0.121).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final, cast

from starlette.requests import Request

from .. import CallKind, Container, Plan, Scope, UsageError
from ._failures import first_failure, is_concurrent_failure
from ._held import HeldCall, held_call
from ._lifetime import active, clone, is_open

if TYPE_CHECKING:
    from ._bridge import Variant

__all__ = ["Runner", "choose_mode", "runner"]

REQUEST_STACK: Final = "fastapi_inner_astack"
FUNCTION_STACK: Final = "fastapi_function_astack"

# values (the bridge's arguments), the request, the context objects -> the result
Runner = Callable[[dict[str, Any], Request, dict[type, Any]], Coroutine[Any, Any, Any]]

_held_context = asynccontextmanager(held_call)


def choose_mode(plan: Plan[Any]) -> str:
    """The mode for *plan* (see the module docstring)."""
    gens = [n for n in plan.nodes[:-1] if n.kind.is_generator]
    function_gens = any(n.lifetime == "function" for n in gens)
    request_gens = [n for n in gens if n.lifetime == "request"]
    if function_gens:
        return "scope-held" if request_gens else "held-function"
    if not request_gens:
        return "call"
    async_gens = sum(1 for n in request_gens if n.kind is CallKind.ASYNC_GEN)
    return "held" if async_gens >= 2 and _may_overlap(plan) else "scope"


def needs_held_root(mode: str) -> bool:
    """Whether the plan's root must hand its result over and wait (HeldCall)."""
    return mode in ("held", "held-function", "scope-held")


def runner(variant: Variant, mode: str) -> Runner:
    """The coroutine function that runs *variant*'s plan for one request."""
    if mode == "call":

        async def run_call(
            values: dict[str, Any], request: Request, context: dict[type, Any]
        ) -> Any:
            return await call(variant, context, values)

        return run_call
    if mode in ("held", "held-function"):
        key = REQUEST_STACK if mode == "held" else FUNCTION_STACK

        async def run_held(
            values: dict[str, Any], request: Request, context: dict[type, Any]
        ) -> Any:
            held = await _stack(request, key).enter_async_context(_held_context())
            context[HeldCall] = held
            return await held.run(partial(call, variant, context, values))

        return run_held
    if mode == "scope":

        async def run_in_scope(
            values: dict[str, Any], request: Request, context: dict[type, Any]
        ) -> Any:
            scope = await _enter_scope(variant, request, context)
            plan = variant.plan_in(scope.container)
            try:
                return await scope.call(plan, **values)
            except BaseExceptionGroup as group:
                raise answer(group, plan) from None

        return run_in_scope

    async def run_scope_held(
        values: dict[str, Any], request: Request, context: dict[type, Any]
    ) -> Any:
        scope = await _enter_scope(variant, request, context)
        held = await _stack(request, FUNCTION_STACK).enter_async_context(
            _held_context()
        )
        plan = variant.plan_in(scope.container)
        # call_in runs a plan as call does (its annotation says callable).
        root = cast("Callable[..., Any]", plan)

        async def run() -> Any:
            try:
                return await scope.call_in({HeldCall: held}, root, **values)
            except BaseExceptionGroup as group:
                raise answer(group, plan) from None

        return await held.run(run)

    return run_scope_held


async def call(
    variant: Variant, context: dict[type, Any], values: dict[str, Any]
) -> Any:
    """Run the plan in one call of the container serving the route, or, when none
    is entered (no lifespan ran), in a lifetime of this request's own."""
    target = active(variant.container)
    try:
        return await _call_plan(target, variant.plan_in(target), context, values)
    except UsageError:
        if await is_open(target):
            raise
    own = clone(variant.container)
    async with own:
        return await _call_plan(own, variant.plan_in(own), context, values)


def answer(group: BaseExceptionGroup[BaseException], plan: Plan[Any]) -> BaseException:
    """What to raise for *group*: the first failure, if it is anydepends' own."""
    if is_concurrent_failure(group):
        return first_failure(group, plan)
    return group


async def _call_plan(
    target: Container,
    plan: Plan[Any],
    context: dict[type, Any],
    values: dict[str, Any],
) -> Any:
    try:
        if context:
            # call_in runs a plan as call does (its annotation says callable).
            root = cast("Callable[..., Any]", plan)
            return await target.call_in(context, root, **values)
        return await target.call(plan, **values)
    except BaseExceptionGroup as group:
        raise answer(group, plan) from None


async def _enter_scope(
    variant: Variant, request: Request, context: dict[type, Any]
) -> Scope:
    """Enter the request's scope; FastAPI's request stack closes it."""
    stack = _stack(request, REQUEST_STACK)
    scope = active(variant.container).scope(context=context)
    try:
        await scope.__aenter__()
    except UsageError:  # not entered (no lifespan ran): a lifetime for this request
        own = clone(variant.container)
        await stack.enter_async_context(own)
        return await stack.enter_async_context(own.scope(context=context))
    stack.push_async_exit(scope.__aexit__)
    return scope


def _stack(request: Request, key: str) -> AsyncExitStack[bool | None]:
    stack: object = request.scope.get(key)
    if not isinstance(stack, AsyncExitStack):
        msg = (
            f"FastAPI did not set request.scope[{key!r}]: this FastAPI version"
            " handles requests differently from the FastAPI 0.165 anydepends.fastapi"
            " was built for"
        )
        raise RuntimeError(msg)
    return cast("AsyncExitStack[bool | None]", stack)


def _may_overlap(plan: Plan[Any]) -> bool:
    """Whether two dependencies of *plan* could run at once (its order is not a
    chain: some node does not depend on the one before it)."""
    nodes = plan.nodes
    return any(
        nodes[i - 1].index not in nodes[i].deps for i in range(1, len(nodes) - 1)
    )
