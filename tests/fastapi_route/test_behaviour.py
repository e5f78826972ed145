# ruff: noqa: I002  (annotations must be real objects: the apps are built in closures)
"""The same apps through plain FastAPI and through ``ConcurrentRoute`` (concurrent and
sequential): status codes, bodies, headers, teardown logs and
``app.dependency_overrides`` agree, on asyncio and trio."""

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, ClassVar

import anyio
import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Response,
    Security,
)
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, field_serializer

from .harness import (
    Reply,
    Request,
    RouteClass,
    app_with,
    client,
    route_classes,
    send,
    serve,
)

Log = list[str]


async def compare(
    make: Callable[[RouteClass, Log], FastAPI],
    requests: list[Request],
    *,
    headers: tuple[str, ...] = (),
) -> dict[str, tuple[list[Reply], Log]]:
    """Serve *requests* with each route class; every run must equal plain FastAPI's.

    Replies must be equal (a 422 listing each error once). Per request, the
    sequential route class logs exactly what FastAPI logs; the concurrent one the
    same entries in any order, plus, for a failed request, what dependencies that
    were already running when the failure came logged (FastAPI never starts them).
    """
    runs: dict[str, tuple[list[Reply], Log]] = {}
    slices: dict[str, list[Log]] = {}
    for name, route_class in route_classes().items():
        log: Log = []
        app = make(route_class, log)
        replies: list[Reply] = []
        per_request: list[Log] = []
        async with client(app) as http:
            for request in requests:
                mark = len(log)
                replies.append((await send(http, request, headers)).normalised())
                per_request.append(log[mark:])
        runs[name] = (replies, log)
        slices[name] = per_request
    expected_replies = runs["fastapi"][0]
    assert runs["sequential"] == runs["fastapi"]
    assert runs["concurrent"][0] == expected_replies
    for reply, expected, actual in zip(
        expected_replies, slices["fastapi"], slices["concurrent"], strict=True
    ):
        if reply.status is not None and reply.status < 400:
            assert Counter(actual) == Counter(expected), (reply, expected, actual)
        else:
            extra = Counter(actual)
            extra.subtract(Counter(expected))
            assert min(extra.values(), default=0) >= 0, (reply, expected, actual)
    return runs


# -- teardown order, exceptions thrown in, background tasks, the sub-response ---------


def make_shop(route_class: RouteClass, log: Log) -> FastAPI:
    app = app_with(route_class)

    async def db() -> AsyncIterator[str]:
        log.append("db setup")
        try:
            yield "db"
        except Exception as exc:
            log.append(f"db rollback {type(exc).__name__}")
            raise
        else:
            log.append("db commit")
        finally:
            log.append("db close")

    def cache() -> Iterator[str]:
        log.append("cache setup")
        yield "cache"
        log.append("cache close")

    async def user(x_user: str = Header(), store: str = Depends(db)) -> str:
        if x_user == "nobody":
            raise HTTPException(401, "who?")
        return f"{x_user} via {store}"

    @app.get("/items/{item_id}")
    async def read(
        item_id: int,
        background_tasks: BackgroundTasks,
        response: Response,
        who: str = Depends(user),
        c: str = Depends(cache),
    ) -> dict[str, Any]:
        background_tasks.add_task(log.append, "background task")
        response.headers["x-served-by"] = who
        if item_id == 404:
            raise HTTPException(404, "no such item")
        if item_id == 201:
            response.status_code = 201
        return {"item": item_id, "who": who, "cache": c}

    return app


async def test_teardown_background_tasks_and_sub_response() -> None:
    """Setup, background task, commit, close in FastAPI's order (teardown after the
    response and its background tasks); an ``HTTPException`` from the endpoint or
    from a dependency is thrown in at ``yield`` (rollback) and stays its response;
    headers and status set on the injected ``Response`` are merged."""
    runs = await compare(
        make_shop,
        [
            Request(path="/items/1", headers={"x-user": "ada"}),
            Request(path="/items/201", headers={"x-user": "ada"}),
            Request(path="/items/404", headers={"x-user": "ada"}),
            Request(path="/items/1", headers={"x-user": "nobody"}),
        ],
        headers=("x-served-by",),
    )
    replies, log = runs["fastapi"]
    assert [r.status for r in replies] == [200, 201, 404, 401]
    assert replies[0].headers == {"x-served-by": "ada via db"}
    assert log == [
        *("db setup", "cache setup", "background task", "cache close"),
        *("db commit", "db close"),
        *("db setup", "cache setup", "background task", "cache close"),
        *("db commit", "db close"),
        *("db setup", "cache setup", "db rollback HTTPException", "db close"),
        *("db setup", "db rollback HTTPException", "db close"),
    ]


