"""Every conformance case of ``tests/conformance``, served by a FastAPI app: plain
``APIRoute`` vs ``ConcurrentRoute``, on asyncio and trio.

A case's root becomes ``GET /``, its values are query parameters and its overrides go
to ``app.dependency_overrides``, exactly as the conformance harness runs FastAPI. The
sequential route class must reproduce plain FastAPI entry for entry (status, body,
exception, the dependables' log in order); the concurrent one the same status, body
(or, for call counters, the same pattern of shared values) and exception, with the
log compared as a multiset. Both with the container entered and without.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI

from anydepends import Container
from anydepends.fastapi import ConcurrentRoute

from ..conformance import (  # importing the modules registers their cases
    test_caching,
    test_declarations,
    test_lifetimes,
    test_overrides,
    test_security,
    test_teardown,
)
from ..conformance.harness import FASTAPI, REGISTRY, Builder
from .harness import Reply, RouteClass, client, send
from .harness import Request as Call

_MODULES = (
    test_caching,
    test_declarations,
    test_lifetimes,
    test_overrides,
    test_security,
    test_teardown,
)


async def _run(
    build: Builder, route_class: RouteClass, *, entered: Container | None
) -> tuple[Reply, list[tuple[Any, ...]]]:
    case = build(FASTAPI)
    app = FastAPI()
    if route_class is not None:
        app.router.route_class = route_class
    try:
        app.get("/")(case.root)
    except Exception as exc:  # registration compiles: its errors are outcomes too
        return Reply(exc=(type(exc).__name__, str(exc))), case.log.entries
    app.dependency_overrides.update(case.overrides)
    values = dict(case.values)
    async with client(app) as http:
        if entered is not None:
            async with entered:
                reply = await send(http, Call(params=values))
        else:
            reply = await send(http, Call(params=values))
    return reply.normalised(), list(case.log.entries)


def _pattern(result: list[Any]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(result):
        groups.setdefault(repr(item), []).append(index)
    return sorted(groups.values())


@pytest.mark.parametrize("entered", [False, True], ids=["no-lifespan", "entered"])
@pytest.mark.parametrize("key", sorted(REGISTRY))
async def test_case_through_the_route_class(key: str, entered: bool) -> None:
    """The case answers through ``ConcurrentRoute`` as through plain FastAPI: the
    sequential route class exactly (log in order), the concurrent one with the
    same status, exception and body (or body pattern), and the same log entries."""
    assert _MODULES
    build = REGISTRY[key]
    expected, expected_log = await _run(build, None, entered=None)

    container = Container()
    seq_reply, seq_log = await _run(
        build,
        ConcurrentRoute(container, sequential=True),
        entered=container if entered else None,
    )
    assert seq_reply == expected, (expected, seq_reply)
    assert seq_log == expected_log

    container = Container()
    conc_reply, conc_log = await _run(
        build,
        ConcurrentRoute(container),
        entered=container if entered else None,
    )
    assert conc_reply.status == expected.status
    assert conc_reply.exc == expected.exc
    if conc_reply.body != expected.body:
        assert isinstance(expected.body, list), (expected, conc_reply)
        assert isinstance(conc_reply.body, list), (expected, conc_reply)
        assert _pattern(conc_reply.body) == _pattern(expected.body)
        events = Counter(tuple(e[:2]) for e in conc_log)
        assert events == Counter(tuple(e[:2]) for e in expected_log)
    elif expected.status == 200 and expected.exc is None:
        assert Counter(conc_log) == Counter(expected_log)
    else:
        _assert_failed_alike(expected_log, conc_log)


def _assert_failed_alike(
    expected: list[tuple[Any, ...]], actual: list[tuple[Any, ...]]
) -> None:
    """A failed request logs what FastAPI logs, plus at most dependencies that were
    already running when the failure came (FastAPI never starts them): each of those
    is set up and torn down exactly once."""
    extra = Counter(actual)
    extra.subtract(Counter(expected))
    assert all(n >= 0 for n in extra.values()), (expected, actual)
    entered = {e[0] for e in extra.elements() if e[1] == "enter"}
    exited = Counter(e[0] for e in extra.elements() if e[1] == "exit")
    assert exited == Counter(entered), (expected, actual)
    assert all(e[1] in ("enter", "exit") for e in extra.elements()), (expected, actual)
