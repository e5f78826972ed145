"""anydepends' pytest plugin: container, scope and override fixtures.

Registered through the ``pytest11`` entry point, so installing anydepends is enough
(``-p no:anydepends`` turns it off). The fixtures are async: use them from tests that
anyio's pytest plugin runs (``anyio_mode = "auto"``, or ``@pytest.mark.anyio``), on
any backend.

- ``anydepends_container``: an entered :class:`~anydepends.Container`, exited (its
  app-scoped values torn down) after the test.
- ``anydepends_container_factory``: what builds that container; override this
  fixture in a ``conftest.py`` or a test module to configure it.
- ``anydepends_scope``: an entered :class:`~anydepends.Scope` of the container, one
  request's lifetime, exited after the test.
- ``anydepends_override``: ``anydepends_override(get_db, fake_db)`` overrides for
  this test only; undone after it, even on a container that outlives the test.

This is a top-level module, not part of the ``anydepends`` package, because pytest
imports every plugin at startup: importing the package waits until a test uses a
fixture.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import pytest

if TYPE_CHECKING:
    from anydepends import Container, Scope

__all__ = [
    "Override",
    "anydepends_container",
    "anydepends_container_factory",
    "anydepends_override",
    "anydepends_scope",
]

R = TypeVar("R", bound=Callable[..., Any])


@pytest.fixture
def anydepends_container_factory() -> Callable[[], Container]:
    """What builds ``anydepends_container``: ``Container`` itself, by default.

    Override it to configure your tests' container, for a test module or (in a
    ``conftest.py``) a directory: return your application's own factory, or a
    lambda that builds a ``Container(...)``. It must return a container that was
    not entered yet.
    """
    from anydepends import Container

    return Container


@pytest.fixture
async def anydepends_container(
    anydepends_container_factory: Callable[[], Container],
) -> AsyncIterator[Container]:
    """An entered container, exited after the test (app-scoped values torn down)."""
    from anydepends import Container

    container = cast(object, anydepends_container_factory())  # checked, not trusted
    if not isinstance(container, Container):
        msg = (
            "the anydepends_container_factory fixture must return a callable that"
            f" builds an anydepends Container, and its callable returned {container!r}"
        )
        raise TypeError(msg)
    async with container:
        yield container


class Override:
    """Overrides for one test: ``anydepends_override(original, replacement)``.

    Each call overrides *original* by *replacement* in the test's container, like
    ``container.overrides[original] = replacement``; pass a mapping to set several.
    After the test, every override set through it is undone, and if any was set,
    the app-scoped values are reset (see :func:`anydepends.testing.reset_app_scope`),
    so that a value created under an override never reaches another test, even when
    the container outlives the test.
    """

    def __init__(self, container: Container) -> None:
        self.container = container
        self.used = False
        self._undo = contextlib.ExitStack()

    @overload
    def __call__(self, original: Callable[..., Any], replacement: R, /) -> R: ...
    @overload
    def __call__(
        self, overrides: Mapping[Callable[..., Any], Callable[..., Any]], /
    ) -> None: ...
    def __call__(self, original: Any, replacement: Any = None, /) -> Any:
        """Override *original* by *replacement* (returned, e.g. a ``Spy``).

        Or, with a mapping as the only argument, each of its keys by its value.
        """
        pairs: Mapping[Callable[..., Any], Callable[..., Any]]
        if replacement is None and isinstance(original, Mapping):
            pairs = original  # pyright: ignore[reportUnknownVariableType]
        elif replacement is None:
            msg = (
                "anydepends_override takes (original, replacement), or a mapping of"
                f" originals to replacements; got only {original!r}"
            )
            raise TypeError(msg)
        else:
            pairs = {original: replacement}
        for key, value in pairs.items():
            self._undo.enter_context(self.container.override(key, value))
            self.used = True
        return replacement

    async def _restore(self) -> None:
        self._undo.close()
        if self.used:
            from anydepends.testing import reset_app_scope

            await reset_app_scope(self.container)


@pytest.fixture
async def anydepends_override(
    anydepends_container: Container,
) -> AsyncIterator[Override]:
    """Set overrides for this test: ``anydepends_override(get_db, fake_db)``."""
    override = Override(anydepends_container)
    try:
        yield override
    finally:
        await override._restore()


@pytest.fixture
async def anydepends_scope(
    anydepends_container: Container, anydepends_override: Override
) -> AsyncIterator[Scope]:
    """An entered scope of ``anydepends_container``, exited after the test.

    It is opened after ``anydepends_override`` is set up, so it closes before the
    test's overrides are undone: request-scoped teardowns run first.
    """
    async with anydepends_container.scope() as scope:
        yield scope
