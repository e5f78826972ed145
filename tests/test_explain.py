"""Plan.explain(), Plan.to_mermaid() and Plan.to_dot(): content, overlap and width."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest

from anydepends import Container, Depends, Plan, Scope, Security, SecurityScopes
from anydepends._explain import ancestors, can_overlap, key_text, overlaps, width

from . import synthetic

# -- dependables -----------------------------------------------------------------------


async def base() -> int:
    return 1


async def left(b: Annotated[int, Depends(base)]) -> int:
    return b + 1


async def right(b: Annotated[int, Depends(base)]) -> int:
    return b + 2


async def diamond(
    l_: Annotated[int, Depends(left)], r: Annotated[int, Depends(right)]
) -> int:
    return l_ + r


async def link1() -> int:
    return 1


async def link2(x: Annotated[int, Depends(link1)]) -> int:
    return x


async def link3(x: Annotated[int, Depends(link2)]) -> int:
    return x


async def chain(x: Annotated[int, Depends(link3)]) -> int:
    return x


def settings() -> dict[str, str]:
    return {}


async def pool(
    s: Annotated[dict[str, str], Depends(settings, scope="app")],
) -> AsyncIterator[str]:
    yield "pool"


def sync_gen() -> Iterator[str]:
    yield "gen"


def inline() -> int:
    return 0


def user(scopes: SecurityScopes, token: str, level: int = 3) -> str:
    return token


async def audit() -> None:
    return None


async def rich(
    p: Annotated[str, Depends(pool, scope="app")],
    g: Annotated[str, Depends(sync_gen)],
    i: Annotated[int, Depends(inline, sync_to_thread=False)],
    u: Annotated[str, Security(user, scopes=["me"])],
    n: Annotated[int, Depends(inline, use_cache=False, sync_to_thread=False)],
    scope: Scope,
    limited: Annotated[int, Depends(base, max_concurrency=2)],
) -> None:
    return None


def fake_base() -> int:
    return 0


async def twins(
    a: Annotated[int, Depends(base, use_cache=False)],
    b: Annotated[int, Depends(base)],
) -> int:
    return a + b


def weird_name() -> int:
    return 0


weird_name.__qualname__ = 'odd "<name>" #1 \\ x'


async def uses_weird(w: Annotated[int, Depends(weird_name)]) -> int:
    return w


async def alone() -> int:
    return 0


async def single(a: Annotated[int, Depends(alone)]) -> int:
    return a


async def nothing() -> int:
    return 0


def wide_root(count: int) -> Any:
    """A root with *count* independent dependencies (built with exec: many params)."""
    names = [f"d{i}" for i in range(count)]
    params = ", ".join(f"{n}: Annotated[int, Depends(dep_{n})]" for n in names)
    deps = [f"def dep_{n}() -> int:\n    return 0" for n in names]
    source = "\n".join([*deps, f"async def wide({params}) -> int:\n    return 0"])
    namespace: dict[str, Any] = {"Annotated": Annotated, "Depends": Depends}
    exec(source, namespace)
    return namespace["wide"]


def deep_root(depth: int) -> Any:
    """A root over a chain of *depth* dependencies."""
    namespace: dict[str, Any] = {"Annotated": Annotated, "Depends": Depends}
    lines = ["def c0() -> int:\n    return 0"]
    for i in range(1, depth):
        lines.append(
            f"def c{i}(x: Annotated[int, Depends(c{i - 1})]) -> int:\n    return x"
        )
    lines.append(f"async def deep(x: Annotated[int, Depends(c{depth - 1})]) -> int:")
    lines.append("    return x")
    exec("\n".join(lines), namespace)
    return namespace["deep"]


async def compiled(fn: Any, **options: Any) -> Plan[Any]:
    async with Container(**options) as container:
        return container.compile(fn)


def short(text: str) -> str:
    """*text* without this module's name in front of qualified names."""
    return text.replace(f"{__name__}.", "")


# -- reachability ----------------------------------------------------------------------


async def test_diamond_overlap() -> None:
    """In a diamond, the two middle nodes overlap; nothing overlaps the shared base."""
    plan = await compiled(diamond)
    names = [short(n.name) for n in plan.nodes]
    index = {name: i for i, name in enumerate(names)}
    bits = ancestors(plan)
    assert can_overlap(bits, index["left"], index["right"])
    assert not can_overlap(bits, index["base"], index["left"])
    assert not can_overlap(bits, index["left"], index["left"])
    per_node = overlaps(plan)
    assert per_node[index["left"]] == [index["right"]]
    assert per_node[index["base"]] == []
    assert per_node[index["diamond"]] == []  # the root never overlaps
    assert width(plan) == 2


