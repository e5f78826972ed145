"""The request inputs of a plan: its *leaf* parameters, as FastAPI should read them.

anydepends fills a plan's plain parameters by name from the values of a call. Inside a
FastAPI app those values are the request's path, query, header, cookie and body
parameters, declared by the dependables themselves (``Annotated[int, Query(le=9)]``,
``Header()``...). So the bridge endpoint hands FastAPI exactly these parameters, copied
from each dependable's own signature, and FastAPI parses and validates them as usual.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.dependencies.utils import analyze_param, get_typed_signature
from starlette.routing import compile_path

from .. import DeclarationError, Node, Plan

__all__ = ["leaf_parameters", "preorder"]


def preorder(plan: Plan[Any]) -> list[Node]:
    """The plan's nodes in FastAPI's *flattening* order: a node, then its children.

    FastAPI lists a route's parameters (OpenAPI, body fields) walking its dependency
    tree pre-order: the endpoint's own parameters, then each dependency's subtree in
    declaration order. A plan stores nodes post-order (dependencies first); a node's
    ``deps`` are its children in declaration order (route-level dependencies first).
    """
    nodes = plan.nodes
    seen: set[int] = set()
    order: list[Node] = []
    stack = [nodes[-1].index]
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        node = nodes[index]
        order.append(node)
        stack.extend(reversed(node.deps))
    return order


def leaf_parameters(plan: Plan[Any], path: str) -> list[inspect.Parameter]:
    """Every value parameter of *plan*, once per name, as keyword-only parameters.

    A name declared by several dependables is one value in anydepends; the
    declarations must agree on where the value comes from and on its type. When one
    of them is required and another is not, the required one is used (FastAPI would
    answer 422 for the missing value either way).

    Raises:
        DeclarationError: if two declarations of one name disagree.
    """
    path_params = set(compile_path(path)[2])
    chosen: dict[str, tuple[inspect.Parameter, Node, _Where]] = {}
    for node in preorder(plan):
        if not node.values:
            continue
        signature = get_typed_signature(node.call)
        for name, _default in node.values:
            declared = signature.parameters[name]
            param = inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=declared.default,
                annotation=declared.annotation,
            )
            where = _where(param, path_params)
            if name not in chosen:
                chosen[name] = (param, node, where)
                continue
            _first, first_node, first_where = chosen[name]
            if where.location is not first_where.location or not _same_type(
                where.type, first_where.type
            ):
                msg = (
                    f"the request value {name!r} is declared differently by"
                    f" {first_node.name} ({first_where}) and {node.name} ({where});"
                    " anydepends fills one value per name"
                )
                raise DeclarationError(
                    msg,
                    path=node.path,
                    callable=node.name,
                    parameter=name,
                    hint="rename one of the parameters (an alias keeps the request"
                    " name: Query(alias=...)), or declare them alike",
                )
            if where.required and not first_where.required:
                chosen[name] = (param, node, where)
    return [param for param, _node, _where_ in chosen.values()]


class _Where:
    """Where FastAPI reads a parameter from (its field class) and its type."""

    __slots__ = ("location", "required", "type")

    def __init__(self, location: type, type_: Any, required: bool) -> None:
        self.location = location
        self.type = type_
        self.required = required

    def __str__(self) -> str:
        kind = self.location.__name__.lower()
        return f"{kind} {getattr(self.type, '__name__', repr(self.type))}"


def _where(param: inspect.Parameter, path_params: set[str]) -> _Where:
    details = analyze_param(
        param_name=param.name,
        annotation=param.annotation,
        value=param.default,
        path_param_names=path_params,
    )
    if details.field is None:  # a FastAPI-injected object FastAPI would fill
        return _Where(type(None), details.type_annotation, False)
    info = details.field.field_info
    return _Where(type(info), details.type_annotation, info.is_required())


def _same_type(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an annotation with an unusual __eq__
        return a is b
