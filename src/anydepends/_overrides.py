"""``container.overrides``: the override mapping, validated when set."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

__all__ = ["Overrides"]

Validate = Callable[[Callable[..., Any], Callable[..., Any]], None]


class Overrides(MutableMapping[Callable[..., Any], Callable[..., Any]]):
    """``original -> replacement``, like FastAPI's ``app.dependency_overrides``.

    Read at call time; setting a replacement validates it at once, and every distinct
    override set gets its own cached plans, so overrides never cost introspection per
    call. *validate* checks a new pair; *changed* is told about every change.
    """

    __slots__ = ("_changed", "_data", "_validate")

    def __init__(self, validate: Validate, changed: Callable[[], None]) -> None:
        self._validate = validate
        self._changed = changed
        self._data: dict[Callable[..., Any], Callable[..., Any]] = {}

    def __getitem__(self, original: Callable[..., Any]) -> Callable[..., Any]:
        return self._data[original]

    def __setitem__(
        self, original: Callable[..., Any], replacement: Callable[..., Any]
    ) -> None:
        self._validate(original, replacement)
        self._data[original] = replacement
        self._changed()

    def __delitem__(self, original: Callable[..., Any]) -> None:
        del self._data[original]
        self._changed()

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, original: Any, default: Any = None) -> Any:
        """The replacement for *original*, or *default* (dict semantics)."""
        return self._data.get(original, default)

    def restore(self, original: Callable[..., Any], previous: Any, had: bool) -> None:
        """Put back what ``original`` mapped to before (``had``: whether it did)."""
        if had:
            self._data[original] = previous
        else:
            self._data.pop(original, None)
        self._changed()

    def snapshot(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        """The current pairs (the compiler reads these)."""
        return self._data

    def __repr__(self) -> str:
        return f"Overrides({self._data!r})"
