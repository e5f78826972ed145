"""A FastAPI app whose dependencies anydepends resolves: one line changed.

``app.router.route_class = ConcurrentRoute(container)`` and the container's lifespan:
FastAPI still parses, validates and documents every request; anydepends resolves the
dependencies, independent ones at the same time. The profile and the orders of a user
are fetched concurrently (two slow services), the connection pool is created once for
the app (``scope="app"``), each request's transaction commits after the response, or
rolls back when something raises (here the token check fails while the orders are
still being read, so the transaction is already open). Tests override
``app.dependency_overrides`` as usual.

Run it with ``python examples/fastapi_app.py``: it serves a few requests in-process
through httpx's ASGI transport, prints the answers and exits. (Serve it for real with
any ASGI server: ``uvicorn examples.fastapi_app:app``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Security
from fastapi.security import SecurityScopes

from anydepends import Container
from anydepends.fastapi import ConcurrentRoute, lifespan

container = Container()
app = FastAPI(lifespan=lifespan(container))
app.router.route_class = ConcurrentRoute(container)  # the one-line change

USERS = {"t-ada": ("ada", ["orders:read"]), "t-bob": ("bob", [])}
ORDERS = {"ada": [1, 2], "bob": []}
log: list[str] = []


class Pool:
    """A connection pool: one for the app."""

    def __init__(self) -> None:
        self.transactions = 0


async def pool() -> AsyncIterator[Pool]:
    log.append("pool: open")
    yield Pool()
    log.append("pool: closed")


async def transaction(
    p: Annotated[Pool, Depends(pool, scope="app")],  # type: ignore[arg-type]
) -> AsyncIterator[int]:
    p.transactions += 1
    number = p.transactions
    try:
        yield number
    except Exception as exc:
        log.append(f"tx {number}: rollback ({type(exc).__name__})")
        raise
    log.append(f"tx {number}: commit")


async def current_user(
    security_scopes: SecurityScopes, authorization: Annotated[str, Header()]
) -> str:
    await anyio.sleep(0.01)  # a token introspection service
    token = authorization.removeprefix("Bearer ")
    if token not in USERS:
        raise HTTPException(401, "bad token")
    name, granted = USERS[token]
    for needed in security_scopes.scopes:
        if needed not in granted:
            raise HTTPException(403, f"{name} lacks {needed}")
    return name


async def profile(user_id: str) -> dict[str, str]:
    await anyio.sleep(0.05)  # a slow profile service...
    return {"id": user_id, "plan": "pro"}


async def orders(user_id: str, tx: Annotated[int, Depends(transaction)]) -> list[int]:
    await anyio.sleep(0.05)  # ...and a slow database, at the same time
    if user_id not in ORDERS:
        raise HTTPException(404, f"no user {user_id}")
    return ORDERS[user_id]


@app.get("/users/{user_id}/home")
async def home(
    user_id: str,
    viewer: Annotated[str, Security(current_user, scopes=["orders:read"])],
    about: Annotated[dict[str, str], Depends(profile)],
    bought: Annotated[list[int], Depends(orders)],
) -> dict[str, Any]:
    return {"viewer": viewer, "profile": about, "orders": bought}


async def main() -> None:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),  # what `with TestClient(app)` runs
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        calls = [
            ("ada", "t-ada"),
            ("bob", "t-bob"),
            ("zoe", "t-ada"),
            ("ada", "nope"),
        ]
        for user, token in calls:
            headers = {"authorization": f"Bearer {token}"}
            response = await client.get(f"/users/{user}/home", headers=headers)
            print(f"GET /users/{user}/home {response.status_code} {response.json()}")

        # A test's override: no token service, no header needed any more.
        async def test_user() -> str:
            return "tester"

        app.dependency_overrides[current_user] = test_user
        response = await client.get("/users/ada/home")
        print(f"GET /users/ada/home {response.status_code} {response.json()}")
        app.dependency_overrides.clear()
    for line in log:
        print(line)


if __name__ == "__main__":
    anyio.run(main)
