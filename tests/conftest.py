"""Shared fixtures: every async test runs on asyncio (debug mode) and on trio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from anydepends import _introspect, _shapes
from anydepends._introspect import Shape


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


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every callable the compiler reads (introspects) through the shapes cache, in
    order."""
    seen: list[object] = []
    real = _introspect.read

    def counting(call: Callable[..., Any], where: Callable[[], Any]) -> Shape:
        seen.append(call)
        return real(call, where)

    monkeypatch.setattr(_shapes, "read", counting)
    return seen
