"""FastAPI reads the endpoint's declarations too: they must be FastAPI's markers.

The route class leaves the endpoint's analysis (OpenAPI, validation) to FastAPI,
which recognises only its own ``Depends``/``Security``. An ``anydepends.Depends`` in
the graph would be read by FastAPI as a request parameter (or refused), so it is
refused at route creation, with the way out: FastAPI's ``Depends`` takes
``scope="app"`` too, and anydepends honours it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any, get_args, get_origin

from fastapi import params

from .. import DeclarationError, Dependency

__all__ = ["check_fastapi_can_read"]


def check_fastapi_can_read(
    endpoint: Callable[..., Any], dependencies: Iterable[Any]
) -> None:
    """Walk the graph FastAPI will analyse; refuse anydepends' own markers in it.

    Raises:
        DeclarationError: naming the first parameter declared with one.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(endpoint, ())]
    stack.extend((d.dependency, ()) for d in dependencies if _is_fastapi(d))
    seen: set[int] = set()
    while stack:
        call, path = stack.pop()
        if call is None or id(call) in seen:
            continue
        seen.add(id(call))
        here = (*path, _name(call))
        for name, annotation, markers in _parameters(call):
            for marker in markers:
                if isinstance(marker, Dependency):
                    _refuse(here, name, marker)
                if _is_fastapi(marker):
                    dependency = marker.dependency
                    if dependency is None:  # Depends(): the annotation is the callable
                        dependency = annotation
                    stack.append((dependency, here))


def _name(call: object) -> str:
    return str(getattr(call, "__qualname__", None) or repr(call))


def _is_fastapi(marker: object) -> bool:
    return isinstance(marker, params.Depends)


def _parameters(call: Any) -> list[tuple[str, Any, list[Any]]]:
    """(name, bare annotation, markers) per parameter; nothing if unreadable."""
    try:
        signature = inspect.signature(call, eval_str=True)
    except Exception:  # FastAPI (or the compiler) reports unreadable signatures
        return []
    found: list[tuple[str, Any, list[Any]]] = []
    for p in signature.parameters.values():
        annotation = p.annotation
        markers: list[Any] = [p.default]
        if get_origin(annotation) is Annotated:
            args = get_args(annotation)
            annotation = args[0]
            markers.extend(args[1:])
        found.append((p.name, annotation, markers))
    return found


def _refuse(path: tuple[str, ...], name: str, marker: Dependency) -> None:
    lifetime = f', scope="{marker.scope}"' if marker.scope else ""
    msg = (
        f"{path[-1]}.{name} is declared with anydepends.Depends, which FastAPI (that"
        " still analyses the endpoint for OpenAPI and validation) does not recognise"
    )
    raise DeclarationError(
        msg,
        path=path,
        callable=path[-1],
        parameter=name,
        hint=f"declare it with fastapi.Depends(...{lifetime}) or fastapi.Security:"
        ' anydepends honours every option, scope="app" included',
    )
