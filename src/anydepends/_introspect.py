"""Introspection: what a callable needs, read once from its signature.

``introspect(call)`` turns a dependable into a :class:`Callee`: how it is invoked (its
:class:`CallKind`) and, per parameter, whether it is a dependency (a marker), the
security scopes, or a plain value (filled by name, or by type when the annotation is a
context type: that choice belongs to the compiler, which knows the container's types).
Nothing here runs per call.

Plain functions (most dependables) are read from their code object and their
annotations the way ``inspect.signature(eval_str=True)`` reads them, with string
annotations evaluated by ``_annotations``; everything else goes through
``inspect.signature``. The compiler caches what is read in ``_shapes``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, cast

from ._annotations import Split, evaluate
from ._errors import DeclarationError
from ._markers import Dependency, as_marker, is_security_scopes_type

__all__ = [
    "CallKind",
    "Callee",
    "Param",
    "ParamKind",
    "Shape",
    "introspect",
    "qualname",
    "read",
]

EMPTY: Final = inspect.Parameter.empty
_MARKER_CALL: Final = re.compile(r"\b(?:Depends|Security)\s*\(")
_ANNOTATED_ALIAS: Final[Any] = type(Annotated[int, 0])

# inspect.Parameter kinds, and the code flags that classify a plain function.
_POSITIONAL_ONLY: Final = inspect.Parameter.POSITIONAL_ONLY
_POSITIONAL_OR_KEYWORD: Final = inspect.Parameter.POSITIONAL_OR_KEYWORD
_VAR_POSITIONAL: Final = inspect.Parameter.VAR_POSITIONAL
_KEYWORD_ONLY: Final = inspect.Parameter.KEYWORD_ONLY
_VAR_KEYWORD: Final = inspect.Parameter.VAR_KEYWORD
_CO_VARARGS: Final = inspect.CO_VARARGS
_CO_VARKEYWORDS: Final = inspect.CO_VARKEYWORDS
_CO_GENERATOR: Final = inspect.CO_GENERATOR
_CO_COROUTINE: Final = inspect.CO_COROUTINE
_CO_ASYNC_GENERATOR: Final = inspect.CO_ASYNC_GENERATOR
# Function attributes that make inspect look past the code object (wrappers, explicit
# signatures, partialmethods, 3.12's markcoroutinefunction): such functions take the
# general path.
_SPECIAL_ATTRIBUTES: Final = frozenset(
    {"__wrapped__", "__signature__", "_partialmethod", "_is_coroutine_marker"}
)


class CallKind(enum.IntEnum):
    """How a dependable is invoked."""

    ASYNC = 0  #: ``await call(...)``
    SYNC = 1  #: ``call(...)``, in a worker thread by default
    ASYNC_GEN = 2  #: an async generator: the yielded value is injected
    SYNC_GEN = 3  #: a sync generator: the yielded value is injected

    @property
    def is_generator(self) -> bool:
        """Whether this kind has a teardown (a ``yield`` dependency)."""
        return self >= CallKind.ASYNC_GEN


class ParamKind(enum.IntEnum):
    """Where a parameter's argument comes from."""

    DEPENDENCY = 0  #: another dependable's value
    SECURITY_SCOPES = 1  #: a ``SecurityScopes`` built for the node
    VALUE = 2  #: a call value by name, or a context object by type (compiler decides)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a dependable, classified."""

    name: str
    kind: ParamKind
    annotation: Any  # the bare type (``T`` of ``Annotated[T, ...]``), or EMPTY
    default: Any  # EMPTY when required
    marker: Dependency | None = None  # for DEPENDENCY, with ``dependency`` filled in


@dataclass(frozen=True, slots=True)
class Shape:
    """What a callable declares, whichever object it is: kind, parameters, name."""

    kind: CallKind
    params: tuple[Param, ...]
    name: str
    declares_scopes: bool  # whether a parameter receives ``SecurityScopes``


@dataclass(frozen=True, slots=True)
class Callee:
    """A dependable as the compiler sees it."""

    call: Callable[..., Any]
    kind: CallKind
    params: tuple[Param, ...]
    name: str

    @property
    def declares_scopes(self) -> bool:
        """Whether a parameter receives ``SecurityScopes``."""
        return any(p.kind is ParamKind.SECURITY_SCOPES for p in self.params)


