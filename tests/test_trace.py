"""Container.trace(): spans, tasks and threads, teardown timing, the critical path,
and that the timing wrappers change nothing about how dependencies behave."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import pytest

from anydepends import (
    CallKind,
    Container,
    Depends,
    MissingValuesError,
    UsageError,
    YieldError,
)
from anydepends._trace import Span, Trace

# -- dependables (module level: string annotations resolve against these globals) ------


class Gate:
    """Events two dependencies use to prove that they overlap, without sleeping."""

    def __init__(self) -> None:
        self.a = anyio.Event()
        self.b = anyio.Event()


GATE: Gate | None = None


def gate() -> Gate:
    assert GATE is not None
    return GATE


async def first() -> str:
    g = gate()
    g.a.set()
    await g.b.wait()  # only returns if `second` runs meanwhile
    return "first"


async def second() -> str:
    g = gate()
    g.b.set()
    await g.a.wait()
    return "second"


async def both(
    x: Annotated[str, Depends(first)], y: Annotated[str, Depends(second)]
) -> str:
    return x + y


async def base() -> int:
    return 1


async def slow(b: Annotated[int, Depends(base)]) -> int:
    await gate().a.wait()  # set by `fast`, so `slow` ends after `fast`
    return b + 1


async def fast() -> int:
    gate().a.set()  # and return at once: `slow` can only resume after this
    return 10


async def critical(
    s: Annotated[int, Depends(slow)], f: Annotated[int, Depends(fast)]
) -> int:
    return s + f


LOG: list[str] = []


async def async_resource() -> AsyncIterator[str]:
    LOG.append("async setup")
    try:
        yield "async"
    finally:
        LOG.append("async teardown")


def sync_resource() -> Iterator[str]:
    LOG.append("sync setup")
    try:
        yield "sync"
    finally:
        LOG.append("sync teardown")


def threaded() -> str:
    return "threaded"


def inline() -> str:
    return "inline"


async def resources(
    a: Annotated[str, Depends(async_resource)],
    s: Annotated[str, Depends(sync_resource)],
    t: Annotated[str, Depends(threaded)],
    i: Annotated[str, Depends(inline, sync_to_thread=False)],
    n: int,
) -> str:
    return f"{a} {s} {t} {i} {n}"


class Boom(Exception):
    pass


async def raiser() -> int:
    raise Boom("raised")


async def fails(
    r: Annotated[str, Depends(async_resource)], x: Annotated[int, Depends(raiser)]
) -> int:
    return x


async def handler_fails(r: Annotated[str, Depends(async_resource)]) -> None:
    raise Boom("in handler")


def sync_handler_fails(r: Annotated[str, Depends(sync_resource)]) -> None:
    raise Boom("in sync handler")


async def swallows() -> AsyncIterator[int]:
    try:
        yield 1
    except Boom:
        pass  # neither re-raises nor raises: an error in every scope


# Inline: a swallowing sync generator torn down in a worker thread is reported wrongly
# by the scheduler itself (NoEventLoopError), with or without tracing.
def sync_swallows() -> Iterator[int]:
    try:
        yield 1
    except Boom:
        pass


async def raises_after_swallow(x: Annotated[int, Depends(swallows)]) -> None:
    raise Boom("thrown in")


def raises_after_sync_swallow(
    x: Annotated[int, Depends(sync_swallows, sync_to_thread=False)],
) -> None:
    raise Boom("thrown in")


async def twice() -> AsyncIterator[int]:
    yield 1
    yield 2


def sync_twice() -> Iterator[int]:
    yield 1
    yield 2


async def never() -> AsyncIterator[int]:
    if False:
        yield 0


def sync_never() -> Iterator[int]:
    if False:
        yield 0


async def broken_teardown() -> AsyncIterator[int]:
    yield 1
    raise Boom("teardown")


def sync_broken_teardown() -> Iterator[int]:
    yield 1
    raise Boom("sync teardown")


async def uses_twice(x: Annotated[int, Depends(twice)]) -> int:
    return x


async def uses_sync_twice(x: Annotated[int, Depends(sync_twice)]) -> int:
    return x


async def uses_never(x: Annotated[int, Depends(never)]) -> int:
    return x


async def uses_sync_never(x: Annotated[int, Depends(sync_never)]) -> int:
    return x


async def uses_broken(x: Annotated[int, Depends(broken_teardown)]) -> int:
    return x


async def uses_sync_broken(x: Annotated[int, Depends(sync_broken_teardown)]) -> int:
    return x


async def retry_gen() -> AsyncIterator[int]:
    """Yields again after a thrown-in exception: the scheduler must still notice."""
    try:
        yield 1
    except Boom:
        yield 2


def sync_retry_gen() -> Iterator[int]:
    try:
        yield 1
    except Boom:
        yield 2


async def uses_retry(x: Annotated[int, Depends(retry_gen)]) -> None:
    raise Boom("again")


def uses_sync_retry(x: Annotated[int, Depends(sync_retry_gen)]) -> None:
    raise Boom("again")


CREATED: list[str] = []


async def app_value() -> str:
    CREATED.append("app")
    return "app"


async def on_app(a: Annotated[str, Depends(app_value, scope="app")]) -> str:
    return a


async def reads_app(x: Annotated[str, Depends(on_app)]) -> str:
    return x


async def inline_root(i: Annotated[str, Depends(inline, sync_to_thread=False)]) -> str:
    return i


def sync_root(t: Annotated[str, Depends(threaded)]) -> str:
    return t.upper()


async def original() -> str:
    return "original"


async def replacement() -> str:
    return "replacement"


async def overridden(x: Annotated[str, Depends(original)]) -> str:
    return x


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def names(trace: Trace[Any]) -> list[str]:
    return [short(s.name) for s in trace.spans]


# -- results and spans -----------------------------------------------------------------


async def test_trace_returns_result_and_one_span_per_node() -> None:
    """The result is the call's; every node ran once; the root is last."""
    LOG.clear()
    async with Container() as container:
        trace = await container.trace(resources, n=5)
        assert trace.result == await container.call(resources, n=5)
    assert trace.result == "async sync threaded inline 5"
    assert sorted(names(trace)) == sorted(
        ["async_resource", "sync_resource", "threaded", "inline", "resources"]
    )
    assert names(trace)[-1] == "resources"
    assert short(trace.root) == "resources"
    assert trace.skipped == ()
    assert trace.backend in ("asyncio", "trio")
    kinds = {short(s.name): s.kind for s in trace.spans}
    assert kinds["async_resource"] is CallKind.ASYNC_GEN
    assert kinds["sync_resource"] is CallKind.SYNC_GEN
    assert kinds["threaded"] is CallKind.SYNC
    assert kinds["resources"] is CallKind.ASYNC
    for s in trace.spans:
        assert 0 <= s.start <= s.end <= trace.duration
        assert s.duration == s.end - s.start
        assert s.error is None


