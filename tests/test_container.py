"""Container: entry points, app lifetime, overrides, values (design API, §7, §8).

The container is the application lifetime: it must be entered, holds the plan cache,
the overrides and the app-scoped values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anydepends import (
    Container,
    DeclarationError,
    Depends,
    MissingValuesError,
    Overrides,
    Security,
    SecurityScopes,
    UsageError,
)

from . import helpers
from .helpers import (
    AsyncCallable,
    AsyncGenCallable,
    GenCallable,
    Pager,
    Recorder,
    SyncCallable,
    Thing,
    add,
    async_add,
    async_gen_value,
    async_value,
    async_wrapper_of_sync,
    prompt,
    sync_gen_value,
    sync_value,
    sync_wrapper_of_async,
)

# -- entering and leaving --------------------------------------------------------------


async def test_call_needs_an_entered_container() -> None:
    """``container.call`` before ``async with`` or after it is a UsageError with a
    hint; nothing runs."""
    rec = Recorder()

    async def root() -> None:
        rec("root")

    container = Container()
    with pytest.raises(UsageError) as info:
        await container.call(root)
    assert "async with Container()" in (info.value.hint or "")
    async with container:
        await container.call(root)
    with pytest.raises(UsageError):
        await container.call(root)
    assert rec.log == ["root"]


async def test_a_container_is_entered_once() -> None:
    """Entering a container twice (nested or after closing) is a UsageError."""
    container = Container()
    async with container:
        with pytest.raises(UsageError):
            async with container:
                pass
    with pytest.raises(UsageError):
        async with container:
            pass


async def test_compile_needs_no_entered_container() -> None:
    """``compile`` only reads declarations: it works before ``async with``."""

    async def root(x: int = Depends(lambda: 1)) -> int:
        return x

    container = Container()
    plan = container.compile(root)
    async with container:
        assert container.compile(root) is plan
        assert await container.call(root) == 1


async def test_call_returns_the_root_result_for_every_root_kind() -> None:
    """The root may be async, sync, a class or a callable instance; ``call`` returns
    what it returns."""

    class Root:
        def __init__(self, x: int = Depends(lambda: 2)) -> None:
            self.x = x

    class Handler:
        async def __call__(self, x: int = Depends(lambda: 3)) -> int:
            return x

    async def async_root(x: int = Depends(lambda: 1)) -> int:
        return x

    def sync_root(x: int = Depends(lambda: 4)) -> int:
        return x

    async with Container() as container:
        assert await container.call(async_root) == 1
        assert (await container.call(Root)).x == 2
        assert await container.call(Handler()) == 3
        assert await container.call(sync_root) == 4


async def test_each_container_call_is_a_fresh_scope() -> None:
    """``container.call`` uses a fresh scope each time: nothing is shared between two
    calls but app-scoped values."""
    rec = Recorder()

    async def dep() -> None:
        rec("dep")

    async def app_dep() -> None:
        rec("app")

    async def root(
        a: None = Depends(dep), b: None = Depends(app_dep, scope="app")
    ) -> None: ...

    async with Container() as container:
        for _ in range(3):
            await container.call(root)
    assert rec.count("dep") == 3
    assert rec.count("app") == 1


# -- every kind of dependable (docs/semantics.md §1, §2) -------------------------------


async def test_every_kind_of_dependable_resolves() -> None:
    """Async and sync functions, both kinds of generators (the yielded value is
    injected), classes, callable instances of every kind, partials (bound arguments
    not injected, even when a value of that name is given), ``functools.wraps``
    wrappers either way round."""
    import functools

    async def root(
        a: str = Depends(async_value),
        b: str = Depends(sync_value),
        c: str = Depends(async_gen_value),
        d: str = Depends(sync_gen_value),
        e: Thing = Depends(Thing),
        f: str = Depends(AsyncCallable("x")),
        g: str = Depends(SyncCallable("y")),
        h: str = Depends(GenCallable("z")),
        i: str = Depends(AsyncGenCallable("w")),
        j: int = Depends(functools.partial(add, b=2)),
        k: int = Depends(functools.partial(async_add, 10)),
        m: str = Depends(async_wrapper_of_sync(sync_value)),
        n: str = Depends(sync_wrapper_of_async(async_value)),
    ) -> list[Any]:
        return [a, b, c, d, e.value, f, g, h, i, j, k, m, n]

    for sync_to_thread in (True, False):
        async with Container(sync_to_thread=sync_to_thread) as container:
            assert await container.call(root, a=1, b=100) == [
                "async",
                "sync",
                "async_gen",
                "sync_gen",
                "async",
                "x:sync",
                "y",
                "z",
                "w",
                3,
                110,
                "sync",
                "async",
            ]


async def test_declaration_forms_are_equivalent() -> None:
    """``x = Depends(f)``, ``x: Annotated[T, Depends(f)]`` and ``Depends()`` on a class
    annotation are the same dependency (one call), with string annotations from
    ``from __future__ import annotations`` resolved in the dependable's module."""
    async with Container() as container:
        assert await container.call(helpers.annotated_chain) == ("async", 10)
        assert await container.call(helpers.annotated_chain, size=3) == ("async", 3)

    calls = 0

    def counted() -> Pager:
        nonlocal calls
        calls += 1
        return Pager()

    async def root(a: Pager = Depends(counted), b: Pager = Depends(counted)) -> bool:
        return a is b

    async with Container() as container:
        assert await container.call(root) is True
    assert calls == 1