def qualname(obj: object) -> str:
    """A readable, qualified name for any callable (for messages and explanations)."""
    wrappers = 0
    while isinstance(obj, functools.partial):
        obj = cast(object, obj.func)
        wrappers += 1
    name: Any = getattr(obj, "__qualname__", None)
    if name is None:
        cls = type(obj)
        name = f"{cls.__qualname__}(...)" if callable(obj) else repr(obj)
        module: Any = cls.__module__
    else:
        module = getattr(obj, "__module__", None)
    text = str(name)
    if module and module not in ("builtins", "__main__"):
        text = f"{module}.{name}"
    return "partial(" * wrappers + text + ")" * wrappers


def introspect(call: Callable[..., Any], path: tuple[str, ...] = ()) -> Callee:
    """Read *call*'s parameters and kind; raise :class:`DeclarationError` if unusable.

    *path* is the dependency path to *call*, used in error messages. Not cached: the
    compiler reads through ``_shapes.shape_of``.
    """
    shape = read(call, lambda: path)
    return Callee(call=call, kind=shape.kind, params=shape.params, name=shape.name)


# -- reading one callable -------------------------------------------------------------
def read(call: Callable[..., Any], where: Callable[[], tuple[str, ...]]) -> Shape:
    """Read *call*'s :class:`Shape` (uncached); *where* gives the dependency path to
    it, only for error messages. Plain functions are read from their code object, the
    way inspect.signature reads them; everything else goes through inspect."""
    if not callable(cast(object, call)):
        msg = f"{call!r} is not callable"
        raise DeclarationError(
            msg,
            path=where(),
            callable=repr(call),
            hint="pass a function, class or callable object to Depends()",
        )
    name = qualname(call)

    def located() -> tuple[str, ...]:
        path = where()
        return (*path, name) if not path or path[-1] != name else path

    function, bound = _plain_function(call)
    if function is not None:
        entries = _function_parameters(function, bound, name, located)
        params = _params(entries, name, located)
        kind = _kind_of_code(function.__code__.co_flags)
    else:
        entries = _signature_parameters(call, name, located)
        params = _params(entries, name, located)
        kind = _classify(call)
    scopes = any(p.kind is ParamKind.SECURITY_SCOPES for p in params)
    return Shape(kind=kind, params=params, name=name, declares_scopes=scopes)


def _plain_function(call: object) -> tuple[types.FunctionType | None, bool]:
    """The function behind *call* if inspect would read its code object directly."""
    bound = False
    if type(call) is types.MethodType:
        call = call.__func__
        bound = True
    if type(call) is not types.FunctionType:
        return None, False
    function: types.FunctionType = call
    if function.__dict__ and not _SPECIAL_ATTRIBUTES.isdisjoint(function.__dict__):
        return None, False
    code = function.__code__
    if bound and code.co_argcount == 0:
        return None, False  # inspect's "invalid method signature", said its way
    return function, bound


def _kind_of_code(flags: int) -> CallKind:
    """FastAPI's classification of a plain function, from its code flags."""
    if flags & _CO_ASYNC_GENERATOR:
        return CallKind.ASYNC_GEN
    if flags & _CO_GENERATOR:
        return CallKind.SYNC_GEN
    if flags & _CO_COROUTINE:
        return CallKind.ASYNC
    return CallKind.SYNC


def _classify(call: Callable[..., Any]) -> CallKind:
    """FastAPI's classification (docs/semantics.md §2), partials and wraps."""
    if isinstance(call, type):
        return CallKind.SYNC  # a class is called for its constructor, never awaited
    candidates: list[object] = []
    layer: object = call
    for _ in range(100):
        candidates.append(layer)
        if isinstance(layer, functools.partial):
            layer = layer.func
        elif hasattr(layer, "__wrapped__"):
            layer = getattr(layer, "__wrapped__")  # noqa: B009 - typed as object
        else:
            break
    funcs: list[object] = []
    for c in candidates:
        if inspect.isroutine(c) or isinstance(c, functools.partial):
            funcs.append(cast(object, c))
        elif not isinstance(c, type):
            dunder = getattr(type(c), "__call__", None)  # noqa: B004 - the attribute
            # FastAPI also looks through a decorated __call__ (a sync wrapper around
            # an async method is awaited, one around a generator is a generator).
            for _ in range(100):
                if dunder is None:
                    break
                funcs.append(dunder)
                if isinstance(dunder, functools.partial):
                    dunder = dunder.func
                else:
                    dunder = getattr(dunder, "__wrapped__", None)
    if any(inspect.isasyncgenfunction(f) for f in funcs):
        return CallKind.ASYNC_GEN
    if any(inspect.isgeneratorfunction(f) for f in funcs):
        return CallKind.SYNC_GEN
    if any(inspect.iscoroutinefunction(f) for f in funcs):
        return CallKind.ASYNC
    return CallKind.SYNC