async def test_invalid_request_values_answer_before_any_dependency_runs() -> None:
    """A deliberate difference: FastAPI runs the dependencies that do not need the
    invalid value, then answers 422 (their ``yield`` sees the
    ``RequestValidationError``); the route class has FastAPI validate every request
    value first, so on a 422 no dependency runs at all. The responses are equal."""
    requests = [
        Request(path="/items/1"),
        Request(path="/items/one", headers={"x-user": "a"}),
    ]
    for name, route_class in route_classes().items():
        log: Log = []
        replies = await serve(
            lambda rc, log=log: make_shop(rc, log), route_class, requests
        )
        assert [r.status for r in replies] == [422, 422]
        assert replies[0].body["detail"][0]["loc"] == ["header", "x-user"]
        if name == "fastapi":
            assert (
                log
                == [
                    *("db setup", "cache setup"),
                    *("db rollback RequestValidationError", "db close"),
                ]
                * 2
            )
        else:
            assert log == [], name


# -- app.dependency_overrides ---------------------------------------------------------


async def api_key(x_api_key: Annotated[str, Header()]) -> str:
    return x_api_key


async def account(key: Annotated[str, Depends(api_key)]) -> str:
    return f"account of {key}"


async def fake_key() -> str:
    return "test-key"


async def fake_account(plan: str = "basic") -> str:
    return f"fake account ({plan})"


def make_overridable(route_class: RouteClass, log: Log) -> FastAPI:
    app = app_with(route_class)
    router = APIRouter()

    @router.get("/me")
    async def me(who: Annotated[str, Depends(account)]) -> str:
        return who

    @router.get("/ping")
    async def ping() -> str:
        return "pong"

    app.include_router(router, prefix="/v1", dependencies=[Depends(api_key)])
    app.include_router(router, prefix="/v2")

    @app.get("/set/{what}")
    async def set_overrides(what: str) -> str:
        app.dependency_overrides.clear()
        if what in ("key", "both"):
            app.dependency_overrides[api_key] = fake_key
        if what in ("account", "both"):
            app.dependency_overrides[account] = fake_account
        return what

    return app


async def test_overrides_are_read_per_request_with_their_own_parameters() -> None:
    """Overriding a dependency that declares a required header makes the header
    optional (the override's own parameters count, as in FastAPI), also for
    ``include_router(dependencies=...)``; an override with a query parameter of its
    own takes it; clearing the overrides brings the 422 back."""
    sequence = [
        Request(path="/v1/me"),
        Request(path="/v2/me", headers={"x-api-key": "k"}),
        Request(path="/set/key"),
        Request(path="/v1/me"),
        Request(path="/v1/ping"),
        Request(path="/set/account"),
        Request(path="/v2/me", params={"plan": "pro"}),
        Request(path="/v1/me"),
        Request(path="/v1/ping", headers={"x-api-key": "k"}),
        Request(path="/set/both"),
        Request(path="/v1/me"),
        Request(path="/set/none"),
        Request(path="/v1/me"),
        Request(path="/v2/ping"),
    ]
    runs = await compare(make_overridable, sequence)
    replies, _ = runs["fastapi"]
    assert [r.status for r in replies] == [
        422, 200, 200, 200, 200, 200, 200, 422, 200, 200, 200, 200, 422, 200
    ]  # fmt: skip
    assert replies[3].body == "account of test-key"
    assert replies[6].body == "fake account (pro)"


# -- route-, router- and app-level dependencies ---------------------------------------


def make_levels(route_class: RouteClass, log: Log) -> FastAPI:
    def counted(name: str) -> Callable[[], Any]:
        async def dependency() -> AsyncIterator[str]:
            log.append(f"{name} setup")
            yield name
            log.append(f"{name} teardown")

        dependency.__name__ = name
        return dependency

    shared = counted("shared")
    app_level, include_level, router_level = (
        counted("app"),
        counted("include"),
        counted("router"),
    )
    app = app_with(route_class, dependencies=[Depends(app_level), Depends(shared)])
    router = APIRouter(dependencies=[Depends(router_level), Depends(shared)])

    @router.get("/levels", dependencies=[Depends(shared)])
    async def levels(value: str = Depends(shared)) -> str:
        log.append("endpoint")
        return value

    app.include_router(router, dependencies=[Depends(include_level)])

    @app.get("/direct", dependencies=[Depends(shared)])
    async def direct(value: str = Depends(shared)) -> str:
        log.append("endpoint")
        return value

    return app


