"""``container.overrides``: the override mapping, validated and versioned."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._container import Container

__all__ = ["Overrides"]


class Overrides(MutableMapping[Callable[..., Any], Callable[..., Any]]):
    """``original -> replacement``, like FastAPI's ``app.dependency_overrides``.

    Read at call time; setting a replacement validates it at once, and every distinct
    override set gets its own cached plans, so overrides never cost introspection per
    call.
    """

    __slots__ = ("_container", "_data")

    def __init__(self, container: Container) -> None:
        self._container = container
        self._data: dict[Callable[..., Any], Callable[..., Any]] = {}

    def __getitem__(self, original: Callable[..., Any]) -> Callable[..., Any]:
        return self._data[original]

    def __setitem__(
        self, original: Callable[..., Any], replacement: Callable[..., Any]
    ) -> None:
        self._container._validate_override(original, replacement)
        self._data[original] = replacement
        self._container._overrides_changed()

    def __delitem__(self, original: Callable[..., Any]) -> None:
        del self._data[original]
        self._container._overrides_changed()

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, original: Any, default: Any = None) -> Any:
        """The replacement for *original*, or *default* (dict semantics)."""
        return self._data.get(original, default)

    def __repr__(self) -> str:
        return f"Overrides({self._data!r})"
