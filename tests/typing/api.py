"""Static checks of the public API, for mypy --strict and pyright strict.

Never collected by pytest (no ``test_`` prefix); ``nox -s mypy pyright`` checks it.
Each ``assert_type`` pins what a type checker must infer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, assert_type

import anydepends
from anydepends import (
    Container,
    Dependency,
    DependencyError,
    Depends,
    Plan,
    Scope,
    Security,
    SecurityScopes,
)


class Settings:
    dsn: str = "sqlite://"


async def get_settings() -> Settings:
    return Settings()


async def get_db(
    settings: Annotated[Settings, Depends(get_settings, scope="app")],
) -> AsyncIterator[str]:
    yield settings.dsn


def sync_user(token: str, db: str = Depends(get_db)) -> str:
    return token + db


async def handle(
    job: int,
    user: Annotated[str, Depends(sync_user)],
    scopes: SecurityScopes,
    checked: str = Security(sync_user, scopes=["read"]),
) -> list[str]:
    return [user, checked, *scopes.scopes]


def sync_root(user: str = Depends(sync_user, sync_to_thread=False)) -> int:
    return len(user)


async def main() -> None:
    async with Container(sync_to_thread=False, sequential=True) as container:
        assert_type(container, Container)
        assert_type(await container.call(handle, job=1, token="t"), list[str])
        assert_type(await container.call(sync_root, token="t"), int)
        plan = container.compile(handle)
        assert_type(plan, Plan[list[str]])
        assert_type(await container.call(plan, job=1, token="t"), list[str])
        async with container.scope() as scope:
            assert_type(scope, Scope)
            assert_type(await scope.call(handle, job=2, token="t"), list[str])
            assert_type(await scope.call(sync_root, token="t"), int)
        injected = container.inject(handle)
        assert_type(injected, Callable[..., Coroutine[Any, Any, list[str]]])
        with container.override(get_settings, get_settings):
            pass
        container.overrides[get_settings] = get_settings
        trace = await container.trace(handle, job=3, token="t")
        assert_type(trace.result, list[str])
    marker: Dependency = Depends(get_settings)
    assert isinstance(marker, Dependency)
    error: type[Exception] = DependencyError
    assert issubclass(error, Exception)
    assert_type(anydepends.__all__, list[str])
    _unused: Coroutine[Any, Any, None] | None = None
    del _unused
