# ruff: noqa: I002  (annotations must be real objects: the apps are built in closures)
"""Edges of the route class: cancelled requests, many override sets, errors that are
not what they look like, and how several failures are attributed."""

import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI, HTTPException

from anydepends import Container
from anydepends.fastapi import ConcurrentRoute, lifespan
from anydepends.fastapi._failures import first_failure

from .harness import Request, RouteClass, app_with, client, route_classes, send


def make_stuck(route_class: RouteClass, log: list[str], scope: str | None) -> FastAPI:
    """An endpoint that waits for ever, over yield dependencies of *scope*."""
    app = app_with(route_class)
    entered = anyio.Event()

    def gen(name: str) -> Any:
        async def dependency() -> AsyncIterator[str]:
            log.append(f"{name} setup")
            try:
                yield name
            except BaseException as exc:
                log.append(f"{name} saw {type(exc).__name__}")
                raise
            finally:
                log.append(f"{name} teardown")

        return dependency

    a, b = gen("a"), gen("b")

    @app.get("/")
    async def endpoint(
        x: Annotated[str, Depends(a, scope=scope)],
        y: Annotated[str, Depends(b, scope=scope)],
    ) -> str:
        entered.set()
        await anyio.sleep_forever()
        return "never"

    app.state.entered = entered
    return app


@pytest.mark.parametrize("scope", ["request", "function"])
async def test_a_cancelled_request_tears_everything_down(scope: str) -> None:
    """A request cancelled while its endpoint waits (the client went away): every
    ``yield`` dependency that was set up sees the cancellation and is torn down
    once, as in plain FastAPI; nothing hangs."""
    for name, route_class in route_classes().items():
        log: list[str] = []
        app = make_stuck(route_class, log, scope)
        async with client(app) as http, anyio.create_task_group() as tg:
            tg.start_soon(send, http, Request())
            with anyio.fail_after(10):
                await app.state.entered.wait()
            tg.cancel_scope.cancel()
        cancelled = anyio.get_cancelled_exc_class().__name__
        assert sorted(log) == sorted(
            [
                *("a setup", "b setup"),
                *(f"a saw {cancelled}", f"b saw {cancelled}"),
                *("a teardown", "b teardown"),
            ]
        ), (name, log)


async def test_override_sets_are_remembered_within_a_bound() -> None:
    """Each distinct ``app.dependency_overrides`` set gets its bridge once; a test
    suite that builds fresh overrides for every test does not grow the route's
    memory without bound, and an evicted set is rebuilt when it comes back."""

    async def value() -> int:
        return 0

    app = app_with(ConcurrentRoute(Container()))

    @app.get("/")
    async def endpoint(v: Annotated[int, Depends(value)]) -> int:
        return v

    replacements = []
    for n in range(40):

        async def replacement(n: int = n) -> int:
            return n

        replacements.append(replacement)
    async with client(app) as http:
        for n, replacement in enumerate(replacements):
            app.dependency_overrides[value] = replacement
            assert (await send(http, Request())).body == n
        app.dependency_overrides[value] = replacements[0]
        assert (await send(http, Request())).body == 0
        app.dependency_overrides.clear()
        assert (await send(http, Request())).body == 0


async def test_a_usage_error_of_the_application_is_not_a_missing_lifespan() -> None:
    """A ``UsageError`` a dependency raises (here: it calls a container nobody
    entered) is the application's error, also when the route's container is
    entered: it propagates, nothing is run a second time."""
    calls: list[str] = []
    elsewhere = Container()

    async def misuse() -> int:
        calls.append("misuse")
        return await elsewhere.call(lambda: 1)

    container = Container()
    app = FastAPI(lifespan=lifespan(container))
    app.router.route_class = ConcurrentRoute(container)

    @app.get("/")
    async def endpoint(v: Annotated[int, Depends(misuse)]) -> int:
        return v

    async with client(app, lifespan=True) as http:
        reply = await send(http, Request())
    assert reply.exc is not None
    assert reply.exc[0] == "UsageError"
    assert calls == ["misuse"]


def _raising(exc: BaseException) -> Any:
    def dependency() -> None:
        raise exc

    return dependency


def test_failures_are_attributed_through_their_tracebacks() -> None:
    """The group's members are ranked by the plan position of the dependable whose
    code raised them (a class's ``__init__``, a partial's function, a nested
    anydepends group flattened); one raised elsewhere ranks last."""

    class Early:
        def __init__(self) -> None:
            raise HTTPException(401, "early")

    def late(n: int = 0) -> None:
        raise HTTPException(403, "late")

    late_partial = functools.partial(late, n=1)

    async def root(
        a: Annotated[None, Depends(Early)], b: Annotated[None, Depends(late_partial)]
    ) -> None:
        return None

    plan = Container().compile(root)

    def caught(call: Any) -> BaseException:
        try:
            call()
        except BaseException as exc:
            return exc
        raise AssertionError

    early, later = caught(Early), caught(late_partial)
    stranger = HTTPException(500, "elsewhere")
    inner = BaseExceptionGroup("2 dependencies failed at once", [later, early])
    group = BaseExceptionGroup("2 dependencies failed at once", [stranger, inner])
    assert first_failure(group, plan) is stranger  # the nested group is not ours
    assert (
        first_failure(
            BaseExceptionGroup(
                "2 dependencies failed at once", [stranger, later, early]
            ),
            plan,
        )
        is early
    )
    assert (
        first_failure(
            BaseExceptionGroup("2 dependencies failed at once", [stranger]), plan
        )
        is stranger
    )


async def test_no_lifespan_and_entered_container_serve_alike() -> None:
    """Served without the container entered (a lifetime per request) or with it,
    request-scoped ``yield`` dependencies in every lifetime mode answer alike."""

    async def gen() -> AsyncIterator[int]:
        yield 1

    async def gen2() -> AsyncIterator[int]:
        yield 2

    def make(route_class: RouteClass) -> FastAPI:
        app = app_with(route_class)

        @app.get("/one")
        async def one(a: Annotated[int, Depends(gen)]) -> int:
            return a

        @app.get("/two")
        async def two(
            a: Annotated[int, Depends(gen)], b: Annotated[int, Depends(gen2)]
        ) -> int:
            return a + b

        @app.get("/function")
        async def function(
            a: Annotated[int, Depends(gen, scope="function")],
            b: Annotated[int, Depends(gen2)],
        ) -> int:
            return a + b

        return app

    requests = [Request(path="/one"), Request(path="/two"), Request(path="/function")]
    for entered in (False, True):
        container = Container()
        app = make(ConcurrentRoute(container))
        async with client(app) as http:
            if entered:
                async with container:
                    replies = [await send(http, r) for r in requests]
            else:
                replies = [await send(http, r) for r in requests]
        assert [r.body for r in replies] == [1, 3, 3], entered