async def test_dependencies_of_every_level_share_one_cache() -> None:
    """App-, include-, router- and route-level ``dependencies=[...]`` run in
    FastAPI's order and share the request's cache with the endpoint's graph: a
    dependable declared at every level runs (and is torn down) once."""
    runs = await compare(
        make_levels, [Request(path="/levels"), Request(path="/direct")]
    )
    _, log = runs["fastapi"]
    assert log == [
        "app setup",
        "shared setup",
        "include setup",
        "router setup",
        "endpoint",
        "router teardown",
        "include teardown",
        "shared teardown",
        "app teardown",
        "app setup",
        "shared setup",
        "endpoint",
        "shared teardown",
        "app teardown",
    ]


# -- Depends(scope="function"): torn down after the response is serialized ------------


class Report(BaseModel):
    title: str

    @field_serializer("title")
    def serialize_title(self, title: str) -> str:
        Report.log.append("serialize")
        if title == "bad":
            raise ValueError("cannot serialize")
        return title.upper()

    log: ClassVar[list[str]] = []  # set per app, read by the serializer


def make_function_scope(route_class: RouteClass, log: Log) -> FastAPI:
    app = app_with(route_class)
    Report.log = log

    async def resource() -> AsyncIterator[str]:
        log.append("function setup")
        try:
            yield "resource"
        except Exception as exc:
            log.append(f"function sees {type(exc).__name__}")
            raise
        finally:
            log.append("function teardown")

    async def session() -> AsyncIterator[str]:
        log.append("request setup")
        yield "session"
        log.append("request teardown")

    @app.get("/report/{title}", response_model=Report)
    async def report(
        title: str,
        r: Annotated[str, Depends(resource, scope="function")],
        s: Annotated[str, Depends(session)],
    ) -> Any:
        log.append("endpoint")
        return Report(title=title)

    @app.get("/stream")
    def stream(
        r: Annotated[str, Depends(resource, scope="function")],
        s: Annotated[str, Depends(session)],
    ) -> StreamingResponse:
        def body() -> Iterator[str]:
            log.append("streaming")
            yield "chunk"

        return StreamingResponse(body())

    return app


async def test_function_scope_ends_after_serialization() -> None:
    """A ``Depends(scope="function")`` teardown runs after the response model is
    serialized and before a streaming body is sent, as in FastAPI; an error raised
    while serializing is thrown in at its ``yield``; request-scoped teardown runs
    after the response."""
    runs = await compare(
        make_function_scope,
        [
            Request(path="/report/ok"),
            Request(path="/stream"),
            Request(path="/report/bad"),
        ],
    )
    replies, log = runs["fastapi"]
    assert replies[0].body == {"title": "OK"}
    assert replies[1].body == "chunk"
    assert replies[2].exc is not None
    assert log[:6] == [
        "function setup",
        "request setup",
        "endpoint",
        "serialize",
        "function teardown",
        "request teardown",
    ]
    assert log[6:11] == [
        "function setup",
        "request setup",
        "function teardown",
        "streaming",
        "request teardown",
    ]
    assert "function sees PydanticSerializationError" in log[11:]


# -- streaming (generator) endpoints --------------------------------------------------


class Row(BaseModel):
    n: int


def make_generators(route_class: RouteClass, log: Log) -> FastAPI:
    app = app_with(route_class)

    async def rows(limit: int = 3) -> AsyncIterator[int]:
        log.append("rows setup")
        yield limit
        log.append("rows teardown")

    @app.get("/async")
    async def stream_async(limit: Annotated[int, Depends(rows)]) -> AsyncIterator[Row]:
        for n in range(limit):
            yield Row(n=n)
        log.append("async done")

    @app.get("/sync")
    def stream_sync(limit: Annotated[int, Depends(rows)]) -> Iterator[Row]:
        for n in range(limit):
            yield Row(n=n)
        log.append("sync done")

    @app.get("/events", response_class=EventSourceResponse)
    async def events(limit: Annotated[int, Depends(rows)]) -> AsyncIterator[Row]:
        for n in range(limit):
            yield Row(n=n)

    return app


async def test_generator_endpoints_stream() -> None:
    """Generator endpoints stream JSON lines (async or sync) and server-sent
    events, validated against the item type; the dependencies are resolved (and
    their errors answered) before the stream starts, and torn down after it."""
    runs = await compare(
        make_generators,
        [
            Request(path="/async"),
            Request(path="/sync", params={"limit": 2}),
            Request(path="/sync", params={"limit": "x"}),
            Request(path="/events", params={"limit": 2}),
        ],
    )
    replies, log = runs["fastapi"]
    assert replies[0].body == '{"n":0}\n{"n":1}\n{"n":2}\n'
    assert replies[2].status == 422
    assert replies[3].body == 'data: {"n":0}\n\ndata: {"n":1}\n\n'
    assert log == [
        "rows setup",
        "async done",
        "rows teardown",
        "rows setup",
        "sync done",
        "rows teardown",
        "rows setup",
        "rows teardown",
    ]


