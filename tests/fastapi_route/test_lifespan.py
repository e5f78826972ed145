# ruff: noqa: I002  (annotations must be real objects: the apps are built in closures)
"""The container's lifetime inside a FastAPI app: ``lifespan(container)``, what happens
when no lifespan runs, and the container's own settings and overrides."""

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import fastapi
import pytest
from fastapi import FastAPI

from anydepends import Container, DeclarationError
from anydepends import Depends as AnyDepends
from anydepends.fastapi import ConcurrentRoute, lifespan

from .harness import Request as Call
from .harness import client, send


class Pool:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False


def make_app(container: Container, log: list[str], **kwargs: Any) -> FastAPI:
    app = FastAPI(**kwargs)
    app.router.route_class = ConcurrentRoute(container)
    opened = [0]

    async def pool() -> AsyncIterator[Pool]:
        opened[0] += 1
        log.append(f"pool {opened[0]} open")
        made = Pool(opened[0])
        yield made
        made.closed = True
        log.append(f"pool {made.number} closed")

    async def session(p: Annotated[Pool, fastapi.Depends(pool, scope="app")]) -> Any:
        log.append(f"session on pool {p.number}")
        yield p.number
        log.append("session closed")

    @app.get("/pooled")
    async def pooled(
        p: Annotated[Pool, fastapi.Depends(pool, scope="app")],
        s: Annotated[int, fastapi.Depends(session)],
    ) -> list[int]:
        return [p.number, s]

    @app.get("/plain")
    async def plain(s: Annotated[int, fastapi.Depends(seven)]) -> int:
        return s

    return app


async def seven() -> int:
    return 7


async def test_lifespan_enters_the_container() -> None:
    """``FastAPI(lifespan=lifespan(container))``: an app-scoped dependency (declared
    with FastAPI's own ``Depends(..., scope="app")``) is created once for the app's
    lifetime and torn down at shutdown; request-scoped ones per request."""
    container = Container()
    log: list[str] = []
    app = make_app(container, log, lifespan=lifespan(container))
    async with client(app, lifespan=True) as http:
        first = await send(http, Call(path="/pooled"))
        second = await send(http, Call(path="/pooled"))
        assert log == [
            "pool 1 open",
            "session on pool 1",
            "session closed",
            "session on pool 1",
            "session closed",
        ]
    assert first.body == [1, 1]
    assert second.body == [1, 1]
    assert log[-1] == "pool 1 closed"


async def test_each_lifespan_run_gets_an_app_lifetime() -> None:
    """A container is entered once; when the app's lifespan runs again (a second
    ``with TestClient(app)``), that run is served by a fresh container configured
    like it: app-scoped values are created again, and closed with the run."""
    container = Container()
    log: list[str] = []
    app = make_app(container, log, lifespan=lifespan(container))
    for _ in range(2):
        async with client(app, lifespan=True) as http:
            await send(http, Call(path="/pooled"))
            await send(http, Call(path="/pooled"))
    assert [e for e in log if e.startswith("pool")] == [
        "pool 1 open",
        "pool 1 closed",
        "pool 2 open",
        "pool 2 closed",
    ]


async def test_without_a_lifespan_app_scope_is_refused_clearly() -> None:
    """With no lifespan run (``TestClient(app)`` without ``with``), every request
    gets a lifetime of its own: request-scoped dependencies work as usual, and an
    app-scoped one fails with a ``UsageError`` saying how to enter the container."""
    container = Container()
    log: list[str] = []
    app = make_app(container, log)
    async with client(app) as http:
        assert (await send(http, Call(path="/plain"))).body == 7
        failed = await send(http, Call(path="/pooled"))
    assert failed.exc is not None
    kind, message = failed.exc
    assert kind == "UsageError"
    assert "app-scoped, but the container is not entered" in message
    assert "lifespan=anydepends.fastapi.lifespan(container)" in message
    assert "with TestClient(app)" in message
    assert log == []


