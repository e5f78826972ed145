# ruff: noqa: I002
# No ``from __future__ import annotations`` here or in the test modules of this
# package: the dependables are closures built per run around a set of markers, and
# string annotations could not be resolved from a closure (FastAPI would silently
# fall back to the unevaluated strings). String annotations have their own case,
# in ``future_dependables.py``.
"""Differential harness: run the same dependables through FastAPI and anydepends.

A *case builder* is a function ``build(m: Markers) -> Case``. It creates fresh
dependables (and a fresh :class:`Log`) around the marker set ``m`` each time it is
called, so every run starts from zero. The builder is run:

* through FastAPI 0.165 with FastAPI's markers: the root becomes the endpoint of
  ``GET /``, ``Case.values`` are sent as query parameters, ``Case.overrides`` go to
  ``app.dependency_overrides``, and the JSON body is the result;
* through anydepends with anydepends' markers: ``await container.call(root,
  **values)``, overrides through ``container.overrides`` or ``container.override``.

An :class:`Outcome` holds the JSON-normalised result, the exception (if any) and the
log the dependables wrote; :func:`check` compares them.
"""

import json
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import fastapi
import fastapi.security

with warnings.catch_warnings():
    # Starlette 1.x warns once, at import, when only ``httpx`` (not ``httpx2``) is
    # installed; the test dependency group installs ``httpx``.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette")
    from fastapi.testclient import TestClient

Entry = tuple[Any, ...]


@dataclass(frozen=True)
class Markers:
    """One library's marker objects, so one builder can target either library."""

    name: str
    Depends: Callable[..., Any]
    Security: Callable[..., Any]
    SecurityScopes: type


FASTAPI = Markers(
    "fastapi", fastapi.Depends, fastapi.Security, fastapi.security.SecurityScopes
)


def anydepends_markers() -> Markers:
    """anydepends' own markers (imported lazily, so the FastAPI halves run alone)."""
    import anydepends

    return Markers(
        "anydepends",
        anydepends.Depends,
        anydepends.Security,
        anydepends.SecurityScopes,
    )


class Log:
    """A thread-safe event log; sync dependables write to it from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Entry] = []

    def __call__(self, *entry: Any) -> None:
        with self._lock:
            self.entries.append(tuple(entry))

    def count(self, name: str, event: str | None = None) -> int:
        """How many entries are about ``name`` (and, if given, ``event``)."""
        return sum(
            1
            for e in self.entries
            if e[0] == name and (event is None or (len(e) > 1 and e[1] == event))
        )


@dataclass
class Case:
    """What one run needs: the root, its log, its values and its overrides."""

    root: Callable[..., Any]
    log: Log
    values: dict[str, Any] = field(default_factory=dict)
    overrides: dict[Any, Any] = field(default_factory=dict)


Builder = Callable[[Markers], Case]


class ErrorResponse(Exception):
    """FastAPI answered with an error status (e.g. 422 for a missing input)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {json.dumps(body)}")
        self.status = status
        self.body = body