# -- values ----------------------------------------------------------------------------


async def test_missing_values_fail_before_anything_runs() -> None:
    """One MissingValuesError lists every missing required value and every place it
    is needed, before any dependency (or teardown) runs."""
    rec = Recorder()

    async def gen() -> AsyncIterator[None]:
        rec("gen")
        yield

    async def dep(token: str, user_id: int, page: int = 1) -> None:
        rec("dep")

    async def root(
        job: str, g: None = Depends(gen), d: None = Depends(dep), token: str = "t"
    ) -> None:
        rec("root")

    async with Container() as container:
        with pytest.raises(MissingValuesError) as info:
            await container.call(root)
        error = info.value
        assert set(error.missing) == {"job", "token", "user_id"}
        assert any("dep" in where for where in error.missing["token"])
        for name in ("job", "token", "user_id"):
            assert name in str(error)
        assert await container.call(root, job="j", token="x", user_id=1) is None
    assert sorted(rec.log) == ["dep", "gen", "root"]
    assert rec.log[-1] == "root"


async def test_a_value_with_a_default_in_one_place_is_still_required_elsewhere() -> (
    None
):
    """A name optional for the root but required by a dependency is missing when not
    given (FastAPI: one input, several declarations)."""

    async def dep(token: str) -> str:
        return token

    async def root(token: str = "default", d: str = Depends(dep)) -> str:
        return token + d

    async with Container() as container:
        with pytest.raises(MissingValuesError) as info:
            await container.call(root)
        assert set(info.value.missing) == {"token"}
        assert await container.call(root, token="v") == "vv"


# -- app lifetime (docs/semantics.md §7) -----------------------------------------------


async def test_app_value_is_created_once_under_concurrent_first_use() -> None:
    """Many concurrent first uses of an app-scoped dependency, from many scopes, create
    it once: every call has reached it before the creation can finish."""
    n = 8
    created = 0
    arrived = 0
    all_arrived = anyio.Event()

    async def arrive() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == n:
            all_arrived.set()

    async def resource() -> object:
        nonlocal created
        created += 1
        await all_arrived.wait()
        await anyio.lowlevel.checkpoint()
        return object()

    async def root(
        a: None = Depends(arrive), r: object = Depends(resource, scope="app")
    ) -> object:
        return r

    results: list[object] = []

    async def one() -> None:
        results.append(await container.call(root))

    with prompt():
        async with Container() as container:
            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)
            assert created == 1
            assert len(results) == n
            assert all(r is results[0] for r in results)


async def test_app_generator_is_created_once_under_concurrent_first_use() -> None:
    """The same for an app-scoped ``yield`` dependency: one setup, one teardown at
    container exit."""
    n = 6
    rec = Recorder()
    arrived = 0
    all_arrived = anyio.Event()

    async def arrive() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == n:
            all_arrived.set()

    async def resource() -> AsyncIterator[str]:
        rec("setup")
        await all_arrived.wait()
        yield "r"
        rec("teardown")

    async def root(
        a: None = Depends(arrive), r: str = Depends(resource, scope="app")
    ) -> str:
        return r

    with prompt():
        async with Container() as container:
            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(container.call, root)
            assert rec.log == ["setup"]
    assert rec.log == ["setup", "teardown"]


