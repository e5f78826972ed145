# ruff: noqa: I002  (dependables defined inside tests use real, not string, annotations)
"""Load and soak tests: many scopes at once, racing first uses, a million calls.

Shortened unless ``ANYDEPENDS_STRESS=full`` (the nox ``stress`` session runs this file
with it; the normal suite runs the short version):

| test | short | full |
|---|---|---|
| concurrent scopes, no cross-talk | 1,000 | 10,000 |
| concurrent first uses of an app-scoped dependency | 1,000 | 1,000 |
| resolutions with flat memory | 20,000 | 1,000,000 |
| cancellation trials (new seeds; see test_reliability_cancel) | 40 | 1,000 |

Every event loop runs under :func:`tests.reliability_support.run`'s watchdog, so a
deadlock fails the test instead of hanging the session.
"""

import gc
import os
import threading
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import pytest

from anydepends import Container, Depends

from .reliability_support import BACKENDS, FULL, cancel_trials, run, sized

pytestmark = pytest.mark.stress


@dataclass
class Conn:
    """A per-request resource: must never be seen by another request."""

    ident: int
    closed: bool = False


@dataclass
class Request:
    """A context object injected by type from the scope."""

    ident: int


@dataclass(frozen=True)
class User:
    ident: int
    conn: Conn
    token: str


# -- 10,000 concurrent scopes ----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_scopes_never_cross_talk(backend: str) -> None:
    """N scopes at once (10,000 in the full run), each carrying its own identity as a
    call value and as a context object through request-scoped dependencies (an
    async generator, a sync function in a worker thread, a class, a cached and an
    uncached dependency), all held in flight together by an event (the last to
    arrive opens it): every result, every cached object shared within a scope and
    every teardown belongs to its own scope — zero cross-talk — and each
    connection is closed exactly once, by its own scope."""
    n = sized(1_000, 10_000)
    closed: Counter[int] = Counter()
    results: list[Any] = [None] * n
    second: list[Any] = [None] * n

    async def main() -> None:
        gate = anyio.Event()
        arrived = 0

        async def get_conn(ident: int, req: Request) -> AsyncIterator[Conn]:
            assert req.ident == ident
            conn = Conn(ident)
            try:
                yield conn
            finally:
                assert conn.ident == ident and not conn.closed
                conn.closed = True
                closed[ident] += 1

        def get_token(ident: int) -> str:  # a worker thread
            return f"token-{ident}"

        async def get_user(
            req: Request,
            conn: Annotated[Conn, Depends(get_conn)],
            token: Annotated[str, Depends(get_token)],
        ) -> User:
            nonlocal arrived
            arrived += 1
            if arrived == n:
                gate.set()
            await gate.wait()  # every scope is in flight at once
            return User(req.ident, conn, token)

        class Audit:
            def __init__(self, user: Annotated[User, Depends(get_user)]) -> None:
                self.ident = user.ident

        async def handler(
            ident: int,
            user: Annotated[User, Depends(get_user)],
            conn: Annotated[Conn, Depends(get_conn)],
            audit: Annotated[Audit, Depends(Audit, use_cache=False)],
        ) -> tuple[Any, ...]:
            assert user.conn is conn  # one connection per scope
            await anyio.lowlevel.checkpoint()
            return ident, user.ident, conn.ident, user.token, audit.ident, conn.closed

        async def again(ident: int, conn: Annotated[Conn, Depends(get_conn)]) -> Conn:
            return conn

        async with Container(context_types=[Request]) as container:

            async def one(i: int) -> None:
                async with container.scope(context={Request: Request(i)}) as scope:
                    results[i] = await scope.call(handler, ident=i)
                    conn = await scope.call(again, ident=i)
                    second[i] = (conn.ident, conn.closed)
                assert conn.closed

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)

    run(backend, main, timeout=300)
    assert results == [(i, i, i, f"token-{i}", i, False) for i in range(n)]
    assert second == [(i, False) for i in range(n)]
    assert closed == Counter(range(n))


