"""Context objects for one call: ``Container.call_in`` and ``Scope.call_in``."""

from __future__ import annotations

import pytest

from anydepends import (
    Container,
    DeclarationError,
    Depends,
    MissingContextError,
    MissingValuesError,
    UsageError,
)


class Request:
    """A stand-in for a framework's request object, injected by type."""

    def __init__(self, path: str) -> None:
        self.path = path


async def current_path(request: Request) -> str:
    return request.path


async def handler(path: str = Depends(current_path, use_cache=False)) -> str:
    return path


async def test_container_call_in_injects_context_for_one_call() -> None:
    """``container.call_in({Request: r}, fn)`` injects *r* by type into that call
    only; a plain ``call`` of the same graph reports the missing context object."""
    async with Container(context_types=[Request]) as container:
        assert await container.call_in({Request: Request("/a")}, handler) == "/a"
        assert await container.call_in({Request: Request("/b")}, handler) == "/b"
        with pytest.raises(MissingContextError):
            await container.call(handler)


async def test_scope_call_in_adds_to_and_overrides_the_scope_context() -> None:
    """``scope.call_in`` adds context objects for one call on top of the scope's own,
    and the scope's context is unchanged for the next call."""
    async with (
        Container(context_types=[Request]) as container,
        container.scope(context={Request: Request("/scope")}) as scope,
    ):
        assert await scope.call(handler) == "/scope"
        assert await scope.call_in({Request: Request("/one")}, handler) == "/one"
        assert await scope.call(handler) == "/scope"


async def test_call_in_rejects_unregistered_context_types() -> None:
    """A context object keyed by a type the container does not inject is a
    ``UsageError`` naming how to register it."""
    async with Container() as container:
        with pytest.raises(UsageError, match="context_types"):
            await container.call_in({Request: Request("/x")}, handler)


class LateRequest:
    """A framework's request object, registered after the container was built."""


async def test_context_types_added_later_are_injected_by_type() -> None:
    """``add_context_types`` makes a type injectable by type after construction, and
    drops plans compiled before, where the parameter was still a value by name."""

    async def handler(req: LateRequest) -> LateRequest:
        return req

    request = LateRequest()
    async with Container() as container:
        with pytest.raises(MissingValuesError):
            await container.call(handler)
        container.add_context_types(LateRequest)
        container.add_context_types(LateRequest)  # idempotent
        assert container.context_types.count(LateRequest) == 1
        assert await container.call_in({LateRequest: request}, handler) is request
        with pytest.raises(DeclarationError):
            container.add_context_types(42)  # type: ignore[arg-type]