@dataclass
class Outcome:
    """What one run produced."""

    label: str
    result: Any = None
    exc: BaseException | None = None
    log: list[Entry] = field(default_factory=list)
    status: int | None = None  # FastAPI's HTTP status

    @property
    def exc_summary(self) -> tuple[str, str] | None:
        if self.exc is None:
            return None
        return (type(self.exc).__name__, str(self.exc))

    def __repr__(self) -> str:
        return (
            f"Outcome({self.label}: result={self.result!r}, "
            f"exc={self.exc_summary!r}, log={self.log!r})"
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def describe_exc(exc: BaseException) -> tuple[str, str]:
    """An exception as the log records it: ``(type name, message)``."""
    return (type(exc).__name__, str(exc))


@contextmanager
def logged(log: Log, name: str) -> Iterator[None]:
    """Log ``(name, "enter")`` and, at teardown, ``(name, "exit")`` or
    ``(name, "exit", type name, message)`` for whatever was thrown in at ``yield``.

    Use it around the ``yield`` of a (sync or async) generator dependency; what was
    thrown in is re-raised.
    """
    log(name, "enter")
    try:
        yield
    except BaseException as exc:
        log(name, "exit", *describe_exc(exc))
        raise
    log(name, "exit")


# --------------------------------------------------------------------------- runs


def run_fastapi_sync(case: Case, label: str = "fastapi") -> Outcome:
    """Run ``case`` as FastAPI's ``GET /`` through ``TestClient`` (blocking)."""
    outcome = Outcome(label)
    try:
        # Registration compiles the graph: its errors are outcomes too.
        app = fastapi.FastAPI()
        app.get("/")(case.root)
        app.dependency_overrides.update(case.overrides)
        with TestClient(app, raise_server_exceptions=True) as client:
            response = client.get("/", params=case.values)
            outcome.status = response.status_code
            if response.status_code != 200:
                raise ErrorResponse(response.status_code, response.json())
            outcome.result = response.json()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a leaked cancellation is an outcome too
        outcome.exc = exc
    outcome.log = list(case.log.entries)
    return outcome


async def run_fastapi(case: Case, label: str = "fastapi") -> Outcome:
    """:func:`run_fastapi_sync` in a worker thread (TestClient runs its own loop)."""
    return await anyio.to_thread.run_sync(run_fastapi_sync, case, label)


async def run_anydepends(
    case: Case,
    *,
    sequential: bool,
    override_style: str = "mapping",
    label: str | None = None,
) -> Outcome:
    """Run ``case`` through ``Container(sequential=...).call(root, **values)``.

    ``override_style`` is ``"mapping"`` (``container.overrides[k] = v``) or
    ``"context"`` (one nested ``container.override(k, v)`` per override).
    """
    from anydepends import Container

    outcome = Outcome(
        label or f"anydepends(sequential={sequential}, overrides={override_style})"
    )
    try:
        async with Container(sequential=sequential) as container:
            with ExitStack() as stack:
                for original, replacement in case.overrides.items():
                    if override_style == "mapping":
                        container.overrides[original] = replacement
                    else:
                        stack.enter_context(container.override(original, replacement))
                outcome.result = _jsonable(
                    await container.call(case.root, **case.values)
                )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a leaked cancellation is an outcome too
        outcome.exc = exc
    outcome.log = list(case.log.entries)
    return outcome


# -------------------------------------------------------------------- comparing


def assert_same_exception(expected: Outcome, actual: Outcome) -> None:
    """Both raised the same exception type with the same message, or neither did."""
    if expected.exc is None and actual.exc is not None:
        raise AssertionError(
            f"{actual.label} raised but {expected.label} did not:\n"
            f"  {expected!r}\n  {actual!r}"
        ) from actual.exc
    assert actual.exc_summary == expected.exc_summary, (
        f"exception differs:\n  {expected!r}\n  {actual!r}"
    )


def assert_same(expected: Outcome, actual: Outcome, *, order: str = "exact") -> None:
    """``actual`` reproduces ``expected``.

    ``order``: ``"exact"`` compares the logs entry by entry, ``"multiset"`` compares
    them ignoring order (concurrent runs), ``"none"`` ignores the logs.
    """
    assert_same_exception(expected, actual)
    if expected.exc is None:
        assert actual.result == expected.result, (
            f"result differs:\n  {expected!r}\n  {actual!r}"
        )
    if order == "exact":
        assert actual.log == expected.log, f"log differs:\n  {expected!r}\n  {actual!r}"
    elif order == "multiset":
        assert Counter(actual.log) == Counter(expected.log), (
            f"log (as a multiset) differs:\n  {expected!r}\n  {actual!r}"
        )
    else:
        assert order == "none", order


def _pattern(result: Any) -> list[list[int]]:
    items = [json.dumps(item, sort_keys=True) for item in result]
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(item, []).append(index)
    return sorted(groups.values())


def _events(log: Sequence[Entry]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(entry[:2]) for entry in log)


def assert_same_pattern(expected: Outcome, actual: Outcome) -> None:
    """The order-independent part of :func:`assert_same`, for counter-valued cases.

    ``result`` must be a list. Values may differ (a call counter depends on which
    call ran first), but the same positions must hold equal values, and every
    ``(name, event)`` must be logged as many times: the same declarations share a
    value, and the same number of calls happen.
    """
    assert_same_exception(expected, actual)
    assert isinstance(expected.result, list), expected
    assert isinstance(actual.result, list), actual
    assert len(actual.result) == len(expected.result), (expected, actual)
    assert _pattern(actual.result) == _pattern(expected.result), (
        f"different declarations share a value:\n  {expected!r}\n  {actual!r}"
    )
    assert _events(actual.log) == _events(expected.log), (
        f"different number of calls:\n  {expected!r}\n  {actual!r}"
    )


def seeded_by_an_uncached_call(name: str) -> Callable[[Outcome], None]:
    """The concurrent check for ``[nocache, nocache, cached]`` results ``[a, b, c]``.

    Both uncached declarations call (``a != b``, two calls of ``name``) and the
    cached one gets the first *stored* value; which uncached call stores first is
    completion order when they run concurrently, so ``c`` is ``a`` or ``b``.
    """

    def check_outcome(outcome: Outcome) -> None:
        a, b, c = outcome.result
        assert a != b, outcome
        assert c in (a, b), outcome
        calls = [entry for entry in outcome.log if entry[0] == name]
        assert len(calls) == 2, outcome

    return check_outcome


@dataclass
class Results:
    fastapi: Outcome
    sequential: Outcome
    concurrent: list[Outcome]


async def check(
    build: Builder,
    *,
    expect: Any = None,
    expect_log: Sequence[Entry] | None = None,
    expect_exc: tuple[str, str] | None = None,
    order: str = "multiset",
    partial_order: Mapping[str, Sequence[str]] | None = None,
    concurrent: str | Callable[[Outcome], None] = "same",
) -> Results:
    """Run ``build`` through FastAPI and anydepends and compare everything.

    * ``expect``/``expect_log``/``expect_exc`` pin what FastAPI itself does, so the
      suite notices if the reference moves;
    * ``Container(sequential=True)`` must reproduce FastAPI exactly (result or
      exception, and the log entry by entry);
    * the default concurrent container must give the same result or exception and
      the log compared as ``order`` says (``"multiset"`` by default);
      ``partial_order`` (node -> its dependencies) is then checked on its log with
      :func:`assert_dependency_order`. With overrides it runs once with the mapping
      and once with ``container.override`` context managers. Where FastAPI's order
      decides values (call counters), ``concurrent="pattern"`` compares the
      concurrent runs with :func:`assert_same_pattern` instead, and a callable
      ``concurrent`` replaces that comparison with its own assertions.
    """
    fa = await run_fastapi(build(FASTAPI))
    if expect is not None:
        assert fa.exc is None, fa
        assert fa.result == expect, fa
    if expect_exc is not None:
        assert fa.exc_summary == expect_exc, fa
    elif fa.exc is not None:
        raise AssertionError(f"FastAPI raised unexpectedly: {fa!r}") from fa.exc
    if expect_log is not None:
        assert fa.log == [tuple(e) for e in expect_log], fa
    if partial_order is not None:
        assert_dependency_order(fa.log, partial_order)

    m = anydepends_markers()
    seq = await run_anydepends(build(m), sequential=True)
    assert_same(fa, seq, order="exact")

    concurrent_runs: list[Outcome] = []
    probe = build(m)
    styles = ["mapping", "context"] if probe.overrides else ["mapping"]
    for style in styles:
        case = probe if style == "mapping" else build(m)
        conc = await run_anydepends(case, sequential=False, override_style=style)
        if concurrent == "same":
            assert_same(fa, conc, order=order)
        elif concurrent == "pattern":
            assert_same_pattern(fa, conc)
        else:
            assert callable(concurrent), concurrent
            assert_same_exception(fa, conc)
            concurrent(conc)
        if partial_order is not None:
            assert_dependency_order(conc.log, partial_order)
        concurrent_runs.append(conc)
    return Results(fa, seq, concurrent_runs)


def assert_dependency_order(
    log: Sequence[Entry],
    dependencies: Mapping[str, Sequence[str]],
    *,
    enter: str = "enter",
    exit: str = "exit",
) -> None:
    """The partial order anydepends guarantees, checked on one log.

    ``dependencies`` maps a node name to the names of its own dependencies. Each
    node must be entered after all its dependencies were entered, and exited after
    all its dependents and before all its dependencies (docs/semantics.md §6).
    Each named node must be entered and exited exactly once.
    """
    positions: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(log):
        key = (entry[0], entry[1])
        if key[1] in (enter, exit):
            assert key not in positions, f"{key} logged twice in {log}"
            positions[key] = index
    for node, deps in dependencies.items():
        for dep in deps:
            for name in (node, dep):
                assert (name, enter) in positions, f"{name} never entered: {log}"
                assert (name, exit) in positions, f"{name} never exited: {log}"
            assert positions[(dep, enter)] < positions[(node, enter)], (
                f"{node} entered before its dependency {dep}: {log}"
            )
            assert positions[(node, exit)] < positions[(dep, exit)], (
                f"{dep} exited before its dependent {node}: {log}"
            )


# ------------------------------------------------------------------- registry

#: Builders whose FastAPI and anydepends outcomes must be identical. The FastAPI
#: markers test runs each of them through anydepends *with FastAPI's markers*.
REGISTRY: dict[str, Builder] = {}


def conformance_case(build: Builder) -> Builder:
    """Register ``build`` as a case with no documented deviation."""
    key = f"{build.__module__.rsplit('.', 1)[-1]}::{build.__name__}"
    assert key not in REGISTRY, key
    REGISTRY[key] = build
    return build