async def test_chain_has_width_one() -> None:
    """A chain runs one dependency at a time, and explain() says so."""
    plan = await compiled(chain)
    assert width(plan) == 1
    text = short(plan.explain())
    assert "each dependency needs the one before it" in text
    assert "at most 1 at once" in text


async def test_width_of_wide_and_tiny_plans() -> None:
    """Independent dependencies all fit at once; one or none are trivial."""
    assert width(await compiled(wide_root(12))) == 12
    assert width(await compiled(single)) == 1
    assert width(await compiled(nothing)) == 0
    assert "fewer than two dependencies" in short((await compiled(single)).explain())


async def test_width_not_computed_for_huge_plans() -> None:
    """Past the size limit the width is skipped, and explain() still works."""
    plan = await compiled(wide_root(401))
    assert width(plan) is None
    text = short(plan.explain())
    assert "at most" not in text.splitlines()[0]
    assert "and 392 more" in text  # long overlap lists are cut


async def test_deep_plan_explains_without_recursion() -> None:
    """explain() walks the tree iteratively: deep plans are fine."""
    plan = await compiled(deep_root(300))
    text = short(plan.explain())
    assert text.count("└── x: c") == 300


async def test_deep_trees_indent_at_most_64_levels() -> None:
    """Past 64 levels a tree line shows the innermost 64 levels of indentation after
    a ``⋯`` (the text stays linear in the plan's size); shallower lines are as
    before."""
    plan = await compiled(deep_root(100))
    lines = short(plan.explain()).splitlines()
    tree = [line for line in lines if "x: c" in line]
    assert len(tree) == 100
    for depth, line in enumerate(tree):
        if depth <= 64:
            assert line.startswith("    " * depth + "└── x: c")
        else:
            assert line.startswith("⋯ " + "    " * 64 + "└── x: c")


def test_width_of_a_long_chain_without_recursion() -> None:
    """The width's matching searches with an explicit stack: a 400-node chain (the
    largest plan it is computed for) needs no deeper stack."""
    plan = Container().compile(synthetic.chain(399))
    with synthetic.shallow_stack():
        assert width(plan) == 1
        assert overlaps(plan)[0] == []


def test_overlaps_are_not_listed_for_huge_plans() -> None:
    """Past 10,000 dependencies the overlap section is skipped (its bit sets grow
    quadratically), except for chains, where nothing overlaps."""
    text = Container().compile(synthetic.fan_in(10_001)).explain()
    assert "Can overlap: not listed for plans of more than 10,000 dependencies." in text
    chain_text = Container().compile(synthetic.chain(10_001)).explain()
    assert "Can overlap: nothing (each dependency needs the one before it)." in (
        chain_text
    )


def test_overlaps_of_a_wide_plan_are_listed_and_counted() -> None:
    """Each of 1,000 independent dependencies overlaps the 999 others: listed by
    overlaps(), counted (not listed) by explain()."""
    plan = Container().compile(synthetic.fan_in(1_000))
    assert overlaps(plan)[5] == [i for i in range(1_000) if i != 5]
    assert "and 991 more" in plan.explain()


# -- explain() -------------------------------------------------------------------------


async def test_explain_shows_each_node_once_with_facts() -> None:
    """Shared nodes are described once and referred to after; facts are all there."""
    plan = await compiled(diamond)
    text = short(plan.explain())
    assert text.splitlines()[0] == "Plan for diamond: 3 dependencies, at most 2 at once"
    assert text.count("b: base  [") == 1
    assert "(#0, see above)" in text
    assert "async · request · cached, key=(base, (), '')" in text
    assert "diamond  [#3 · async · root]" in text
    assert re.search(r"#1 left +with #2 right", text)


