"""``openapi.json`` is FastAPI's own: the route class leaves the endpoint's analysis to
FastAPI, so the document is identical to plain FastAPI's, byte for byte."""

from __future__ import annotations

import json
from typing import Annotated

import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    FastAPI,
    Header,
    Path,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.security import APIKeyHeader, HTTPBearer, OAuth2PasswordBearer
from pydantic import BaseModel

from .harness import RouteClass, app_with, route_classes

oauth2 = OAuth2PasswordBearer(
    tokenUrl="token", scopes={"items:read": "read", "items:write": "write"}
)
api_key = APIKeyHeader(name="x-api-key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


class Item(BaseModel):
    name: str
    price: float = 0.0


class Owner(BaseModel):
    id: int


async def pagination(
    skip: Annotated[int, Query(ge=0, description="rows to skip")] = 0,
    limit: Annotated[int, Query(le=100)] = 10,
) -> dict[str, int]:
    return {"skip": skip, "limit": limit}


async def tenant(x_tenant: Annotated[str, Header()]) -> str:
    return x_tenant


async def session_cookie(session: Annotated[str | None, Cookie()] = None) -> str | None:
    return session


async def current_user(
    token: Annotated[str, Security(oauth2, scopes=["items:read"])],
    tenant_id: Annotated[str, Depends(tenant)],
) -> str:
    return f"{token}@{tenant_id}"


async def audit(request: Request, key: Annotated[str | None, Depends(api_key)]) -> None:
    return None


def make(route_class: RouteClass) -> FastAPI:
    app = app_with(route_class, dependencies=[Depends(audit)])
    router = APIRouter(dependencies=[Depends(session_cookie)], tags=["items"])

    @router.get("/items/{item_id}", response_model=Item, responses={404: {}})
    async def read_item(
        item_id: Annotated[int, Path(gt=0)],
        owner_id: int,
        page: Annotated[dict[str, int], Depends(pagination)],
        user: Annotated[str, Security(current_user, scopes=["items:write"])],
        q: str | None = None,
    ) -> Item:
        """Read one item."""
        return Item(name="x")

    @router.post("/items", status_code=201, dependencies=[Depends(tenant)])
    async def create_item(
        item: Item,
        owner: Owner,
        note: Annotated[str, Body(max_length=20)],
        background_tasks: BackgroundTasks,
        response: Response,
        credentials: Annotated[object, Depends(bearer)],
    ) -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(
        router, prefix="/shops/{shop}", dependencies=[Depends(pagination)]
    )

    @app.put("/plain/{name}")
    def sync_endpoint(name: str, page: Annotated[dict[str, int], Depends(pagination)]):
        return {"name": name}

    return app


@pytest.mark.parametrize("name", ["concurrent", "sequential"])
def test_openapi_is_identical(name: str) -> None:
    """Parameters (path, query, header, cookie, with their constraints), request
    bodies (embedded and not), security schemes with their accumulated OAuth2
    scopes, responses, tags and operation ids: the same document, including routes
    included with a prefix and router- and app-level dependencies."""
    classes = route_classes()
    expected = json.dumps(make(None).openapi(), sort_keys=False)
    actual = json.dumps(make(classes[name]).openapi(), sort_keys=False)
    assert actual == expected
    assert '"items:read"' in expected and "x-api-key" in expected