async def test_app_values_are_shared_by_scopes_and_calls() -> None:
    """An app-scoped value is one object for every scope and call of the container,
    and a new container makes a new one."""

    async def resource() -> object:
        return object()

    async def root(r: object = Depends(resource, scope="app")) -> object:
        return r

    async with Container() as container:
        first = await container.call(root)
        async with container.scope() as scope:
            assert await scope.call(root) is first
        assert await container.call(root) is first
    async with Container() as other:
        assert await other.call(root) is not first


async def test_a_failed_app_value_is_not_cached() -> None:
    """An app-scoped dependency that raised is tried again by the next call."""
    attempts = 0

    async def resource() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("down")
        return attempts

    async def root(r: int = Depends(resource, scope="app")) -> int:
        return r

    async with Container() as container:
        with pytest.raises(ConnectionError):
            await container.call(root)
        assert await container.call(root) == 2
        assert await container.call(root) == 2


async def test_container_exit_exception_reaches_app_generators() -> None:
    """An exception leaving the ``async with Container()`` body is thrown into the
    app-scoped generators at their yield, and propagates unchanged."""
    rec = Recorder()
    error = ValueError("body")

    async def resource() -> AsyncIterator[None]:
        try:
            yield
        except ValueError as exc:
            rec(exc)
            raise

    async def root(r: None = Depends(resource, scope="app")) -> None: ...

    with pytest.raises(ValueError) as info:
        async with Container() as container:
            await container.call(root)
            raise error
    assert info.value is error
    assert rec.log == [error]


async def test_app_teardown_error_surfaces_at_container_exit() -> None:
    """An app-scoped teardown that raises makes the container exit raise it."""
    error = RuntimeError("teardown")

    async def resource() -> AsyncIterator[None]:
        yield
        raise error

    async def root(r: None = Depends(resource, scope="app")) -> None: ...

    with pytest.raises(RuntimeError) as info:
        async with Container() as container:
            await container.call(root)
    assert info.value is error


async def test_app_scoped_dependency_may_use_the_container() -> None:
    """An app-scoped dependable may take the Container by type (it lives as long)."""

    async def resource(container: Container) -> Container:
        return container

    async def root(r: Container = Depends(resource, scope="app")) -> Container:
        return r

    async with Container() as container:
        assert await container.call(root) is container


# -- overrides (docs/semantics.md §8) --------------------------------------------------


async def original() -> str:
    return "original"


async def test_override_applies_at_any_depth_and_is_read_at_call_time() -> None:
    """``container.overrides[original] = replacement`` applies wherever ``original`` is
    declared, from the next call on; deleting it restores the original."""

    async def mid(x: str = Depends(original)) -> str:
        return "mid:" + x

    async def root(
        a: str = Depends(mid), b: str = Depends(original)
    ) -> tuple[str, str]:
        return a, b

    async def fake() -> str:
        return "fake"

    async with Container() as container:
        assert await container.call(root) == ("mid:original", "original")
        container.overrides[original] = fake
        assert await container.call(root) == ("mid:fake", "fake")
        del container.overrides[original]
        assert await container.call(root) == ("mid:original", "original")


async def test_the_replacement_signature_decides_its_dependencies_and_values() -> None:
    """The replacement's own dependencies and values apply; the original's do not."""
    rec = Recorder()

    async def orig_dep() -> None:
        rec("orig_dep")

    async def orig(d: None = Depends(orig_dep), needed: str = "x") -> str:
        return "orig"

    def helper() -> str:
        rec("helper")
        return "h"

    def replacement(h: str = Depends(helper), *, suffix: str) -> str:
        return h + suffix

    async def root(x: str = Depends(orig)) -> str:
        return x

    async with Container() as container:
        container.overrides[orig] = replacement
        with pytest.raises(MissingValuesError):
            await container.call(root)
        assert await container.call(root, suffix="!") == "h!"
    assert rec.log == ["helper"]


async def test_override_keeps_the_original_cache_key_and_use_cache() -> None:
    """Caching follows the original declaration: ``[nocache, nocache, cached]`` with
    an override counting calls gives ``[1, 2, 1]``."""
    calls = 0

    async def counted() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def root(
        a: int = Depends(original, use_cache=False),
        b: int = Depends(original, use_cache=False),
        c: int = Depends(original),
    ) -> list[int]:
        return [a, b, c]

    async with Container(sequential=True) as container:
        container.overrides[original] = counted
        assert await container.call(root) == [1, 2, 1]