# One parameter before classification: name, inspect kind, annotation, default.
_Raw = tuple[str, Any, Any, Any]


def _function_parameters(
    function: types.FunctionType,
    bound: bool,
    name: str,
    located: Callable[[], tuple[str, ...]],
) -> list[_Raw]:
    """A plain function's parameters in inspect's order, as inspect.signature reads
    them (code object, defaults, annotations evaluated in the function's globals)."""
    annotations = _annotations(function, name, located)
    code = function.__code__
    count = code.co_argcount
    names = code.co_varnames
    posonly = code.co_posonlyargcount
    kwonly = code.co_kwonlyargcount
    defaults = function.__defaults__ or ()
    first_default = count - len(defaults)
    get = annotations.get
    raw: list[_Raw] = []
    for i in range(count):
        param = names[i]
        default = defaults[i - first_default] if i >= first_default else EMPTY
        kind = _POSITIONAL_ONLY if i < posonly else _POSITIONAL_OR_KEYWORD
        raw.append((param, kind, get(param, EMPTY), default))
    flags = code.co_flags
    position = count + kwonly
    if flags & _CO_VARARGS:
        param = names[position]
        raw.append((param, _VAR_POSITIONAL, get(param, EMPTY), EMPTY))
        position += 1
    kwdefaults = function.__kwdefaults__ or {}
    raw.extend(
        (param, _KEYWORD_ONLY, get(param, EMPTY), kwdefaults.get(param, EMPTY))
        for param in names[count : count + kwonly]
    )
    if flags & _CO_VARKEYWORDS:
        param = names[position]
        raw.append((param, _VAR_KEYWORD, get(param, EMPTY), EMPTY))
    return raw[1:] if bound else raw


def _annotations(
    function: types.FunctionType, name: str, located: Callable[[], tuple[str, ...]]
) -> dict[str, Any]:
    """The function's annotations, strings evaluated as inspect.signature(eval_str=True)
    does (all of them, in order; the return annotation too), with its fallback."""
    annotations: dict[str, Any] = function.__annotations__
    if not any(isinstance(v, str) for v in annotations.values()):
        return annotations
    namespace = function.__globals__
    try:
        return {
            key: evaluate(value, namespace) if isinstance(value, str) else value
            for key, value in annotations.items()
        }
    except NameError:
        # Names imported only under TYPE_CHECKING: FastAPI falls back to the strings.
        return annotations
    except (TypeError, ValueError) as exc:
        raise _unreadable(name, exc, located) from exc
    except Exception as exc:  # an annotation string that raises or is not Python
        raise _unevaluable(name, exc, located) from exc


def _signature_parameters(
    call: Callable[..., Any], name: str, located: Callable[[], tuple[str, ...]]
) -> list[_Raw]:
    """Any other callable's parameters, through inspect.signature."""
    try:
        signature = inspect.signature(call, eval_str=True)
    except NameError:
        # Names imported only under TYPE_CHECKING: FastAPI falls back to the strings.
        signature = inspect.signature(call)
    except (TypeError, ValueError) as exc:
        raise _unreadable(name, exc, located) from exc
    except Exception as exc:  # an annotation string that raises or is not Python
        raise _unevaluable(name, exc, located) from exc
    bound_by_partial = _partial_keywords(call)
    return [
        (p.name, p.kind, p.annotation, p.default)
        for p in signature.parameters.values()
        if p.name not in bound_by_partial
    ]


def _unreadable(
    name: str, exc: Exception, located: Callable[[], tuple[str, ...]]
) -> DeclarationError:
    msg = f"cannot read the signature of {name}: {exc}"
    return DeclarationError(
        msg,
        path=located(),
        callable=name,
        hint="depend on a function, class or callable object with a signature",
    )


def _unevaluable(
    name: str, exc: Exception, located: Callable[[], tuple[str, ...]]
) -> DeclarationError:
    msg = f"cannot evaluate the annotations of {name}: {type(exc).__name__}: {exc}"
    return DeclarationError(
        msg,
        path=located(),
        callable=name,
        hint="fix the annotation: string annotations are evaluated in the"
        " defining module's namespace",
    )


def _partial_keywords(call: object) -> set[str]:
    """Names bound by keyword in (possibly nested) partials: never injected."""
    names: set[str] = set()
    while isinstance(call, functools.partial):
        names.update(call.keywords)
        call = call.func
    return names