# -- 422s ---------------------------------------------------------------------------


async def needs_q(q: int) -> int:
    return q


async def needs_q_too(q: int) -> int:
    return q * 2


def make_duplicates(route_class: RouteClass, log: Log) -> FastAPI:
    app = app_with(route_class)

    @app.get("/")
    async def both(
        a: Annotated[int, Depends(needs_q)], b: Annotated[int, Depends(needs_q_too)]
    ) -> list[int]:
        return [a, b]

    return app


async def test_a_value_two_dependencies_declare_is_one_value() -> None:
    """Two dependencies declaring the same query parameter read one value. FastAPI's
    422 lists the missing value once per declaration, the route class once (the
    comparison lists each error once)."""
    runs = await compare(
        make_duplicates,
        [Request(params={"q": 2}), Request(), Request(params={"q": "x"})],
    )
    replies, _ = runs["fastapi"]
    assert replies[0].body == [2, 4]
    concurrent = await serve(
        lambda rc: make_duplicates(rc, []), route_classes()["concurrent"], [Request()]
    )
    plain = await serve(lambda rc: make_duplicates(rc, []), None, [Request()])
    assert len(plain[0].body["detail"]) == 2
    assert len(concurrent[0].body["detail"]) == 1


# -- per-route sequential resolution -------------------------------------------------


@pytest.mark.parametrize("flavour", ["async", "yield"])
async def test_sequential_route_keeps_context_variables(flavour: str) -> None:
    """``ConcurrentRoute(container, sequential=True)`` resolves in the request's
    task in FastAPI's order: a ``ContextVar`` one dependency sets is visible to a
    sibling declared after it and to the endpoint, as in FastAPI."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def make(route_class: RouteClass, log: Log) -> FastAPI:
        app = app_with(route_class)

        async def setter() -> None:
            var.set("set")

        async def setter_gen() -> AsyncIterator[None]:
            token = var.set("set")
            yield
            var.reset(token)

        async def reader() -> str:
            await anyio.lowlevel.checkpoint()
            return var.get()

        chosen = setter if flavour == "async" else setter_gen

        @app.get("/")
        async def endpoint(
            _: Annotated[None, Depends(chosen)],
            seen: Annotated[str, Depends(reader)],
        ) -> list[str]:
            return [seen, var.get()]

        return app

    routes = route_classes()
    for name in ("fastapi", "sequential"):
        replies = await serve(lambda rc: make(rc, []), routes[name], [Request()])
        assert replies[0].body == ["set", "set"], name


# -- request objects injected by type -------------------------------------------------


def make_request_objects(route_class: RouteClass, log: Log) -> FastAPI:
    from fastapi import Request
    from fastapi.requests import HTTPConnection
    from fastapi.security import SecurityScopes

    app = app_with(route_class)

    async def who(connection: HTTPConnection, request: Request) -> str:
        assert connection is request
        return request.url.path

    async def scoped(security_scopes: SecurityScopes) -> list[str]:
        return security_scopes.scopes

    async def tagged(response: Response, tasks: BackgroundTasks) -> str:
        response.set_cookie("seen", "yes")
        tasks.add_task(log.append, "task")
        return "tagged"

    @app.get("/objects")
    async def objects(
        path: Annotated[str, Depends(who)],
        scopes: Annotated[list[str], Security(scoped, scopes=["a", "b"])],
        tag: Annotated[str, Depends(tagged)],
    ) -> list[Any]:
        return [path, scopes, tag]

    return app


async def test_request_objects_are_injected_by_type() -> None:
    """``Request``, ``HTTPConnection``, ``SecurityScopes``, ``Response`` and
    ``BackgroundTasks`` reach the dependables with a plain ``Container()``: the same
    request object, the declared scopes, the sub-response merged (a cookie) and the
    background task run."""
    runs = await compare(
        make_request_objects, [Request(path="/objects")], headers=("set-cookie",)
    )
    replies, log = runs["fastapi"]
    assert replies[0].body == ["/objects", ["a", "b"], "tagged"]
    assert replies[0].headers["set-cookie"].startswith("seen=yes")
    assert log == ["task"]