async def test_a_generator_override_is_torn_down() -> None:
    """A plain dependency overridden by a generator is set up and torn down."""
    rec = Recorder()

    async def fake() -> AsyncIterator[str]:
        rec("setup")
        yield "fake"
        rec("teardown")

    async def root(x: str = Depends(original)) -> str:
        rec("root")
        return x

    async with Container() as container:
        with container.override(original, fake):
            assert await container.call(root) == "fake"
    assert rec.log == ["setup", "root", "teardown"]


async def test_override_sees_the_original_security_scopes() -> None:
    """An override receives the original node's accumulated security scopes."""

    def scoped(ss: SecurityScopes) -> list[str]:
        return ss.scopes

    def fake(security_scopes: SecurityScopes) -> list[str]:
        return ["fake", *security_scopes.scopes]

    async def root(x: list[str] = Security(scoped, scopes=["read"])) -> list[str]:
        return x

    async with Container() as container:
        assert await container.call(root) == ["read"]
        with container.override(scoped, fake):
            assert await container.call(root) == ["fake", "read"]


async def test_override_context_manager_nests_and_restores() -> None:
    """``container.override`` restores the previous state on exit: the outer override
    inside nested blocks, none after the outermost."""

    async def one() -> str:
        return "one"

    async def two() -> str:
        return "two"

    async def root(x: str = Depends(original)) -> str:
        return x

    async with Container() as container:
        with container.override(original, one):
            assert await container.call(root) == "one"
            with container.override(original, two):
                assert await container.call(root) == "two"
            assert await container.call(root) == "one"
        assert await container.call(root) == "original"
        assert original not in container.overrides
        with pytest.raises(KeyError), container.override(original, one):
            raise KeyError("body")
        assert await container.call(root) == "original"


async def test_overrides_are_a_mutable_mapping() -> None:
    """``container.overrides`` behaves like FastAPI's ``dependency_overrides`` dict."""

    def fake() -> str:
        return "fake"

    container = Container()
    overrides = container.overrides
    assert isinstance(overrides, Overrides)
    assert len(overrides) == 0
    overrides[original] = fake
    assert overrides[original] is fake
    assert original in overrides
    assert list(overrides) == [original]
    assert overrides.get(original) is fake
    assert overrides.get(fake) is None
    assert "fake" in repr(overrides)
    overrides.clear()
    assert len(overrides) == 0


def test_an_unusable_replacement_is_rejected_when_set() -> None:
    """Setting an override whose replacement cannot be compiled fails at once, naming
    the replacement and the parameter."""

    def bad(*args: Any) -> None: ...

    container = Container()
    with pytest.raises(DeclarationError) as info:
        container.overrides[original] = bad
    assert info.value.parameter == "args"
    assert "bad" in str(info.value)
    assert original not in container.overrides


def test_an_unhashable_original_cannot_be_overridden() -> None:
    """Overrides are keyed by the original callable, so it must be hashable."""

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> None: ...

    container = Container()
    with pytest.raises(DeclarationError):
        container.overrides[Unhashable()] = original


async def test_overriding_with_a_sync_function_runs_it_in_a_thread() -> None:
    """The replacement's kind decides how it runs: a sync one goes to a thread."""
    import threading

    loop_thread = threading.get_ident()

    def fake() -> int:
        return threading.get_ident()

    async def root(x: Any = Depends(original)) -> Any:
        return x

    async with Container() as container:
        with container.override(original, fake):
            assert await container.call(root) != loop_thread


# -- sync generator teardown in threads ------------------------------------------------


async def test_sync_generator_halves_may_run_in_different_threads() -> None:
    """Both halves of a sync generator run off the loop (FastAPI parity); no promise
    that they share a thread, but both must run."""
    import threading

    loop_thread = threading.get_ident()
    seen: list[int] = []

    def gen() -> Iterator[None]:
        seen.append(threading.get_ident())
        yield
        seen.append(threading.get_ident())

    async def root(x: None = Depends(gen)) -> None: ...

    async with Container() as container:
        await container.call(root)
    assert len(seen) == 2
    assert loop_thread not in seen