_UNNAMED: Final = {
    _POSITIONAL_ONLY: "positional-only",
    _VAR_POSITIONAL: "variadic (*args)",
    _VAR_KEYWORD: "variadic (**kwargs)",
}


def _params(
    raw: list[_Raw], owner: str, located: Callable[[], tuple[str, ...]]
) -> tuple[Param, ...]:
    """Classify parameters in order; refuse those that cannot be passed by name."""
    params: list[Param] = []
    for name, kind, annotation, default in raw:
        if kind is not _POSITIONAL_OR_KEYWORD and kind is not _KEYWORD_ONLY:
            what = _UNNAMED[kind]
            msg = (
                f"{owner} has a {what} parameter {name!r}; arguments are passed by name"
            )
            raise DeclarationError(
                msg,
                path=located(),
                callable=owner,
                parameter=name,
                hint="make it a regular or keyword-only parameter, or wrap the"
                " callable in a function with named parameters",
            )
        params.append(_param(name, annotation, default, owner, located))
    return tuple(params)


def _param(
    name: str,
    annotation: Any,
    default: Any,
    owner: str,
    located: Callable[[], tuple[str, ...]],
) -> Param:
    """Classify one parameter (as FastAPI does, in its order: docs/semantics.md §1)."""
    if type(annotation) is not Split and as_marker(annotation) is not None:
        msg = f"{owner}.{name} uses a dependency marker as its annotation"
        raise DeclarationError(
            msg,
            path=located(),
            callable=owner,
            parameter=name,
            hint=f"write {name}: Annotated[T, Depends(f)] or {name}=Depends(f)",
        )
    annotated_marker: Dependency | None = None
    metadata: tuple[Any, ...] = ()
    if type(annotation) is Split:
        metadata = annotation.metadata
        annotation = annotation.origin
    elif isinstance(annotation, _ANNOTATED_ALIAS):
        alias: Any = annotation
        metadata = alias.__metadata__
        annotation = alias.__origin__
    for meta in metadata:  # the last marker wins
        marker = as_marker(meta)
        if marker is not None:
            annotated_marker = marker
    default_marker = None if default is EMPTY else as_marker(default)
    if annotated_marker is not None and default_marker is not None:
        msg = f"{owner}.{name} declares a dependency both in Annotated and as default"
        raise DeclarationError(
            msg,
            path=located(),
            callable=owner,
            parameter=name,
            hint="keep one: either Annotated[T, Depends(f)] or = Depends(f)",
        )
    marker = annotated_marker or default_marker
    if (
        marker is None
        and isinstance(annotation, str)
        and _MARKER_CALL.search(annotation)
    ):
        # FastAPI silently treats the parameter as a plain input; that hides a
        # dependency behind a confusing "missing value" later.
        msg = (
            f"the annotation of {owner}.{name} ({annotation!r}) declares a"
            " dependency but could not be evaluated"
        )
        raise DeclarationError(
            msg,
            path=located(),
            callable=owner,
            parameter=name,
            hint="import the names it uses at module level (not only under"
            f" TYPE_CHECKING), or write the marker as a default: {name}=Depends(f)",
        )
    if marker is not None:
        if marker.dependency is None:
            marker = _from_annotation(marker, annotation, owner, name, located)
        return Param(name, ParamKind.DEPENDENCY, annotation, EMPTY, marker)
    if is_security_scopes_type(annotation):
        return Param(name, ParamKind.SECURITY_SCOPES, annotation, default)
    return Param(name, ParamKind.VALUE, annotation, default)


def _from_annotation(
    marker: Dependency,
    annotation: Any,
    owner: str,
    name: str,
    located: Callable[[], tuple[str, ...]],
) -> Dependency:
    """``Depends()`` with no callable: the annotation is the dependency."""
    hint = f"write Depends(some_callable), or annotate {name} with a class"
    if annotation is EMPTY:
        msg = f"Depends() on {owner}.{name} has no callable and no annotation"
        raise DeclarationError(
            msg, path=located(), callable=owner, parameter=name, hint=hint
        )
    if isinstance(annotation, str) or not callable(annotation):
        msg = (
            f"Depends() on {owner}.{name}: the annotation {annotation!r}"
            " is not callable"
        )
        raise DeclarationError(
            msg, path=located(), callable=owner, parameter=name, hint=hint
        )
    return marker.with_dependency(annotation)
