"""Explaining a plan: a readable tree, which nodes can overlap, Mermaid and DOT.

Everything here reads a compiled :class:`~anydepends.Plan` and nothing else: no
introspection, no running. Two nodes *can overlap* when neither reaches the other
through the plan's edges: the scheduler may then run them at the same time (async
ones really overlap; sync ones in worker threads too; inline sync ones interleave
with the others on the event loop). The *width* of a plan is the size of its largest
set of pairwise independent nodes (Dilworth: nodes minus a maximum matching of the
reachability relation): no call of the plan ever has more dependencies in flight.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._introspect import EMPTY, CallKind, qualname
from ._lifetime import Lifetime

if TYPE_CHECKING:
    from ._plan import Node, Plan

__all__ = [
    "ancestors",
    "can_overlap",
    "explain",
    "overlaps",
    "to_dot",
    "to_mermaid",
    "width",
]

# Above this many nodes the width (a matching on the reachability relation, cubic in
# the worst case) is not computed: explain() must stay instant on generated graphs.
_WIDTH_LIMIT: Final = 400
# Overlap lists longer than this are cut, with a count of the rest.
_OVERLAP_SHOWN: Final = 8
# Above this many nodes the overlap section is not computed (its bit sets take memory
# quadratic in the plan's size), unless the plan is a chain.
_OVERLAP_LIMIT: Final = 10_000
_NOTHING_OVERLAPS: Final = (
    "Can overlap: nothing (each dependency needs the one before it)."
)
# The tree indents at most this many levels; deeper lines show the innermost levels
# after a "⋯" (a deep chain would otherwise print text quadratic in its depth).
_INDENT_SHOWN: Final = 64

_KIND_TEXT: Final = {
    CallKind.ASYNC: "async",
    CallKind.SYNC: "sync",
    CallKind.ASYNC_GEN: "async yield",
    CallKind.SYNC_GEN: "sync yield",
}


# -- reachability ----------------------------------------------------------------------
def ancestors(plan: Plan[Any]) -> list[int]:
    """Per node, a bit set of every node it needs, directly or indirectly.

    Bit *j* of ``ancestors(plan)[i]`` is set when node *j* must finish before node *i*
    starts.
    """
    nodes = plan.nodes
    result = [0] * len(nodes)
    for index in _topological(plan):
        bits = 0
        for dep in nodes[index].deps:
            bits |= result[dep] | (1 << dep)
        result[index] = bits
    return result


def _topological(plan: Plan[Any]) -> list[int]:
    """Node indices with every node after its dependencies (Kahn's algorithm)."""
    nodes = plan.nodes
    pending = [len(set(node.deps)) for node in nodes]
    ready = [i for i, count in enumerate(pending) if not count]
    order: list[int] = []
    while ready:
        index = ready.pop()
        order.append(index)
        for dependent in set(plan.dependents[index]):
            pending[dependent] -= 1
            if not pending[dependent]:
                ready.append(dependent)
    return order


def can_overlap(bits: Sequence[int], a: int, b: int) -> bool:
    """Whether nodes *a* and *b* are independent, given :func:`ancestors` *bits*."""
    return a != b and not (bits[a] >> b) & 1 and not (bits[b] >> a) & 1


def descendants(plan: Plan[Any]) -> list[int]:
    """Per node, a bit set of every node that needs it, directly or indirectly."""
    nodes = plan.nodes
    result = [0] * len(nodes)
    for index in reversed(_topological(plan)):
        below = 0
        for dependent in plan.dependents[index]:
            below |= result[dependent] | (1 << dependent)
        result[index] = below
    return result


def _independent(plan: Plan[Any]) -> list[int]:
    """Per node, the bit set of nodes that can overlap it (never the root)."""
    count = len(plan.nodes)
    if count <= 1:
        return [0] * count
    before = ancestors(plan)
    after = descendants(plan)
    others = (1 << (count - 1)) - 1  # every node but the root
    result = [others & ~(before[i] | after[i] | (1 << i)) for i in range(count - 1)]
    result.append(0)
    return result


def overlaps(plan: Plan[Any]) -> list[list[int]]:
    """Per node, the nodes that can run at the same time as it (never the root)."""
    return [list(_bits(bits)) for bits in _independent(plan)]


def width(plan: Plan[Any]) -> int | None:
    """The most dependencies that can be in flight at once; ``None`` if too large.

    The root is excluded (it runs alone, after everything). By Dilworth's theorem the
    largest set of pairwise independent nodes equals the fewest chains covering the
    nodes, which is the node count minus a maximum matching of "reaches".
    """
    count = len(plan.nodes) - 1
    if count <= 0:
        return 0
    if count > _WIDTH_LIMIT:
        return None
    bits = ancestors(plan)
    # later[u]: nodes that need u (u reaches them), as index lists.
    later: list[list[int]] = [[] for _ in range(count)]
    for v in range(count):
        for u in _bits(bits[v]):
            if u < count:
                later[u].append(v)
    match_of: list[int] = [-1] * count  # right side v -> matched left u
    matched = sum(_augment(u, later, match_of) for u in range(count))
    return count - matched


def _augment(start: int, later: list[list[int]], match_of: list[int]) -> bool:
    """Kuhn's augmenting-path search from *start*, with an explicit stack."""
    seen = [False] * len(later)
    # Each frame: a left node and the position of the next edge to try.
    stack: list[list[int]] = [[start, 0]]
    via: list[int] = []  # the right node each frame reached its child through
    while stack:
        frame = stack[-1]
        u, position = frame
        edges = later[u]
        if position == len(edges):
            stack.pop()
            if via:
                via.pop()
            continue
        frame[1] = position + 1
        v = edges[position]
        if seen[v]:
            continue
        seen[v] = True
        if match_of[v] == -1:
            # Flip the path: every frame's node takes the right node it went through.
            via.append(v)
            for (left, _), right in zip(stack, via, strict=True):
                match_of[right] = left
            return True
        via.append(v)
        stack.append([match_of[v], 0])
    return False


def _bits(value: int) -> Iterator[int]:
    """The positions of the set bits of *value*, lowest first."""
    while value:
        low = value & -value
        yield low.bit_length() - 1
        value ^= low


# -- text ------------------------------------------------------------------------------
def kind_text(node: Node) -> str:
    """``async``, ``sync, worker thread``, ``sync yield, inline``, ..."""
    text = _KIND_TEXT[node.kind]
    if node.kind in (CallKind.SYNC, CallKind.SYNC_GEN):
        text += ", worker thread" if node.thread else ", inline"
    return text


def key_text(node: Node) -> str:
    """The cache key as FastAPI forms it: ``(callable, scopes, lifetime)``."""
    key: object = node.key
    if not isinstance(key, tuple):  # the root (None), or an unknown shape
        return repr(key)
    parts: tuple[object, ...] = key  # pyright: ignore[reportUnknownVariableType]
    if len(parts) != 3:
        return repr(parts)
    return f"({qualname(node.original)}, {parts[1]!r}, {parts[2]!r})"


def label(node: Node) -> str:
    """A node's name as declared: the original's, also when it is overridden."""
    return qualname(node.original) if node.call is not node.original else node.name


def describe(node: Node, root: bool = False) -> str:
    """One line of facts about *node*: kind, lifetime, caching, thread, extras."""
    parts = [f"#{node.index}", kind_text(node)]
    if root:
        parts.append("root")
    else:
        parts.append(str(node.lifetime))
        if node.use_cache:
            parts.append(f"cached, key={key_text(node)}")
        else:
            parts.append(f"use_cache=False, key={key_text(node)}")
        if node.alias:
            parts.append("reads the value its use_cache=False twin stored")
    if node.call is not node.original:
        parts.append(f"overridden by {node.name}")
    if node.limit is not None:
        parts.append(f"max_concurrency={node.limit[1]}")
    if node.scopes:
        parts.append(f"scopes={list(node.scopes)!r}")
    return " · ".join(parts)


def explain(plan: Plan[Any]) -> str:
    """A readable tree of *plan*: each node's facts, then which nodes can overlap.

    Each dependable appears once with its details; later uses refer back to it by
    number (``#2``), as the plan runs it once.
    """
    nodes = plan.nodes
    root = plan.root_node
    count = len(nodes) - 1
    head = f"Plan for {root.name}: {count} dependenc{'y' if count == 1 else 'ies'}"
    most = width(plan)
    if count > 1 and most is not None:
        head += f", at most {most} at once"
    lines = [head]
    if plan.required_values:
        needed = ", ".join(
            f"{name} ({'; '.join(dict.fromkeys(where))})"
            for name, where in plan.required_values.items()
        )
        lines.append(f"required values: {needed}")
    if plan.context_types:
        types = ", ".join(sorted(t.__qualname__ for t in plan.context_types))
        lines.append(f"injected by type: {types}")
    lines.append("")
    shown: set[int] = set()
    lines.append(f"{root.name}  [{describe(root, root=True)}]")
    shown.add(root.index)
    lines.extend(_children(plan, root, shown))
    lines.append("")
    lines.extend(_overlap_lines(plan))
    return "\n".join(lines)


def _entries(plan: Plan[Any], node: Node) -> list[tuple[str, int | None]]:
    """What hangs under *node* in the tree: arguments, effect-only deps, values."""
    used = {index for _, index in node.args}
    effect = [dep for dep in node.deps if dep not in used]
    entries: list[tuple[str, int | None]] = []
    if node is plan.root_node:
        # Container and compile() `dependencies=[...]`: run first, value discarded.
        entries.extend(("(dependencies)", dep) for dep in effect)
    entries.extend((name, index) for name, index in node.args)
    if node is not plan.root_node:
        # An ordering edge: this cached use reads what a use_cache=False twin stored.
        entries.extend(("(after)", dep) for dep in effect)
    for name, default in node.values:
        required = " (required)" if default is EMPTY else f" = {default!r}"
        entries.append((f"value {name}{required}", None))
    for name, ctx in node.contexts:
        entries.append((f"{name}: {ctx.__qualname__} (by type)", None))
    for name, _cls in node.scope_args:
        entries.append((f"{name}: SecurityScopes {list(node.scopes)!r}", None))
    return entries


def _children(plan: Plan[Any], node: Node, shown: set[int]) -> list[str]:
    """The tree lines under *node*, depth first (iterative: plans can be deep).

    Each level indents by four columns; past ``_INDENT_SHOWN`` levels a line shows the
    innermost levels after a ``⋯``, so the text stays linear in the plan's size.
    """
    nodes = plan.nodes
    lines: list[str] = []
    # Per open level: its pending entries, how many there are, and the indentation
    # its lines get under the previous level ("│   " or "    ").
    stack: list[tuple[Iterator[tuple[int, tuple[str, int | None]]], int]] = []
    indents: list[str] = []
    entries = _entries(plan, node)
    stack.append((iter(enumerate(entries)), len(entries)))
    while stack:
        pending, total = stack[-1]
        step = next(pending, None)
        if step is None:
            stack.pop()
            if indents:
                indents.pop()
            continue
        position, (text, index) = step
        last = position == total - 1
        depth = len(indents)
        if depth > _INDENT_SHOWN:
            prefix = "⋯ " + "".join(indents[depth - _INDENT_SHOWN :])
        else:
            prefix = "".join(indents)
        branch = "└── " if last else "├── "
        if index is None:
            lines.append(f"{prefix}{branch}{text}")
            continue
        child = nodes[index]
        if index in shown:
            lines.append(
                f"{prefix}{branch}{text}: {label(child)}  (#{index}, see above)"
            )
            continue
        shown.add(index)
        lines.append(f"{prefix}{branch}{text}: {label(child)}  [{describe(child)}]")
        below = _entries(plan, child)
        if below:
            indents.append("    " if last else "│   ")
            stack.append((iter(enumerate(below)), len(below)))
    return lines


def _overlap_lines(plan: Plan[Any]) -> list[str]:
    """The "can overlap" section: per node, the nodes independent of it."""
    nodes = plan.nodes
    if len(nodes) <= 2:
        return ["Can overlap: nothing (fewer than two dependencies)."]
    if all(nodes[i - 1].index in nodes[i].deps for i in range(1, len(nodes) - 1)):
        # Each needs the one before it: the order is total, nothing can overlap.
        return [_NOTHING_OVERLAPS]
    if len(nodes) - 1 > _OVERLAP_LIMIT:
        return [
            "Can overlap: not listed for plans of more than"
            f" {_OVERLAP_LIMIT:,} dependencies."
        ]
    per_node = _independent(plan)
    names = [f"#{n.index} {label(n)}" for n in nodes]
    pad = max(len(names[i]) for i in range(len(nodes) - 1))
    lines = ["Can overlap (neither needs the other, so they may run at the same time):"]
    alone: list[str] = []
    for i in range(len(nodes) - 1):
        others = per_node[i]
        if not others:
            alone.append(names[i])
            continue
        first = list(itertools.islice(_bits(others), _OVERLAP_SHOWN))
        shown = [names[j] for j in first]
        rest = others.bit_count() - len(first)
        if rest:
            shown.append(f"and {rest} more")
        lines.append(f"  {names[i].ljust(pad)}  with {', '.join(shown)}")
    if len(alone) == len(nodes) - 1:
        return [_NOTHING_OVERLAPS]
    if alone:
        lines.append(f"  never overlapping: {', '.join(alone)}")
    return lines


# -- graph formats ---------------------------------------------------------------------
def _short(node: Node, root: bool) -> str:
    """The facts under a node's name in a diagram (lines split by newlines)."""
    if root:
        text = f"{kind_text(node)} · root"
    else:
        text = f"{kind_text(node)} · {node.lifetime}"
        text += "" if node.use_cache else " · no cache"
    if node.call is not node.original:
        text += f"\noverridden by {node.name}"
    return text


def _mermaid_text(text: str) -> str:
    """Escape *text* for a quoted Mermaid label (entity codes, as Mermaid wants)."""
    out = text.replace("#", "#35;").replace('"', "#quot;")
    return out.replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(plan: Plan[Any]) -> str:
    """A Mermaid flowchart of *plan*: dependencies point at their dependents.

    ``yield`` dependencies are drawn as stadiums, the root as a subroutine box;
    edges carry the parameter name; effect-only and ordering edges are dotted.
    """
    nodes = plan.nodes
    last = len(nodes) - 1
    lines = ["flowchart LR"]
    for node in nodes:
        is_root = node.index == last
        text = _mermaid_text(f"{label(node)}\n{_short(node, is_root)}")
        text = text.replace("\n", "<br/>")  # after escaping: this <br/> is ours
        if is_root:
            shape = f'[["{text}"]]'
        elif node.kind.is_generator:
            shape = f'(["{text}"])'
        else:
            shape = f'["{text}"]'
        lines.append(f"    n{node.index}{shape}")
    for node, dep, names in _edges(plan):
        if names is None:
            lines.append(f"    n{dep} -.-> n{node.index}")
        else:
            lines.append(f"    n{dep} -->|{', '.join(names)}| n{node.index}")
    lines.append("    classDef app fill:#fde9c9,stroke:#b7791f")
    lines.append("    classDef request fill:#dbeafe,stroke:#2b6cb0")
    lines.append("    classDef function fill:#e6f4ea,stroke:#2f855a")
    for lifetime in (Lifetime.APP, Lifetime.REQUEST, Lifetime.FUNCTION):
        members = [f"n{n.index}" for n in nodes if n.lifetime is lifetime]
        if members:
            lines.append(f"    class {','.join(members)} {lifetime}")
    return "\n".join(lines) + "\n"


def _edges(plan: Plan[Any]) -> Iterator[tuple[Node, int, list[str] | None]]:
    """Per node, its argument edges (with the parameters each feeds, in order), then
    its effect-only and ordering edges (``None``): what both graph formats draw."""
    for node in plan.nodes:
        by_dep: dict[int, list[str]] = {}
        for name, dep in node.args:
            by_dep.setdefault(dep, []).append(name)
        for dep, names in by_dep.items():
            yield node, dep, names
        for dep in node.deps:
            if dep not in by_dep:
                yield node, dep, None


def _dot_text(text: str) -> str:
    """Escape *text* for a double-quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(plan: Plan[Any]) -> str:
    """A Graphviz DOT digraph of *plan*: dependencies point at their dependents.

    ``yield`` dependencies get a double border, the root a bold one; edges carry the
    parameter name; effect-only and ordering edges are dashed.
    """
    nodes = plan.nodes
    last = len(nodes) - 1
    fill = {
        Lifetime.APP: "#fde9c9",
        Lifetime.REQUEST: "#dbeafe",
        Lifetime.FUNCTION: "#e6f4ea",
    }
    lines = [
        "digraph plan {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in nodes:
        is_root = node.index == last
        text = _dot_text(f"{label(node)}\n{_short(node, is_root)}").replace("\n", "\\n")
        attrs = [f'label="{text}"', f'fillcolor="{fill[node.lifetime]}"']
        if node.kind.is_generator:
            attrs.append("peripheries=2")
        if is_root:
            attrs.append('style="rounded,filled,bold"')
        lines.append(f"    n{node.index} [{', '.join(attrs)}];")
    for node, dep, names in _edges(plan):
        if names is None:
            lines.append(f"    n{dep} -> n{node.index} [style=dashed];")
        else:
            text = _dot_text(", ".join(names))
            lines.append(f'    n{dep} -> n{node.index} [label="{text}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
