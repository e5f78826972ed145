"""An ASGI app on Starlette that resolves each request's dependencies with anydepends.

``anydepends.starlette`` does the glue: the container lives as long as the app
(``lifespan``), the middleware opens one scope per request with the ``Request`` in
its context, so dependables receive it by type, as in FastAPI, and ``@inject`` turns
a handler whose parameters are dependencies (and path parameters) into an endpoint.
Authentication uses ``Security`` with scopes and ``SecurityScopes``, the same
dependables FastAPI would take.

Run it with ``python examples/starlette_app.py``: it starts the app in-process, sends
a few requests through httpx's ASGI transport, prints the answers and exits. (Serve it
for real with any ASGI server: ``uvicorn examples.starlette_app:app``.)
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anydepends import Container, Depends, Security, SecurityScopes
from anydepends.starlette import AnydependsMiddleware, inject, lifespan

# -- dependables (no Starlette in sight but Request) -------------------------------
USERS = {
    "t-ada": ("ada", ["items:read", "items:write"]),
    "t-bob": ("bob", ["items:read"]),
}
ITEMS = {1: "lamp", 2: "chair"}


def get_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise HTTPException(401, "not authenticated")
    return header.removeprefix("Bearer ")


async def get_current_user(
    security_scopes: SecurityScopes,
    token: Annotated[str, Depends(get_token, sync_to_thread=False)],
) -> str:
    await anyio.sleep(0.001)  # a token introspection call
    if token not in USERS:
        raise HTTPException(401, "bad token")
    name, granted = USERS[token]
    for scope in security_scopes.scopes:
        if scope not in granted:
            raise HTTPException(403, f"{name} lacks {scope}")
    return name


async def get_item(item_id: int) -> str:
    await anyio.sleep(0.001)  # looked up while the token is checked
    if item_id not in ITEMS:
        raise HTTPException(404, f"no item {item_id}")
    return ITEMS[item_id]


# -- endpoints: item_id is a path parameter, the rest are dependencies ---------------
@inject
async def read_item(
    user: Annotated[str, Security(get_current_user, scopes=["items:read"])],
    item: Annotated[str, Depends(get_item)],
) -> dict[str, Any]:
    return {"item": item, "read_by": user}


@inject
async def write_item(
    user: Annotated[str, Security(get_current_user, scopes=["items:write"])],
    item: Annotated[str, Depends(get_item)],
) -> dict[str, Any]:
    return {"item": item, "written_by": user}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


container = Container()
app = Starlette(
    routes=[
        Route("/items/{item_id:int}", read_item, methods=["GET"]),
        Route("/items/{item_id:int}", write_item, methods=["PUT"]),
    ],
    middleware=[Middleware(AnydependsMiddleware, container=container)],
    exception_handlers={HTTPException: http_error},
    lifespan=lifespan(container),  # checks both endpoints' graphs at startup
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
