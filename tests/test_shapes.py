"""The shared cache of what callables declare (``_shapes``): what it shares, what it
notices, and what it never keeps alive."""

from __future__ import annotations

import gc
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from anydepends import Container, DeclarationError, Depends, _shapes
from anydepends._plancache import MAX_SETS

from . import synthetic


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A fresh module, imported (in ``sys.modules``) for the test's duration."""
    made = types.ModuleType("anydepends_shapes_module")
    monkeypatch.setitem(sys.modules, made.__name__, made)
    yield made


def define(module: types.ModuleType, source: str) -> None:
    """Run *source* as the body of *module* (string annotations, as in most code)."""
    exec(
        compile("from __future__ import annotations\n" + source, "<t>", "exec"),
        vars(module),
    )


def names(plan: Any) -> list[str]:
    return [node.name.rsplit(".", 1)[-1] for node in plan.nodes]


def test_reassigned_defaults_are_seen(
    module: types.ModuleType, reads: list[object]
) -> None:
    """A module-level function whose ``__defaults__`` are reassigned is read again:
    the next compile sees its new dependency."""
    define(
        module,
        "from anydepends import Depends\n"
        "def a(): return 1\n"
        "def b(): return 2\n"
        "def root(x=Depends(a)): return x\n",
    )
    assert names(Container().compile(module.root)) == ["a", "root"]
    module.root.__defaults__ = (Depends(module.b),)
    assert names(Container().compile(module.root)) == ["b", "root"]
    assert reads.count(module.root) == 2


def test_bound_methods_share_their_function_entry(
    module: types.ModuleType, reads: list[object]
) -> None:
    """Bound methods are made anew on every attribute access; their shape (``self``
    dropped) is cached on the function, for every instance."""
    define(
        module,
        "from anydepends import Depends\n"
        "def token() -> str: return 't'\n"
        "class Service:\n"
        "    def get(self, t: str = Depends(token)) -> str: return t\n",
    )
    one, two = module.Service(), module.Service()
    for _ in range(3):
        Container().compile(one.get)
        Container().compile(two.get)
    assert [call for call in reads if getattr(call, "__name__", "") == "get"] == [
        one.get
    ]
    plan = Container().compile(two.get)
    assert plan.root_node.call == two.get
    assert names(plan) == ["token", "get"]


def test_failures_are_not_cached(module: types.ModuleType) -> None:
    """A string annotation that cannot be evaluated yet (a name defined later in the
    module) fails the compile; once the name exists, the next compile succeeds."""
    define(
        module,
        "from typing import Annotated\n"
        "from anydepends import Depends\n"
        "def root(x: Annotated[int, Depends(later)]) -> int: return x\n",
    )
    with pytest.raises(DeclarationError, match="could not be evaluated"):
        Container().compile(module.root)
    define(module, "def later() -> int: return 1\n")
    assert names(Container().compile(module.root)) == ["later", "root"]


def test_a_closure_and_its_dependencies_are_not_kept_alive() -> None:
    """Closures are cached by their container only: once the container and the plan
    are gone, so are the dependables, even when they refer to each other (a shape
    holds its markers, and through them the dependencies, strongly)."""

    def build() -> tuple[Callable[..., Any], weakref.ref[Any]]:
        def leaf() -> int:
            return len(root.__name__)  # a reference cycle: leaf -> root -> leaf

        def root(x: int = Depends(leaf)) -> int:
            return x

        return root, weakref.ref(leaf)

    root, leaf = build()
    container = Container()
    plan = container.compile(root)
    assert leaf() is not None
    del root, container, plan
    gc.collect()
    assert leaf() is None


def test_a_module_no_longer_imported_is_let_go(
    monkeypatch: pytest.MonkeyPatch, reads: list[object]
) -> None:
    """Entries of a module that left ``sys.modules`` are swept, so the module (and
    what its shapes hold) can be collected; an imported module's stay."""
    gone = types.ModuleType("anydepends_gone_module")
    kept = types.ModuleType("anydepends_kept_module")
    monkeypatch.setitem(sys.modules, gone.__name__, gone)
    monkeypatch.setitem(sys.modules, kept.__name__, kept)
    *_, gone_root = synthetic.layered(30, module=gone)
    *_, kept_root = synthetic.layered(30, module=kept)
    Container().compile(gone_root)
    Container().compile(kept_root)
    reads.clear()
    probe = weakref.ref(gone_root)
    del sys.modules[gone.__name__]
    del gone, gone_root
    _shapes._sweep()
    gc.collect()
    assert probe() is None
    Container().compile(kept_root)
    assert reads == []


def test_a_live_container_lets_dead_closures_go() -> None:
    """A container that lives on (an app) keeps no entry for a closure that died: a
    fresh replacement installed again and again (a test suite's loop) leaves only the
    plan cache's recent override sets behind, in the plans and in the shapes."""

    def dep() -> int:
        return 0

    def root(x: int = Depends(dep)) -> int:
        return x

    container = Container()
    container.compile(root)
    before = len(container._introspected)
    probes: list[weakref.ref[Any]] = []
    for i in range(5 * MAX_SETS):

        def replacement(i: int = i) -> int:
            return i

        probes.append(weakref.ref(replacement))
        with container.override(dep, replacement):
            container.compile(root)
        del replacement
    gc.collect()
    alive = sum(p() is not None for p in probes)
    assert alive <= MAX_SETS
    assert len(container._introspected) <= before + alive


def test_callables_that_cannot_be_referenced_weakly_are_read_when_met(
    reads: list[object],
) -> None:
    """A callable object that cannot be referenced weakly (and is not module-level)
    is not cached between compiles: each compile reads it (once), and it compiles."""

    class Slotted:
        __slots__ = ()

        def __call__(self) -> int:
            return 1

    slotted = Slotted()

    def root(
        a: int = Depends(slotted, use_cache=False),
        b: int = Depends(slotted, use_cache=False),
    ) -> int:
        return a + b

    container = Container()
    plan = container.compile(root)
    assert [node.call for node in plan.nodes[:-1]] == [slotted, slotted]
    assert container.compile(root, sequential=True) is not plan  # compiled again
    assert reads.count(slotted) == 2  # once per compile


def test_callables_that_cannot_be_hashed_are_read_once() -> None:
    """An unhashable callable object (declared use_cache=False) is cached by
    identity, and compiles."""

    class Counter:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> int:
            return 1

    counter = Counter()

    def root(
        a: int = Depends(counter, use_cache=False),
        b: int = Depends(counter, use_cache=False),
    ) -> int:
        return a + b

    plan = Container().compile(root)
    assert [node.call for node in plan.nodes[:-1]] == [counter, counter]
