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
# | ("sub", node, tuple[node, ...], is_tuple) | ("call", node, tuple[node, ...]);
# at the top only, ("common", A, T, M, f) for ``A[T, M(f)]`` (each a name, or a
# tuple of names for a dotted name).
_Node: TypeAlias = tuple[Any, ...]

_SUPPORTED: Final = re.compile(r"[A-Za-z0-9_.\[\](), \t]*")
_TOKEN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[.\[\](),]")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED: Final = r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
_COMMON: Final = re.compile(  # ``A[T, M(f)]``, each a dotted name, blanks allowed
    rf"{_DOTTED}[ \t]*\[[ \t]*{_DOTTED}[ \t]*,[ \t]*{_DOTTED}[ \t]*\("
    rf"[ \t]*{_DOTTED}[ \t]*\)[ \t]*\][ \t]*"
)
_MAX_NESTING: Final = 16
# Parsed trees by annotation text: parsing is pure, so sharing it is safe. Bounded,
# so programs that generate functions forever do not grow it forever.
_PARSED: dict[str, _Node | None] = {}
_PARSED_LIMIT: Final = 4096


_MISSING: Final[Any] = object()


class Split:
    """A top-level ``Annotated[origin, *metadata]``, not built as a typing alias."""

    __slots__ = ("metadata", "origin")

    def __init__(self, origin: Any, metadata: tuple[Any, ...]) -> None:
        self.origin = origin
        self.metadata = metadata


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
    tag = tree[0]
    if tag == "common":  # A[T, M(f)]: the same steps, inline for plain globals
        get = namespace.get
        a, t, m, f = tree[1:]
        target = get(a, _MISSING) if type(a) is str else _MISSING
        if target is _MISSING:  # a builtin, a dotted name or an unknown name
            target = _dotted(a, namespace, scope)
        origin = get(t, _MISSING) if type(t) is str else _MISSING
        if origin is _MISSING:
            origin = _dotted(t, namespace, scope)
        factory = get(m, _MISSING) if type(m) is str else _MISSING
        if factory is _MISSING:
            factory = _dotted(m, namespace, scope)
        argument = get(f, _MISSING) if type(f) is str else _MISSING
        if argument is _MISSING:
            argument = _dotted(f, namespace, scope)
        marker = factory(argument)
        items = [origin, marker]
    elif tag == "sub" and len(tree[2]) >= 2:
        target = _value(tree[1], namespace, scope)
        items = [_value(item, namespace, scope) for item in tree[2]]
        origin = items[0]
    else:
        return _value(tree, namespace, scope)
    if target is Annotated and (
        origin is Any
        or (type(origin) is type and origin is not Generic)
        or type(origin) is types.GenericAlias
    ):
        # typing's own check returns such an origin unchanged (of the plain classes
        # it refuses only ``Generic``; ``Protocol`` has a metaclass).
        return Split(origin, tuple(items[1:]))
    return target[tuple(items)]


def _load(name: str, namespace: dict[str, Any], scope: Mapping[str, Any]) -> Any:
    """A name as ``eval`` looks it up: the globals, then the builtins."""
    try:
        return namespace[name]
    except KeyError:
        pass
    try:
        return scope[name]
    except KeyError:
        msg = f"name {name!r} is not defined"
        raise NameError(msg, name=name) from None


def _dotted(
    names: str | tuple[str, ...], namespace: dict[str, Any], scope: Mapping[str, Any]
) -> Any:
    """A name, or a dotted name: the first looked up, the rest attributes."""
    if isinstance(names, str):
        return _load(names, namespace, scope)
    value = _load(names[0], namespace, scope)
    for name in names[1:]:
        value = getattr(value, name)
    return value


def _value(node: _Node, namespace: dict[str, Any], scope: Mapping[str, Any]) -> Any:
    """Evaluate a parsed *node* as ``eval`` would (name lookup: globals, builtins)."""
    tag = node[0]
    if tag == "name":
        return _load(node[1], namespace, scope)
    if tag == "attr":
        return getattr(_value(node[1], namespace, scope), node[2])
    target = _value(node[1], namespace, scope)
    items = [_value(item, namespace, scope) for item in node[2]]
    if tag == "call":
        return target(*items)
    return target[tuple(items)] if node[3] else target[items[0]]


def _parse(text: str) -> _Node | None:
    """The tree of *text* if it is in the supported subset, else ``None``.

    ``expression := NAME ("." NAME | "[" list "]" | "(" [list] ")")*`` with
    ``list := expression ("," expression)* [","]``, parsed with an explicit stack of
    open brackets: ``[target, bracket, items, trailing comma]``.
    """
    source = text.lstrip(" \t")  # eval() strips leading blanks too
    common = _COMMON.fullmatch(source)
    if common is not None and _RESERVED.isdisjoint(_WORD.findall(source)):
        parts = common.groups()
        # Most annotations are ``A[T, M(f)]``: read that shape in one match.
        return (
            "common",
            *(part if "." not in part else tuple(part.split(".")) for part in parts),
        )
    if not _SUPPORTED.fullmatch(source):
        return None
    tokens = _TOKEN.findall(source)  # with the check above, they cover the text
    count = len(tokens)
    stack: list[list[Any]] = []
    at = 0
    while True:
        # An expression starts: a name, then its trailers.
        if at >= count or not _is_name(tokens[at]):
            return None
        node: _Node = ("name", tokens[at])
        at += 1
        while at < count:
            token = tokens[at]
            if token == ".":
                if at + 1 >= count or not _is_name(tokens[at + 1]):
                    return None
                node = ("attr", node, tokens[at + 1])
                at += 2
            elif token in _OPENING:
                if len(stack) >= _MAX_NESTING:
                    return None
                if token == "(" and at + 1 < count and tokens[at + 1] == ")":
                    node = ("call", node, ())
                    at += 2
                    continue
                stack.append([node, token, [], False])
                at += 1
                break  # an item starts
            elif token == "," or token in _CLOSING:
                if not stack:
                    return None
                frame = stack[-1]
                frame[2].append(node)
                if token == ",":
                    at += 1
                    if at < count and tokens[at] == _CLOSING_OF[frame[1]]:
                        frame[3] = True
                        token = tokens[at]
                    else:
                        break  # the next item starts
                if token != _CLOSING_OF[frame[1]]:
                    return None
                stack.pop()
                target, bracket, items, comma = frame
                if bracket == "(":
                    node = ("call", target, tuple(items))
                else:
                    node = ("sub", target, tuple(items), comma or len(items) > 1)
                at += 1
            else:
                return None
        else:
            return None if stack else node


_OPENING: Final = frozenset("[(")
_CLOSING: Final = frozenset("])")
_CLOSING_OF: Final = {"[": "]", "(": ")"}


_RESERVED: Final = frozenset((*keyword.kwlist, "__debug__"))  # not looked up


def _is_name(token: str) -> bool:
    """A name token: not a number, punctuation, a keyword or ``__debug__``."""
    first = token[0]
    return (first.isalpha() or first == "_") and token not in _RESERVED
