"""Introspection: what a callable needs, read once from its signature.

``introspect(call)`` turns a dependable into a :class:`Callee`: how it is invoked (its
:class:`CallKind`) and, per parameter, whether it is a dependency (a marker), the
security scopes, or a plain value (filled by name, or by type when the annotation is a
context type: that choice belongs to the compiler, which knows the container's types).
Nothing here runs per call.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, cast, get_args, get_origin

from ._errors import DeclarationError
from ._markers import Dependency, as_marker, is_security_scopes_type

__all__ = ["CallKind", "Callee", "Param", "ParamKind", "introspect", "qualname"]

EMPTY: Final = inspect.Parameter.empty
_MARKER_CALL: Final = re.compile(r"\b(?:Depends|Security)\s*\(")


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
    if isinstance(obj, functools.partial):
        return f"partial({qualname(obj.func)})"
    name: Any = getattr(obj, "__qualname__", None)
    if name is None:
        cls = type(obj)
        name = f"{cls.__qualname__}(...)" if callable(obj) else repr(obj)
        module: Any = cls.__module__
    else:
        module = getattr(obj, "__module__", None)
    if module and module not in ("builtins", "__main__"):
        return f"{module}.{name}"
    return str(name)


def _classify(call: Callable[..., Any]) -> CallKind:
    """FastAPI's classification (fastapi-semantics section 2.6), partials and wraps."""
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


def _partial_keywords(call: object) -> set[str]:
    """Names bound by keyword in (possibly nested) partials: never injected."""
    names: set[str] = set()
    while isinstance(call, functools.partial):
        names.update(call.keywords)
        call = call.func
    return names


def _signature(call: Callable[..., Any], path: tuple[str, ...]) -> inspect.Signature:
    try:
        return inspect.signature(call, eval_str=True)
    except NameError:
        # Names imported only under TYPE_CHECKING: FastAPI falls back to the strings.
        return inspect.signature(call)
    except (TypeError, ValueError) as exc:
        msg = f"cannot read the signature of {qualname(call)}: {exc}"
        raise DeclarationError(
            msg,
            path=path,
            callable=qualname(call),
            hint="depend on a function, class or callable object with a signature",
        ) from exc
    except Exception as exc:  # an annotation string that raises or is not Python
        msg = (
            f"cannot evaluate the annotations of {qualname(call)}:"
            f" {type(exc).__name__}: {exc}"
        )
        raise DeclarationError(
            msg,
            path=path,
            callable=qualname(call),
            hint="fix the annotation: string annotations are evaluated in the"
            " defining module's namespace",
        ) from exc


def introspect(call: Callable[..., Any], path: tuple[str, ...] = ()) -> Callee:
    """Read *call*'s parameters and kind; raise :class:`DeclarationError` if unusable.

    *path* is the dependency path to *call*, used in error messages.
    """
    if not callable(cast(object, call)):
        msg = f"{call!r} is not callable"
        raise DeclarationError(
            msg,
            path=path,
            callable=repr(call),
            hint="pass a function, class or callable object to Depends()",
        )
    name = qualname(call)
    where = (*path, name) if not path or path[-1] != name else path
    signature = _signature(call, where)
    bound_by_partial = _partial_keywords(call)
    params: list[Param] = []
    for p in signature.parameters.values():
        if p.name in bound_by_partial:
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD):
            what = {
                p.POSITIONAL_ONLY: "positional-only",
                p.VAR_POSITIONAL: "variadic (*args)",
                p.VAR_KEYWORD: "variadic (**kwargs)",
            }[p.kind]
            msg = (
                f"{name} has a {what} parameter {p.name!r};"
                " arguments are passed by name"
            )
            raise DeclarationError(
                msg,
                path=where,
                callable=name,
                parameter=p.name,
                hint="make it a regular or keyword-only parameter, or wrap the"
                " callable in a function with named parameters",
            )
        params.append(_param(p, name, where))
    return Callee(call=call, kind=_classify(call), params=tuple(params), name=name)


def _param(p: inspect.Parameter, owner: str, path: tuple[str, ...]) -> Param:
    """Classify one parameter (fastapi-semantics section 2.2, in that order)."""
    annotation: Any = p.annotation
    if as_marker(annotation) is not None:
        msg = f"{owner}.{p.name} uses a dependency marker as its annotation"
        raise DeclarationError(
            msg,
            path=path,
            callable=owner,
            parameter=p.name,
            hint=f"write {p.name}: Annotated[T, Depends(f)] or {p.name}=Depends(f)",
        )
    annotated_marker: Dependency | None = None
    if get_origin(annotation) is Annotated:
        args = get_args(annotation)
        annotation = args[0]
        for meta in args[1:]:  # the last marker wins
            marker = as_marker(meta)
            if marker is not None:
                annotated_marker = marker
    default_marker = as_marker(p.default)
    if annotated_marker is not None and default_marker is not None:
        msg = f"{owner}.{p.name} declares a dependency both in Annotated and as default"
        raise DeclarationError(
            msg,
            path=path,
            callable=owner,
            parameter=p.name,
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
            f"the annotation of {owner}.{p.name} ({annotation!r}) declares a"
            " dependency but could not be evaluated"
        )
        raise DeclarationError(
            msg,
            path=path,
            callable=owner,
            parameter=p.name,
            hint="import the names it uses at module level (not only under"
            f" TYPE_CHECKING), or write the marker as a default: {p.name}=Depends(f)",
        )
    if marker is not None:
        if marker.dependency is None:
            marker = _from_annotation(marker, annotation, owner, p.name, path)
        return Param(p.name, ParamKind.DEPENDENCY, annotation, EMPTY, marker)
    default = p.default
    if is_security_scopes_type(annotation):
        return Param(p.name, ParamKind.SECURITY_SCOPES, annotation, default)
    return Param(p.name, ParamKind.VALUE, annotation, default)


def _from_annotation(
    marker: Dependency, annotation: Any, owner: str, name: str, path: tuple[str, ...]
) -> Dependency:
    """``Depends()`` with no callable: the annotation is the dependency."""
    hint = f"write Depends(some_callable), or annotate {name} with a class"
    if annotation is EMPTY:
        msg = f"Depends() on {owner}.{name} has no callable and no annotation"
        raise DeclarationError(
            msg, path=path, callable=owner, parameter=name, hint=hint
        )
    if isinstance(annotation, str) or not callable(annotation):
        msg = (
            f"Depends() on {owner}.{name}: the annotation {annotation!r}"
            " is not callable"
        )
        raise DeclarationError(
            msg, path=path, callable=owner, parameter=name, hint=hint
        )
    return marker.with_dependency(annotation)
