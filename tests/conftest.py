"""Shared fixtures: every async test runs on asyncio (debug mode) and on trio."""

from __future__ import annotations

from typing import Any

import pytest


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
