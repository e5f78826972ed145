"""An ASGI app on Starlette that resolves each request's dependencies with anydepends.

The container lives as long as the app (entered in the lifespan); each request opens a
scope with the ``Request`` in its context, so dependables receive it by type, as in
FastAPI. Authentication uses ``Security`` with scopes and ``SecurityScopes``, the
same dependables FastAPI would take.

Run it with ``python examples/starlette_app.py``: it starts the app in-process, sends
a few requests through httpx's ASGI transport, prints the answers and exits. (Serve it
for real with any ASGI server: ``uvicorn examples.starlette_app:app``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anydepends import Container, Depends, Security, SecurityScopes

# -- dependables (no Starlette in sight but Request) -------------------------------
USERS = {
    "t-ada": ("ada", ["items:read", "items:write"]),
    "t-bob": ("bob", ["items:read"]),
}
ITEMS = {1: "lamp", 2: "chair"}


class HTTPError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def get_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise HTTPError(401, "not authenticated")
    return header.removeprefix("Bearer ")


async def get_current_user(
    security_scopes: SecurityScopes,
    token: Annotated[str, Depends(get_token, sync_to_thread=False)],
) -> str:
    await anyio.sleep(0.001)  # a token introspection call
    if token not in USERS:
        raise HTTPError(401, "bad token")
    name, granted = USERS[token]
    for scope in security_scopes.scopes:
        if scope not in granted:
            raise HTTPError(403, f"{name} lacks {scope}")
    return name


async def get_item(request: Request) -> str:
    item_id = int(request.path_params["item_id"])
    await anyio.sleep(0.001)  # looked up while the token is checked
    if item_id not in ITEMS:
        raise HTTPError(404, f"no item {item_id}")
    return ITEMS[item_id]


# -- handlers ------------------------------------------------------------------------
async def read_item(
    user: Annotated[str, Security(get_current_user, scopes=["items:read"])],
    item: Annotated[str, Depends(get_item)],
) -> dict[str, Any]:
    return {"item": item, "read_by": user}


async def write_item(
    user: Annotated[str, Security(get_current_user, scopes=["items:write"])],
    item: Annotated[str, Depends(get_item)],
) -> dict[str, Any]:
    return {"item": item, "written_by": user}


# -- the glue: one scope per request ---------------------------------------------------
Handler = Callable[..., Awaitable[dict[str, Any]]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that resolves *handler* in a scope for the request."""

    async def run(request: Request) -> Response:
        container: Container = request.app.state.container
        try:
            async with container.scope(context={Request: request}) as scope:
                return JSONResponse(await scope.call(handler))
        except HTTPError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    return run


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with Container(context_types=[Request]) as container:
        for handler in (read_item, write_item):
            container.compile(handler)  # a broken graph fails at startup
        app.state.container = container
        yield


app = Starlette(
    routes=[
        Route("/items/{item_id}", endpoint(read_item), methods=["GET"]),
        Route("/items/{item_id}", endpoint(write_item), methods=["PUT"]),
    ],
    lifespan=lifespan,
)


async def main() -> None:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        for method, path, token in [
            ("GET", "/items/1", "t-bob"),
            ("PUT", "/items/1", "t-bob"),
            ("PUT", "/items/2", "t-ada"),
            ("GET", "/items/9", "t-ada"),
            ("GET", "/items/1", None),
        ]:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            response = await client.request(method, path, headers=headers)
            print(method, path, response.status_code, response.json())


if __name__ == "__main__":
    anyio.run(main)