async def test_explain_kinds_lifetimes_and_extras() -> None:
    """Kinds, threads, lifetimes, values, scopes, contexts, limits and use_cache."""
    text = short((await compiled(rich)).explain())
    assert "p: pool  [#1 · async yield · app · cached, key=(" in text
    assert "s: settings  [#0 · sync, worker thread · app" in text
    assert "g: sync_gen  [#2 · sync yield, worker thread · request" in text
    assert "'request')" in text  # generators' lifetime is part of their key
    assert "i: inline  [#3 · sync, inline · request" in text
    assert "scopes=['me']" in text
    assert "key=(user, ('me',), '')" in text
    assert "├── value token (required)" in text
    assert "value level = 3" in text
    assert "scopes: SecurityScopes ['me']" in text
    assert "n: inline  [#5 · sync, inline · request · use_cache=False" in text
    assert "scope: Scope (by type)" in text
    assert "injected by type: Scope" in text
    assert "max_concurrency=2" in text
    assert "required values: token (rich -> user)" in text


async def test_explain_shows_overrides() -> None:
    """A replaced dependable says what replaced it."""
    async with Container() as container:
        container.overrides[base] = fake_base
        text = short(container.compile(diamond).explain())
    assert "b: base  [#0 · sync, worker thread · request" in text  # as declared
    assert "overridden by fake_base" in text
    async with Container() as container:
        container.overrides[base] = fake_base
        plan = container.compile(diamond)
    assert (
        "base<br/>sync, worker thread · request<br/>overridden by fake_base"
        in short(plan.to_mermaid())
    )
    assert "overridden by fake_base" in short(plan.to_dot())


async def test_explain_ordering_and_effect_edges() -> None:
    """Container dependencies and use_cache=False twins show their extra edges."""
    async with Container(dependencies=[Depends(audit)]) as container:
        text = short(container.compile(twins).explain())
    assert "├── (dependencies): audit" in text
    assert "(after): base  (#1, see above)" in text
    assert "reads the value its use_cache=False twin stored" in text


# -- Mermaid and DOT -------------------------------------------------------------------


async def test_mermaid() -> None:
    """A flowchart with one box per node, labelled edges and lifetime classes."""
    out = short((await compiled(rich)).to_mermaid())
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    plan = await compiled(rich)
    for node in plan.nodes:
        assert any(
            line.startswith((f"    n{node.index}[", f"    n{node.index}("))
            for line in lines
        )
    assert '    n1(["pool<br/>async yield · app"])' in lines
    assert any(line.startswith(f"    n{len(plan.nodes) - 1}[[") for line in lines)
    assert "    n0 -->|s| n1" in lines
    assert "    class n0,n1 app" in lines
    assert out.endswith("\n")


async def test_mermaid_escapes_labels_and_dots_effect_edges() -> None:
    """Quotes, angle brackets and hashes in names cannot break the chart."""
    out = short((await compiled(uses_weird)).to_mermaid())
    assert "odd #quot;#lt;name#gt;#quot; #35;1" in out
    async with Container(dependencies=[Depends(audit)]) as container:
        effect = short(container.compile(nothing).to_mermaid())
    assert "    n0 -.-> n1" in effect.splitlines()


async def test_dot() -> None:
    """A digraph with escaped labels, double borders for generators, dashed effects."""
    plan = await compiled(rich)
    out = short(plan.to_dot())
    assert out.startswith("digraph plan {\n")
    assert out.rstrip().endswith("}")
    assert (
        'n1 [label="pool\\nasync yield · app", fillcolor="#fde9c9", peripheries=2];'
        in (out)
    )
    assert 'n0 -> n1 [label="s"];' in out
    assert 'style="rounded,filled,bold"' in out
    weird = short((await compiled(uses_weird)).to_dot())
    assert 'label="odd \\"<name>\\" #1 \\\\ x\\nsync, worker thread · request"' in weird
    async with Container(dependencies=[Depends(audit)]) as container:
        effect = short(container.compile(nothing).to_dot())
    assert "n0 -> n1 [style=dashed];" in effect


@pytest.mark.parametrize("method", ["explain", "to_mermaid", "to_dot"])
async def test_rendering_is_deterministic(method: str) -> None:
    """The same plan renders to the same text every time (docs compare it)."""
    plan = await compiled(rich)
    assert getattr(plan, method)() == getattr(plan, method)()


async def twice_same(
    a: Annotated[int, Depends(base)], b: Annotated[int, Depends(base)]
) -> int:
    return a + b


async def test_one_edge_per_dependency_pair() -> None:
    """Two parameters fed by one node make one edge, labelled with both names."""
    plan = await compiled(twice_same)
    assert "    n0 -->|a, b| n1" in plan.to_mermaid().splitlines()
    assert '    n0 -> n1 [label="a, b"];' in plan.to_dot().splitlines()
    assert key_text(plan.root_node) == "None"