async def test_threads_and_tasks_are_labelled() -> None:
    """Worker-thread spans say so; inline ones ran in the calling task."""
    async with Container() as container:
        trace = await container.trace(resources, n=1)
        inline_only = await container.trace(inline_root)
    threaded_span = trace.span("threaded")
    assert threaded_span.thread
    assert threaded_span.task.startswith("thread ")
    assert trace.span("sync_resource").thread
    assert not trace.span("inline").thread
    assert [s.task for s in inline_only.spans] == ["main", "main"]
    assert not any(s.thread for s in inline_only.spans)


async def test_sync_root_in_a_thread() -> None:
    """A sync root is wrapped too, and keeps running in a worker thread."""
    async with Container() as container:
        trace = await container.trace(sync_root)
    assert trace.result == "THREADED"
    root = trace.spans[-1]
    assert short(root.name) == "sync_root"
    assert root.thread
    assert root.lifetime == "function"


async def test_generator_setup_and_teardown_are_timed_separately() -> None:
    """A yield dependency's teardown starts after the root returned."""
    LOG.clear()
    async with Container() as container:
        trace = await container.trace(resources, n=1)
    root = trace.spans[-1]
    for name in ("async_resource", "sync_resource"):
        span = trace.span(name)
        assert span.teardown_start is not None
        assert span.teardown_end is not None
        assert span.end <= root.start <= root.end <= span.teardown_start
        assert span.teardown_start <= span.teardown_end <= trace.duration
    assert LOG == ["async setup", "sync setup", "sync teardown", "async teardown"] or (
        LOG == ["sync setup", "async setup", "async teardown", "sync teardown"]
    )


