"""Evaluating string annotations (``from __future__ import annotations``), quickly.

``eval()`` of an annotation string costs a parse and a compile every time, and
``Annotated[T, Depends(f)]`` then builds a ``typing`` alias object only for the
introspector to take it apart again: together about 20 µs per parameter, most of a
cold compile. The annotations of dependables almost always have one tiny shape (names,
dotted names, subscriptions and calls with positional arguments), so this module
parses that shape itself and evaluates it with exactly the lookups, calls and
subscriptions ``eval`` would make, in the same order. Anything else (literals, keyword
arguments, operators, non-ASCII names, ...) goes to ``eval``.

A top-level ``Annotated[T, ...]`` whose ``T`` is a plain class, ``Any`` or a builtin
generic alias (where ``typing`` would return ``T`` unchanged) is returned as an
:class:`Split` instead of an alias: the same origin and metadata, without building
the alias.
"""

from __future__ import annotations

import keyword
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Final, Generic, TypeAlias

__all__ = ["Split", "evaluate"]

# Syntax tree of the supported subset: ("name", str) | ("attr", node, str)
# | ("sub", node, tuple[node, ...], is_tuple) | ("call", node, tuple[node, ...]).
_Node: TypeAlias = tuple[Any, ...]

_SUPPORTED: Final = re.compile(r"[A-Za-z0-9_.\[\](), \t]*")
_TOKEN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[.\[\](),]")
_MAX_NESTING: Final = 16
# Parsed trees by annotation text: parsing is pure, so sharing it is safe. Bounded,
# so programs that generate functions forever do not grow it forever.
_PARSED: dict[str, _Node | None] = {}
_PARSED_LIMIT: Final = 4096


class Split:
    """A top-level ``Annotated[origin, *metadata]``, not built as a typing alias."""

    __slots__ = ("metadata", "origin")

    def __init__(self, origin: Any, metadata: tuple[Any, ...]) -> None:
        self.origin = origin
        self.metadata = metadata


class _Unsupported(Exception):
    """The text is outside the supported subset: use ``eval``."""


def evaluate(text: str, namespace: dict[str, Any]) -> Any:
    """``eval(text, namespace)``, or a :class:`Split` for a top-level ``Annotated``.

    Raises what ``eval`` would raise (``NameError`` for an unknown name, whatever a
    call or subscription raises, ``SyntaxError`` for text that is not Python).
    """
    tree = _PARSED.get(text, _MISSING)
    if tree is _MISSING:
        tree = _parse(text)
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        _PARSED[text] = tree
    builtins_ = namespace.get("__builtins__")
    if tree is None or builtins_ is None or type(namespace) is not dict:
        return eval(text, namespace)  # what inspect.signature(eval_str=True) does
    scope = builtins_.__dict__ if isinstance(builtins_, types.ModuleType) else builtins_
    if tree[0] == "sub" and len(tree[2]) >= 2:
        target = _value(tree[1], namespace, scope)
        items = [_value(item, namespace, scope) for item in tree[2]]
        origin = items[0]
        if target is Annotated and (
            origin is Any
            or (type(origin) is type and origin is not Generic)
            or type(origin) is types.GenericAlias
        ):
            # typing's own check returns such an origin unchanged (of the plain
            # classes it refuses only ``Generic``; ``Protocol`` has a metaclass).
            return Split(origin, tuple(items[1:]))
        return target[tuple(items)]
    return _value(tree, namespace, scope)


_MISSING: Final[Any] = object()


def _value(node: _Node, namespace: dict[str, Any], scope: Mapping[str, Any]) -> Any:
    """Evaluate a parsed *node* as ``eval`` would (name lookup: globals, builtins)."""
    tag = node[0]
    if tag == "name":
        name: str = node[1]
        try:
            return namespace[name]
        except KeyError:
            pass
        try:
            return scope[name]
        except KeyError:
            msg = f"name {name!r} is not defined"
            raise NameError(msg, name=name) from None
    if tag == "attr":
        return getattr(_value(node[1], namespace, scope), node[2])
    target = _value(node[1], namespace, scope)
    items = [_value(item, namespace, scope) for item in node[2]]
    if tag == "call":
        return target(*items)
    return target[tuple(items)] if node[3] else target[items[0]]


def _parse(text: str) -> _Node | None:
    """The tree of *text* if it is in the supported subset, else ``None``."""
    source = text.lstrip(" \t")  # eval() strips leading blanks too
    if not _SUPPORTED.fullmatch(source):
        return None
    tokens = _TOKEN.findall(source)
    if "".join(tokens) != source.replace(" ", "").replace("\t", ""):
        return None
    try:
        node, end = _expression(tokens, 0, 0)
    except _Unsupported:
        return None
    return node if end == len(tokens) else None


def _expression(tokens: list[str], at: int, depth: int) -> tuple[_Node, int]:
    """``NAME trailer*`` starting at *at*; the tree and the next position."""
    if depth > _MAX_NESTING or at >= len(tokens):
        raise _Unsupported
    node: _Node = _name(tokens[at])
    at += 1
    while at < len(tokens):
        token = tokens[at]
        if token == ".":
            if at + 1 >= len(tokens):
                raise _Unsupported
            node = ("attr", node, _name(tokens[at + 1])[1])
            at += 2
        elif token == "[":
            items, at, comma = _items(tokens, at + 1, "]", depth)
            if not items:
                raise _Unsupported
            node = ("sub", node, tuple(items), comma or len(items) > 1)
        elif token == "(":
            items, at, _ = _items(tokens, at + 1, ")", depth)
            node = ("call", node, tuple(items))
        else:
            break
    return node, at


def _items(
    tokens: list[str], at: int, close: str, depth: int
) -> tuple[list[_Node], int, bool]:
    """Comma-separated expressions up to *close*: the items, the next position and
    whether a comma came last."""
    items: list[_Node] = []
    comma = False
    while True:
        if at >= len(tokens):
            raise _Unsupported
        if tokens[at] == close:
            return items, at + 1, comma
        if items and not comma:
            raise _Unsupported
        node, at = _expression(tokens, at, depth + 1)
        items.append(node)
        comma = at < len(tokens) and tokens[at] == ","
        if comma:
            at += 1


def _name(token: str) -> _Node:
    """A name token (never a keyword, a number, a dunder constant or punctuation)."""
    if not (token[0].isalpha() or token[0] == "_") or keyword.iskeyword(token):
        raise _Unsupported
    if token == "__debug__":
        raise _Unsupported
    return ("name", token)
