"""Dropped into FastAPI's own ``tests/`` by ``nox -s fastapi_suite``.

Every ``APIRouter`` (so every ``FastAPI`` app, whose ``app.get`` routes live on its
``app.router``) gets a :func:`anydepends.fastapi.ConcurrentRoute` as its default
``route_class``: every HTTP route of FastAPI's tests is resolved by anydepends.
No test enters the container (FastAPI's test apps have their own lifespans), so each
request runs in a lifetime of its own, as in an app whose tests never run the lifespan.
"""

from __future__ import annotations

import functools
from typing import Any

import fastapi.routing

from anydepends import Container
from anydepends.fastapi import ConcurrentRoute

CONTAINER = Container()
ROUTE_CLASS = ConcurrentRoute(CONTAINER)

_original_init = fastapi.routing.APIRouter.__init__


@functools.wraps(_original_init)
def _init(self: fastapi.routing.APIRouter, *args: Any, **kwargs: Any) -> None:
    if kwargs.get("route_class", fastapi.routing.APIRoute) is fastapi.routing.APIRoute:
        kwargs["route_class"] = ROUTE_CLASS
    _original_init(self, *args, **kwargs)


fastapi.routing.APIRouter.__init__ = _init  # type: ignore[method-assign]


def pytest_report_header() -> str:
    """Say in the report header that the routes are anydepends'."""
    return f"APIRouter default route_class: {fastapi.routing.APIRouter().route_class!r}"