async def test_an_existing_lifespan_is_wrapped() -> None:
    """``lifespan(container, app_lifespan)`` enters the container first (the app's
    startup can use it), runs the app's lifespan inside it and passes on the state
    it yields; the container closes after the app's shutdown."""
    container = Container()
    log: list[str] = []

    async def config() -> str:
        return "from the container"

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        log.append("startup: " + await container.call(config))
        yield {"greeting": "hi"}
        log.append("shutdown")

    app = make_app(container, log)
    async with lifespan(container, app_lifespan)(app) as state:
        assert state == {"greeting": "hi"}
        async with client(app) as http:
            assert (await send(http, Call(path="/pooled"))).body == [1, 1]
    assert log[0] == "startup: from the container"
    assert log[-2:] == ["shutdown", "pool 1 closed"]


async def test_an_async_generator_lifespan_is_accepted() -> None:
    """FastAPI takes an async generator function as a lifespan; so does the wrapper."""
    container = Container()
    log: list[str] = []

    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.append("up")
        yield
        log.append("down")

    app = make_app(container, log, lifespan=lifespan(container, app_lifespan))
    async with client(app, lifespan=True) as http:
        assert (await send(http, Call(path="/pooled"))).body == [1, 1]
    assert log[0] == "up"
    assert log[-2:] == ["down", "pool 1 closed"]


async def test_container_entered_by_the_application_itself() -> None:
    """A container the application entered itself serves the routes directly (and
    ``lifespan()`` leaves it to its owner)."""
    container = Container()
    log: list[str] = []
    app = make_app(container, log, lifespan=lifespan(container))
    async with container:
        async with client(app, lifespan=True) as http:
            await send(http, Call(path="/pooled"))
            await send(http, Call(path="/pooled"))
        assert log == ["pool 1 open", *["session on pool 1", "session closed"] * 2]
    assert log[-1] == "pool 1 closed"


async def eight() -> int:
    return 8


async def nine() -> int:
    return 9


async def test_container_overrides_apply_under_app_overrides() -> None:
    """``container.overrides`` apply to the routes, read per request like
    ``app.dependency_overrides``; where both override one dependency, the app's
    wins; without them the declared graph is back."""
    container = Container()
    app = make_app(container, [], lifespan=lifespan(container))
    async with client(app, lifespan=True) as http:
        with container.override(seven, eight):
            assert (await send(http, Call(path="/plain"))).body == 8
            app.dependency_overrides[seven] = nine
            assert (await send(http, Call(path="/plain"))).body == 9
            app.dependency_overrides.clear()
            assert (await send(http, Call(path="/plain"))).body == 8
        assert (await send(http, Call(path="/plain"))).body == 7


def test_anydepends_markers_in_an_endpoint_are_refused() -> None:
    """FastAPI analyses the endpoint too and reads only its own markers: an
    ``anydepends.Depends`` anywhere in the declared graph is refused when the route
    is created, pointing to ``fastapi.Depends`` (which takes ``scope="app"``)."""

    async def get_pool() -> Pool:
        return Pool(1)

    async def nested(pool: Annotated[Pool, AnyDepends(get_pool, scope="app")]) -> int:
        return pool.number

    app = FastAPI()
    app.router.route_class = ConcurrentRoute(Container())
    with pytest.raises(
        DeclarationError, match=r"declared with anydepends\.Depends"
    ) as e:

        @app.get("/")
        async def endpoint(n: Annotated[int, fastapi.Depends(nested)]) -> int:
            return n

    assert e.value.parameter == "pool"
    assert 'fastapi.Depends(..., scope="app")' in str(e.value)


def test_importing_anydepends_fastapi_without_fastapi() -> None:
    """Without FastAPI installed, importing ``anydepends.fastapi`` says what to
    install; importing ``anydepends`` never imports FastAPI."""
    code = (
        "import sys\n"
        "sys.modules['fastapi'] = None  # as if it were not installed\n"
        "import anydepends\n"
        "assert 'starlette' not in sys.modules\n"
        "try:\n"
        "    import anydepends.fastapi\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == (
        "anydepends.fastapi needs FastAPI, which is not installed:"
        ' pip install "anydepends[fastapi]"'
    )