async def test_overlap_is_visible() -> None:
    """Two dependencies that can only finish together overlap in the trace."""
    global GATE
    GATE = Gate()
    async with Container() as container:
        trace = await container.trace(both)
    a, b = trace.span("first"), trace.span("second")
    assert a.start < b.end
    assert b.start < a.end
    assert a.task != b.task
    assert trace.peak >= 2


async def test_sequential_mode_never_overlaps() -> None:
    """In sequential mode every span ends before the next starts."""
    async with Container(sequential=True) as container:
        trace = await container.trace(resources, n=1)
    assert trace.peak == 1
    ordered = sorted(trace.spans, key=lambda s: s.start)
    for earlier, later in itertools.pairwise(ordered):
        assert earlier.end <= later.start


async def test_critical_path_follows_the_last_finisher() -> None:
    """The path steps to whichever dependency finished last, down to a source."""
    global GATE
    GATE = Gate()
    async with Container() as container:
        trace = await container.trace(critical)
    assert [short(s.name) for s in trace.critical_path] == ["base", "slow", "critical"]
    assert trace.result == 12


async def test_memo_hits_are_skipped_and_looked_through() -> None:
    """An app-scoped value made earlier is not called again; the path looks past it."""
    CREATED.clear()
    async with Container() as container:
        first_trace = await container.trace(reads_app)
        again = await container.trace(reads_app)
    assert CREATED == ["app"]
    assert "app_value" in [short(s.name) for s in first_trace.spans]
    assert [short(n) for n in again.skipped] == ["app_value"]
    assert [short(s.name) for s in again.critical_path] == ["on_app", "reads_app"]
    assert "not called (memo hit)" in again.timeline()
    assert "not called (memo hit)" in again.to_svg()


async def test_trace_after_many_calls() -> None:
    """A plan the scheduler has run (and learned about) many times still traces."""
    async with Container() as container:
        for _ in range(50):
            await container.call(resources, n=1)
        trace = await container.trace(resources, n=1)
        again = await container.call(resources, n=2)
    assert len(trace.spans) == 5
    assert again == "async sync threaded inline 2"


async def test_overrides_are_traced() -> None:
    """The replacement runs and is named in the trace."""
    async with Container() as container:
        with container.override(original, replacement):
            trace = await container.trace(overridden)
    assert trace.result == "replacement"
    assert "replacement" in names(trace)


# -- behaviour is unchanged ------------------------------------------------------------


async def test_the_original_exception_object_reaches_the_caller() -> None:
    """A failing dependency raises through the trace; its span records the error."""
    LOG.clear()
    async with Container() as container:
        with pytest.raises(Boom, match="raised"):
            await container.trace(fails)
    assert LOG.count("async teardown") == LOG.count("async setup")


@pytest.mark.parametrize("root", [handler_fails, sync_handler_fails])
async def test_exception_thrown_in_at_yield_keeps_identity(root: Any) -> None:
    """The generator wrappers pass the very exception object in and out."""
    LOG.clear()
    seen: list[BaseException] = []
    async with Container() as container:
        try:
            await container.trace(root)
        except Boom as exc:
            seen.append(exc)
    assert len(seen) == 1
    assert str(seen[0]).startswith("in ")
    assert LOG[-1].endswith("teardown")


