"""The package's structure: one-way imports, and nothing process-global.

Data flows one way (declarations -> plan -> engine -> owners -> features, see
``docs/concepts.md``), so the modules of ``src/anydepends`` import each other without
a single cycle. An import inside a function counts like any other (a local import that
dodges a cycle is still a cycle); only imports under ``if TYPE_CHECKING:`` are
annotations, not dependencies.
"""

from __future__ import annotations

import ast
from pathlib import Path

import anydepends

SRC = Path(anydepends.__file__).parent


def _imports(path: Path) -> set[str]:
    """The ``anydepends`` modules *path* imports at run time (any depth)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    package = path.parent.relative_to(SRC.parent).as_posix().replace("/", ".")
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                module = f"{base}.{node.module}" if node.module else base
                names = (
                    [module]
                    if node.module
                    else [f"{base}.{a.name}" for a in node.names]
                )
            else:
                names = [node.module or ""]
            found.update(n for n in names if n.startswith("anydepends"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("anydepends"))
    return found


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path) if d in modules and d != name}
        # The package itself re-exports the public names: not an engine edge.
        graph[name] = deps - {"anydepends"}
    return graph


def test_no_import_cycle_among_the_modules() -> None:
    """No module of the package imports (at run time, at any depth) a module that
    imports it back, directly or through others."""
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_library_code_never_changes_the_recursion_limit() -> None:
    """No module of the package calls ``sys.setrecursionlimit``: nothing recurses on
    graph depth, and nothing changes process-wide state."""
    offenders = [
        _module(p)
        for p in SRC.rglob("*.py")
        if "setrecursionlimit" in p.read_text(encoding="utf-8")
    ]
    assert not offenders