# -- 1,000 concurrent first uses of an app-scoped dependency ---------------------------


@dataclass
class Pool:
    serial: int
    closed: bool = False


@pytest.mark.parametrize("kind", ["async_gen", "async", "sync_in_thread"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_app_scoped_created_once_under_concurrent_first_use(
    backend: str, kind: str
) -> None:
    """1,000 calls, each in its own scope, all reach ``Depends(make_pool,
    scope="app")`` before it exists (the factory is held until every task is blocked,
    so every call is a first use): the factory runs exactly once, every call gets
    that one object, and a ``yield`` factory is torn down once, at container exit."""
    n = 1_000
    created: list[Pool] = []
    teardowns: list[Pool] = []
    results: list[Any] = [None] * n

    async def main() -> None:
        gate = anyio.Event()
        thread_gate = threading.Event()
        make_pool: Any
        if kind == "async_gen":

            async def make_pool() -> AsyncIterator[Pool]:
                pool = Pool(len(created))
                created.append(pool)
                await gate.wait()
                try:
                    yield pool
                finally:
                    pool.closed = True
                    teardowns.append(pool)

        elif kind == "async":

            async def make_pool() -> Pool:
                pool = Pool(len(created))
                created.append(pool)
                await gate.wait()
                return pool

        else:

            def make_pool() -> Pool:
                pool = Pool(len(created))
                created.append(pool)
                assert thread_gate.wait(60)
                return pool

        async def handler(
            i: int, pool: Annotated[Pool, Depends(make_pool, scope="app")]
        ) -> Pool:
            return pool

        async with Container() as container:

            async def one(i: int) -> None:
                results[i] = await container.call(handler, i=i)

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)
                    await anyio.wait_all_tasks_blocked()
                    gate.set()
                    thread_gate.set()
            assert not teardowns  # app scope: not before the container exits
        assert all(p.closed for p in teardowns)

    run(backend, main, timeout=120)
    assert len(created) == 1, f"the app-scoped factory ran {len(created)} times"
    assert all(r is created[0] for r in results)
    assert teardowns == ([created[0]] if kind == "async_gen" else [])


# -- a million resolutions, flat memory ------------------------------------------------


@dataclass
class Settings:
    dsn: str = "db://"


@dataclass
class Session:
    ident: int
    closed: bool = field(default=False)


def get_settings() -> Settings:
    return Settings()


async def get_session(ident: int) -> AsyncIterator[Session]:
    session = Session(ident)
    try:
        yield session
    finally:
        session.closed = True


def get_audit(ident: int) -> Iterator[int]:
    yield ident


class Repo:
    def __init__(self, session: Annotated[Session, Depends(get_session)]) -> None:
        self.session = session


async def get_user(ident: int, repo: Annotated[Repo, Depends(Repo)]) -> int:
    return repo.session.ident


async def get_flags(
    settings: Annotated[Settings, Depends(get_settings, scope="app")],
) -> str:
    await anyio.lowlevel.checkpoint()  # waits: the call overlaps it with other work
    return settings.dsn


async def get_quota(ident: int) -> int:
    await anyio.lowlevel.checkpoint()
    return ident % 7


async def inline_handler(
    ident: int,
    user: Annotated[int, Depends(get_user)],
    session: Annotated[Session, Depends(get_session)],
    audit: Annotated[int, Depends(get_audit, use_cache=False)],
    settings: Annotated[Settings, Depends(get_settings, scope="app")],
) -> int:
    """Nothing waits: the whole call runs inline (the common, fast path)."""
    assert user == ident == session.ident == audit and settings.dsn == "db://"
    return ident


async def concurrent_handler(
    ident: int,
    user: Annotated[int, Depends(get_user)],
    session: Annotated[Session, Depends(get_session)],
    audit: Annotated[int, Depends(get_audit, use_cache=False)],
    flags: Annotated[str, Depends(get_flags)],
    quota: Annotated[int, Depends(get_quota)],
) -> int:
    """Two dependencies wait: the call goes concurrent and spawns helper tasks."""
    assert user == ident == session.ident == audit and flags == "db://"
    return quota


def _rss() -> int:
    """Resident set size now (bytes), from /proc; 0 where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_resolutions_in_a_loop_keep_memory_flat(backend: str, capsys: Any) -> None:
    """A million ``container.call``s in the full run (20,000 short), nine in ten of
    a handler that runs inline and one in ten of one that goes concurrent (helper
    tasks, hosted generators), with an app-scoped dependency, request-scoped async
    generators, sync generators, a class, cached and uncached dependencies: after a
    warm-up, traced memory (tracemalloc: the whole loop in the full run, its last
    three tenths in the short one) and the number of live objects (gc, sampled every
    tenth) stay flat; nothing accumulates per call. Prints the peak."""
    n = sized(20_000, 1_000_000)
    step = n // 10
    first_traced = 0 if FULL else 7  # tracemalloc triples the cost of a call
    objects: list[int] = []  # live objects after each tenth
    traced: list[int] = []  # traced bytes above the baseline after each traced tenth

    async def run_calls(call: Any, count: int) -> None:
        for i in range(count):
            if i % 10:
                assert await call(inline_handler, ident=i) == i
            else:
                assert await call(concurrent_handler, ident=i) == i % 7

    async def main() -> int:
        base = peak = 0
        try:
            async with Container(sync_to_thread=False) as container:
                await run_calls(container.call, 2_000)  # warm-up: plans, caches, pools
                gc.collect()
                objects.append(len(gc.get_objects()))
                for k in range(10):
                    if k == first_traced:
                        tracemalloc.start()
                        base = tracemalloc.get_traced_memory()[0]
                    await run_calls(container.call, step)
                    if tracemalloc.is_tracing():
                        peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
                    gc.collect()
                    if tracemalloc.is_tracing():
                        traced.append(tracemalloc.get_traced_memory()[0] - base)
                    objects.append(len(gc.get_objects()))  # a big list: not traced
                    if tracemalloc.is_tracing():
                        tracemalloc.reset_peak()
                return peak
        finally:
            tracemalloc.stop()

    rss_before = _rss()
    # asyncio without debug mode here: this loop measures memory, it does not hunt
    # leaks (debug mode's bookkeeping would make a million calls take an hour).
    peak = run(backend, main, timeout=7_200 if FULL else 300, debug=False)
    with capsys.disabled():
        print(
            f"\n[{backend}] {n:,} resolutions: traced memory grew {traced[-1]:,} B"
            f" over {(10 - first_traced) * step:,} traced calls, traced peak"
            f" {peak:,} B above the baseline, live objects"
            f" {objects[-1] - objects[0]:+,} after warm-up,"
            f" RSS {(_rss() - rss_before) / 2**20:+.1f} MiB; traced per tenth {traced},"
            f" objects per tenth {objects}"
        )
    # Flat: what is left after the loop does not grow with the number of calls (a
    # leak of a few bytes per call would be megabytes in the full run) ...
    assert traced[-1] < 256 * 1024, traced
    assert objects[-1] - objects[0] < 2_000, objects
    # ... and the second half of the run adds nothing the first half did not.
    assert traced[-1] - traced[len(traced) // 2] < 64 * 1024, traced
    assert objects[-1] - objects[5] < 500, objects


# -- cancellation soak -----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancellation_soak(backend: str) -> None:
    """The cancellation trials of ``test_reliability_cancel`` on fresh seeds: 1,000
    per backend in the full run (40 short; the regular suite already runs a few
    hundred), with the same invariants: teardown exactly once per completed setup,
    nothing else, never cancelled; nothing left running; no hang."""
    count = sized(40, 1_000)
    stats = cancel_trials(backend, 10_000, count, max_failures=25)
    assert not stats.failures, (
        f"{len(stats.failures)} trials failed (stopped after 25):\n"
        + "\n".join(stats.failures[:10])
    )
    assert stats.trials == count
    if FULL:
        assert stats.interrupted > count // 10, stats
        assert stats.completed > count // 20, stats