@pytest.mark.parametrize(
    "root", [raises_after_swallow, raises_after_sync_swallow], ids=["async", "sync"]
)
async def test_swallowing_is_still_an_error(root: Any) -> None:
    """A generator that swallows the exception is reported through the wrapper."""
    async with Container() as container:
        with pytest.raises(YieldError, match="neither re-raised"):
            await container.trace(root)


@pytest.mark.parametrize(
    ("root", "message"),
    [
        (uses_twice, "more than once"),
        (uses_sync_twice, "more than once"),
        (uses_never, "without yielding"),
        (uses_sync_never, "without yielding"),
    ],
    ids=["async-twice", "sync-twice", "async-never", "sync-never"],
)
async def test_yield_mistakes_are_still_reported(root: Any, message: str) -> None:
    """Two yields and no yield are detected exactly as without tracing."""
    async with Container() as container:
        with pytest.raises(YieldError, match=message):
            await container.trace(root)


@pytest.mark.parametrize("root", [uses_retry, uses_sync_retry], ids=["async", "sync"])
async def test_yielding_again_after_a_throw_is_reported(root: Any) -> None:
    """A generator that yields again when an exception is thrown in is an error."""
    async with Container() as container:
        with pytest.raises(YieldError, match="more than once"):
            await container.trace(root)


@pytest.mark.parametrize(
    ("root", "message"),
    [(uses_broken, "teardown"), (uses_sync_broken, "sync teardown")],
    ids=["async", "sync"],
)
async def test_teardown_errors_propagate(root: Any, message: str) -> None:
    """An exception raised by a teardown reaches the caller of trace()."""
    async with Container() as container:
        with pytest.raises(Boom, match=f"^{message}$"):
            await container.trace(root)


async def test_missing_values_fail_before_anything_runs() -> None:
    """trace() checks values like call(): nothing runs, nothing is recorded."""
    LOG.clear()
    async with Container() as container:
        with pytest.raises(MissingValuesError):
            await container.trace(resources)
    assert LOG == []


async def test_trace_needs_an_open_container() -> None:
    """Tracing on a container that was never entered is a usage error."""
    with pytest.raises(UsageError):
        await Container().trace(base)


# -- rendering -------------------------------------------------------------------------


def make_trace() -> Trace[str]:
    """A hand-built trace, so rendering tests need no event loop."""
    spans = (
        Span(
            0,
            "mod.setup",
            CallKind.ASYNC_GEN,
            "request",
            "main",
            False,
            0.0,
            0.01,
            0.05,
            0.06,
        ),
        Span(1, "mod.worker", CallKind.SYNC, "request", "thread 1", True, 0.0, 0.02),
        Span(
            2,
            'mod.bad <one> & "x"',
            CallKind.SYNC_GEN,
            "request",
            "task 1",
            False,
            0.001,
            0.002,
            None,
            None,
            "Boom",
            (),
        ),
        Span(
            3,
            "mod.root",
            CallKind.ASYNC,
            "function",
            "main",
            False,
            0.02,
            0.05,
            deps=(0, 1, 2),
        ),
    )
    return Trace(
        result="ok",
        root="mod.root",
        spans=spans,
        skipped=(),
        duration=0.06,
        backend="asyncio",
    )


def test_timeline_marks_critical_path_teardown_and_errors() -> None:
    """Rows carry bars: # on the critical path, ~ teardown, ! a failure."""
    trace = make_trace()
    text = trace.timeline(width=30)
    lines = text.splitlines()
    assert lines[0] == "mod.root: 60.0 ms on asyncio, 3 dependencies, peak 3 at once"
    assert lines[1] == "critical path: mod.worker > mod.root"
    rows = {line[2:].split()[0]: line for line in lines[3:]}
    assert rows["mod.worker"].startswith("* ")
    assert "#" in rows["mod.worker"]
    assert "~" in rows["mod.setup"]
    assert "teardown 50.0 ms .. 60.0 ms" in rows["mod.setup"]
    assert "!" in rows["mod.bad"]
    assert str(trace) == trace.timeline()
    for line in lines[3:]:
        assert line.count("|") == 2
        assert len(line.split("|")[1]) == 30


