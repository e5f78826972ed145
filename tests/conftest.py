"""Shared fixtures: every async test runs on asyncio (debug mode) and on trio."""

from __future__ import annotations

import inspect
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> None:
    """Run every ``async def`` test with anyio's plugin (what ``anyio_mode = auto``
    does on recent anyio; spelled out so the suite also runs on the oldest anyio the
    package supports). Marked before anyio's own hook looks at the function."""
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", None)
    if collector.funcnamefilter(name) and inspect.iscoroutinefunction(inner or obj):
        marks = getattr(obj, "pytestmark", [])
        if not any(mark.name == "anyio" for mark in marks):
            pytest.mark.anyio(obj)


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Run each async test once per backend; asyncio in debug mode catches leaks."""
    backend: tuple[str, dict[str, Any]] = request.param
    return backend
