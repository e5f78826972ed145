"""Compile-time rules: what a plan may not contain, and how each mistake is worded.

The compiler's walk calls the error factories here when a declaration breaks a rule
(so the walk stays about walking), and runs the whole-plan checks on the finished
nodes. Every error names the path, the callable, the parameter and the fix. Paths are
built here, from sites, only when an error is raised.
"""

from __future__ import annotations

from ._errors import CycleError, DeclarationError, LifetimeError
from ._lifetime import Lifetime
from ._plan import Node, Site

__all__ = [
    "app_context",
    "app_value",
    "check_indirect_lifetimes",
    "check_permits",
    "cycle",
    "direct_lifetime",
    "root_generator",
    "unhashable",
]


def root_generator(name: str) -> DeclarationError:
    """The root yields: only dependencies have a teardown."""
    msg = f"the root {name} is a generator; only dependencies may yield"
    return DeclarationError(
        msg,
        path=(name,),
        callable=name,
        hint="call a function that takes the yield dependency as a parameter",
    )


def direct_lifetime(
    parent: Site, parent_lifetime: Lifetime, child: str, scope: str | None, param: str
) -> LifetimeError:
    """A declaration *parent* may not make (see ``_lifetime.may_depend_on``)."""
    parent_name = parent.name
    path = (*parent.path(), child)
    if parent_lifetime is Lifetime.APP:
        msg = (
            f"app-scoped {parent_name} depends on {child}, which lives shorter"
            f" ({scope or 'request'} scope)"
        )
        return LifetimeError(
            msg,
            path=path,
            callable=parent_name,
            parameter=param,
            hint=f'declare it Depends({child.rsplit(".", 1)[-1]}, scope="app"),'
            f" or make {parent_name} request-scoped",
        )
    msg = (
        f"request-scoped yield dependency {parent_name} depends on {child}, which"
        ' has scope="function" and is torn down first'
    )
    return LifetimeError(
        msg,
        path=path,
        callable=parent_name,
        parameter=param,
        hint=f'give {parent_name} scope="function" too, or drop scope="function"'
        f" from {child}",
    )


def unhashable(parent: Site, name: str, param: str) -> DeclarationError:
    """A cached declaration of a callable that cannot key the cache."""
    msg = f"{name} is unhashable, so it cannot key the cache"
    return DeclarationError(
        msg,
        path=(*parent.path(), name),
        callable=name,
        parameter=param,
        hint="make the callable hashable (e.g. a frozen dataclass), or"
        " declare it with use_cache=False",
    )


def cycle(parent: Site, name: str, param: str) -> CycleError:
    """*name*, declared under *parent*, is already on the path to it."""
    names = [*parent.path(), name]
    start = next((i for i, n in enumerate(names[:-1]) if n == name), 0)
    msg = f"dependency cycle: {' -> '.join(names[start:])}"
    return CycleError(
        msg,
        path=names,
        callable=name,
        parameter=param,
        hint="break the cycle: one of these must not depend on the other"
        " (pass the value in, or split the dependable)",
    )


def app_value(site: Site, param: str) -> LifetimeError:
    """An app-scoped dependable asks for a per-call value without a default."""
    owner = site.name
    msg = (
        f"app-scoped {owner} takes the per-call value {param!r}; an app-scoped"
        " value cannot depend on a call"
    )
    return LifetimeError(
        msg,
        path=site.path(),
        callable=owner,
        parameter=param,
        hint="give the parameter a default, provide it through an"
        ' app-scoped Depends(..., scope="app"), or make the'
        " dependency request-scoped",
    )


def app_context(site: Site, context: type, param: str) -> LifetimeError:
    """An app-scoped dependable asks for an object that belongs to a scope."""
    owner = site.name
    msg = (
        f"app-scoped {owner} takes {context.__qualname__} by type, which belongs"
        " to a scope"
    )
    return LifetimeError(
        msg,
        path=site.path(),
        callable=owner,
        parameter=param,
        hint="make the dependency request-scoped, or pass what it needs"
        ' through an app-scoped Depends(..., scope="app")',
    )


def check_indirect_lifetimes(nodes: tuple[Node, ...]) -> None:
    """A request-scoped ``yield`` dependency may not reach a function-scoped one
    through plain dependencies either: that one is torn down when the call returns,
    before its indirect dependent (docs/semantics.md §6). FastAPI checks direct edges
    only."""
    below: list[Node | None] = [None] * len(nodes)
    for node in nodes:
        found: Node | None = None
        for dep in node.deps:
            child = nodes[dep]
            if child.lifetime is Lifetime.FUNCTION and child.kind.is_generator:
                found = child
            else:
                found = below[dep]
            if found is not None:
                break
        below[node.index] = found
        if (
            found is not None
            and node.lifetime is Lifetime.REQUEST
            and node.kind.is_generator
            and not node.alias
        ):
            found_path = found.path
            through = " -> ".join(found_path[len(node.path) - 1 :]) or found.name
            msg = (
                f"request-scoped yield dependency {node.name} depends (through"
                f" {through}) on {found.name}, which has scope="
                '"function" and is torn down first'
            )
            raise LifetimeError(
                msg,
                path=found_path,
                callable=node.name,
                hint=f'give {node.name} scope="function" too, or drop'
                f' scope="function" from {found.name}',
            )


def check_permits(nodes: tuple[Node, ...], root: str) -> None:
    """A yield dependency holds its ``max_concurrency`` permit until its teardown,
    after the call: a call that needs more permits of one declaration than it has
    would wait for itself forever."""
    by_token: dict[int, list[Node]] = {}
    for node in nodes:
        if node.limit is not None:
            by_token.setdefault(id(node.limit[0]), []).append(node)
    for users in by_token.values():
        total = users[0].limit[1] if users[0].limit is not None else 0
        holders = [n for n in users if n.kind.is_generator]
        if len(holders) > total or (len(holders) == total and len(users) > total):
            msg = (
                f"{root} needs {len(users)} permits of a max_concurrency={total}"
                f" declaration of {users[0].name}, and {len(holders)} of them are"
                " held by yield dependencies until the call's teardown: it would wait"
                " for itself forever"
            )
            raise DeclarationError(
                msg,
                path=users[-1].path,
                callable=users[-1].name,
                hint="raise max_concurrency, let the uses share one cached value"
                " (use_cache=True), or use separate Depends objects",
            )