def test_span_lookup() -> None:
    """span() finds by full or short name and refuses unknown names."""
    trace = make_trace()
    assert trace.span("mod.worker").index == 1
    assert trace.span("worker").index == 1
    with pytest.raises(KeyError, match="no span named"):
        trace.span("nope")


def test_critical_path_of_an_empty_trace() -> None:
    """No spans, no path (a defensive case: a trace always has its root)."""
    empty: Trace[None] = Trace(None, "r", (), (), 0.0, "trio")
    assert empty.critical_path == ()
    assert empty.peak == 0


def test_svg_is_wellformed_and_highlights_the_critical_path() -> None:
    """The SVG parses, has a bar per span plus teardowns, and escapes names."""
    svg = make_trace().to_svg()
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any("on the critical path" in t for t in titles)
    assert any("teardown: 50.0 ms .. 60.0 ms" in t for t in titles)
    assert any("raised Boom" in t for t in titles)
    assert 'stroke="#d62728"' in svg
    assert "&lt;one&gt; &amp; &quot;x&quot;" in svg
    assert "raised Boom" in svg


def test_html_embeds_the_chart_and_a_table() -> None:
    """to_html() is a standalone page: the SVG and one table row per span."""
    page = make_trace().to_html()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 1
    assert page.count("<tr>") == 1 + 4  # header + spans
    assert "&#9733;" in page  # critical-path star
    assert "sync, worker thread" in page
    assert "50.0 ms .. 60.0 ms" in page


async def test_real_trace_renders() -> None:
    """A trace of a real call renders in every format."""
    async with Container() as container:
        trace = await container.trace(resources, n=1)
    ET.fromstring(trace.to_svg())
    assert "resources" in trace.timeline()
    assert "<table>" in trace.to_html()


async def setup_fails() -> AsyncIterator[int]:
    raise Boom("async setup")
    yield 1  # pragma: no cover - never reached


def sync_setup_fails() -> Iterator[int]:
    raise Boom("sync setup")
    yield 1  # pragma: no cover - never reached


async def converts() -> AsyncIterator[int]:
    try:
        yield 1
    except Boom as exc:
        raise KeyError("converted") from exc


def sync_converts() -> Iterator[int]:
    try:
        yield 1
    except Boom as exc:
        raise KeyError("converted") from exc


async def uses_setup_fails(x: Annotated[int, Depends(setup_fails)]) -> int:
    return x


async def uses_sync_setup_fails(x: Annotated[int, Depends(sync_setup_fails)]) -> int:
    return x


async def uses_converts(x: Annotated[int, Depends(converts)]) -> None:
    raise Boom("converted below")


def uses_sync_converts(x: Annotated[int, Depends(sync_converts)]) -> None:
    raise Boom("converted below")


@pytest.mark.parametrize(
    ("root", "message"),
    [(uses_setup_fails, "async setup"), (uses_sync_setup_fails, "sync setup")],
    ids=["async", "sync"],
)
async def test_failing_generator_setup(root: Any, message: str) -> None:
    """A generator that raises before its yield fails the call, as without tracing."""
    async with Container() as container:
        with pytest.raises(Boom, match=message):
            await container.trace(root)


@pytest.mark.parametrize("root", [uses_converts, uses_sync_converts])
async def test_teardown_may_raise_another_exception(root: Any) -> None:
    """What a teardown raises instead of the thrown exception reaches the caller."""
    async with Container() as container:
        with pytest.raises(KeyError, match="converted") as info:
            await container.trace(root)
    assert isinstance(info.value.__cause__, Boom)
