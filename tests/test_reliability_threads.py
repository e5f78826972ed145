"""Threads: many concurrent calls whose sync dependencies run in worker threads.

Sync functions, classes and both halves of sync generators run in worker threads by
default (FastAPI parity). A hundred calls at once, each needing several of them (one
calling back into the event loop with ``anyio.from_thread``), with and without
``max_concurrency`` limits, with the default thread limiter starved to a single token,
concurrently and in sequential mode: nothing deadlocks (each run is guarded by a
timeout and by :func:`tests.reliability_support.run`'s watchdog), limits hold, every
call gets its own values and every teardown runs once, in a worker thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from anydepends import Container, Depends

from .reliability_support import BACKENDS, run

CALLS = 100


class Probe:
    """Counts, per dependable, how many run at once (max), in which threads."""

    def __init__(self, overlap: int) -> None:
        self.lock = threading.Lock()
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.on_loop: list[str] = []
        # The first `overlap` calls of `parse` wait for each other: proof that
        # worker threads really run at the same time (a barrier times out otherwise).
        self.barrier = threading.Barrier(overlap, timeout=20) if overlap > 1 else None
        self.teardowns: list[tuple[int, int]] = []

    @contextmanager
    def track(self, name: str) -> Iterator[None]:
        if threading.current_thread() is threading.main_thread() or _on_event_loop():
            self.on_loop.append(name)
        with self.lock:
            self.calls[name] += 1
            self.active[name] += 1
            self.peak[name] = max(self.peak[name], self.active[name])
            nth = self.calls[name]
        try:
            if (
                name == "parse"
                and self.barrier is not None
                and nth <= self.barrier.parties
            ):
                self.barrier.wait()
            yield
        finally:
            with self.lock:
                self.active[name] -= 1


def _on_event_loop() -> bool:
    import sniffio

    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


@dataclass
class Session:
    ident: int
    closed: bool = False


def graph(probe: Probe, limited: bool) -> Any:
    """A handler whose dependencies are all sync: functions, a class, generators."""

    def parse(ident: int) -> int:
        with probe.track("parse"):
            return ident

    # One declaration object each, reused: a limit is per Depends object.
    parse_dep = Depends(parse, max_concurrency=3 if limited else None)

    def session(ident: int = parse_dep) -> Iterator[Session]:
        with probe.track("session setup"):
            s = Session(ident)
        with probe.lock:
            probe.active["session held"] += 1
            probe.peak["session held"] = max(
                probe.peak["session held"], probe.active["session held"]
            )
        try:
            yield s
        finally:
            with probe.track("session teardown"):
                assert s.ident == ident
                s.closed = True
                probe.teardowns.append((ident, s.ident))
            with probe.lock:
                probe.active["session held"] -= 1

    async def fetch(ident: int) -> int:
        await anyio.lowlevel.checkpoint()
        return ident * 10

    session_dep = Depends(session, max_concurrency=5 if limited else None)

    def lookup(ident: int = parse_dep) -> int:
        with probe.track("lookup"):
            # Sync code calling back into the event loop: needs a free loop.
            return int(anyio.from_thread.run(fetch, ident))

    class Repo:
        def __init__(self, s: Session = session_dep) -> None:
            with probe.track("repo"):
                self.session = s

    def audit(ident: int = parse_dep) -> Iterator[str]:
        with probe.track("audit setup"):
            pass
        yield f"audit-{ident}"
        with probe.track("audit teardown"):
            pass

    def handler(
        ident: int,
        repo: Repo = Depends(Repo),
        s: Session = session_dep,
        looked: int = Depends(lookup, max_concurrency=2 if limited else None),
        a: str = Depends(audit, use_cache=False),
        b: str = Depends(audit, use_cache=False),
    ) -> tuple[int, int, int, str, str, bool]:
        with probe.track("handler"):
            assert repo.session is s  # one session per call (cached in its scope)
            return ident, s.ident, looked, a, b, s.closed

    return handler


def _run_calls(backend: str, probe: Probe, handler: Any, **options: Any) -> list[Any]:
    results: list[Any] = [None] * CALLS

    async def main(tokens: int | None) -> None:
        if tokens is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = tokens
        with anyio.fail_after(60):  # safety net: a deadlock fails, never hangs
            async with (
                Container(**options) as container,
                anyio.create_task_group() as tg,
            ):
                for i in range(CALLS):

                    async def one(i: int = i) -> None:
                        results[i] = await container.call(handler, ident=i)

                    tg.start_soon(one)

    run(backend, main, options.pop("_tokens", None), timeout=120)
    return results


def _check(probe: Probe, results: list[Any], limited: bool) -> None:
    assert results == [
        (i, i, i * 10, f"audit-{i}", f"audit-{i}", False) for i in range(CALLS)
    ]
    assert sorted(probe.teardowns) == [(i, i) for i in range(CALLS)]
    assert probe.on_loop == [], "sync dependables ran on the event loop"
    assert not +probe.active, probe.active  # nothing still running
    assert probe.calls["session setup"] == probe.calls["session teardown"] == CALLS
    assert probe.calls["audit setup"] == probe.calls["audit teardown"] == 2 * CALLS
    if limited:
        assert probe.peak["parse"] <= 3, probe.peak
        assert probe.peak["lookup"] <= 2, probe.peak
        # a yield dependency holds its permit until its teardown has finished
        assert probe.peak["session held"] <= 5, probe.peak


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "max_concurrency"])
def test_hundred_concurrent_calls_with_sync_dependencies(
    backend: str, limited: bool
) -> None:
    """100 concurrent calls, each with sync functions, a class, a cached sync
    generator and two uncached ones, all in worker threads (the first two ``parse``
    calls meet at a barrier: threads really overlap), one of them calling back into
    the loop: no deadlock; each call gets its own values; each generator is torn down
    once, in a thread; ``max_concurrency`` limits hold (a generator's permit until its
    teardown)."""
    probe = Probe(overlap=1 if limited else 2)
    results = _run_calls(backend, probe, graph(probe, limited))
    _check(probe, results, limited)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "max_concurrency"])
def test_hundred_calls_in_sequential_mode(backend: str, limited: bool) -> None:
    """The same 100 concurrent calls on a sequential container (one dependency at a
    time within a call, calls still concurrent): no deadlock, same guarantees."""
    probe = Probe(overlap=1 if limited else 2)
    results = _run_calls(backend, probe, graph(probe, limited), sequential=True)
    _check(probe, results, limited)


@pytest.mark.parametrize("backend", BACKENDS)
def test_starved_thread_pool_does_not_deadlock(backend: str) -> None:
    """With the default thread limiter cut to one token, 100 concurrent calls whose
    generators hold ``max_concurrency`` permits until teardown still finish:
    teardowns never wait for the shared pool (a fresh limiter each, as FastAPI), and
    a call holding a permit never needs a second one to finish."""
    probe = Probe(overlap=1)
    results = _run_calls(backend, probe, graph(probe, True), _tokens=1)
    _check(probe, results, True)
