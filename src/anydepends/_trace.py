"""Tracing a call: when each dependency ran, in which task, and the critical path.

:meth:`Container.trace <anydepends.Container.trace>` runs a root callable exactly as
:meth:`Container.call <anydepends.Container.call>` does, through the same scheduler,
but on an instrumented copy of its plan: each node's
``call`` is replaced by a timing wrapper *of the same kind* (an async function by an
async function, a sync generator by a sync generator, ...). The scheduler never
introspects (it calls ``node.call(**kwargs)`` by the node's kind), so the wrappers
run exactly where the originals would: inline, in a worker thread, in a helper task.
Nothing in the scheduler knows it is being traced.
"""

from __future__ import annotations

import dataclasses
import html
import math
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ._backend import current_task, is_trio
from ._codeinfo import GEN_INFO_ATTR, gen_info
from ._introspect import CallKind
from ._plan import Node, Plan

__all__ = ["Recording", "Span", "Trace"]

T = TypeVar("T")

_BAR_WIDTH: Final = 48  # characters of the text timeline's time axis


@dataclass(frozen=True, slots=True)
class Span:
    """When one dependency (or the root) ran during a traced call.

    Times are seconds from the start of the call (``time.perf_counter`` based). For a
    ``yield`` dependency, ``start``..``end`` is its setup (up to the ``yield``) and
    ``teardown_start``..``teardown_end`` the code after it; teardowns that had not run
    when the trace ended (app-scoped ones run when the container exits) are ``None``.

    Attributes:
        index: The node's index in the plan.
        name: The dependable's qualified name.
        kind: How it was invoked.
        lifetime: ``"function"``, ``"request"`` or ``"app"``.
        task: Where its setup ran: ``"main"`` (the task that called
            :meth:`~anydepends.Container.trace`), ``"task 1"``, ``"task 2"``, ...
            (other tasks, in order of first use) or ``"thread 1"``, ... (worker
            threads).
        thread: Whether its setup ran in a worker thread.
        start: When its callable was called.
        end: When it returned (or yielded, or raised).
        teardown_start: When its teardown began (``yield`` dependencies only).
        teardown_end: When its teardown finished.
        error: The type name of the exception it raised, if any.
        deps: Indices of the nodes it waited for.
    """

    index: int
    name: str
    kind: CallKind
    lifetime: str
    task: str
    thread: bool
    start: float
    end: float
    teardown_start: float | None = None
    teardown_end: float | None = None
    error: str | None = None
    deps: tuple[int, ...] = ()

    @property
    def duration(self) -> float:
        """Seconds from start to end (the setup, for a ``yield`` dependency)."""
        return self.end - self.start


@dataclass(frozen=True)
class Trace(Generic[T]):
    """What :meth:`~anydepends.Container.trace` returns: the value, and when things ran.

    Attributes:
        result: What the root callable returned.
        root: The root callable's qualified name.
        spans: One :class:`Span` per dependable that was called, the root last, in
            order of start.
        skipped: Names of plan nodes that were not called: their value came from a
            memo (an app-scoped value created before, say).
        duration: Seconds from the start of the call until it returned, including
            function- and request-scoped teardowns.
        backend: ``"asyncio"`` or ``"trio"``.
    """

    result: T
    root: str
    spans: tuple[Span, ...]
    skipped: tuple[str, ...]
    duration: float
    backend: str
    # Dependencies of nodes that did not run, so the critical path can look through a
    # memo hit to what ran below it (set by trace_call).
    _skipped_deps: tuple[tuple[int, tuple[int, ...]], ...] = dataclasses.field(
        default=(), repr=False
    )

    # -- queries --------------------------------------------------------------------
    def span(self, name: str) -> Span:
        """The span of the dependable called *name* (its qualified name, or the end
        of it after the last dot); :class:`KeyError` if none or several match."""
        found = [s for s in self.spans if s.name == name]
        if not found:
            found = [s for s in self.spans if s.name.rsplit(".", 1)[-1] == name]
        if len(found) != 1:
            what = "no" if not found else "several"
            msg = f"{what} span named {name!r} (spans: {[s.name for s in self.spans]})"
            raise KeyError(msg)
        return found[0]

    @property
    def critical_path(self) -> tuple[Span, ...]:
        """The chain that decided when the root could start, first to last.

        From the root, repeatedly step to the dependency that finished last: that is
        what each node waited for. Shortening anything off this path does not make
        the call faster.
        """
        by_index = {s.index: s for s in self.spans}
        if not by_index:
            return ()
        current = self.spans[-1]
        chain = [current]
        while True:
            candidates = [
                by_index[i] for i in _ran_deps(current.deps, by_index, self._all_deps())
            ]
            if not candidates:
                break
            current = max(candidates, key=lambda s: (s.end, -s.start))
            chain.append(current)
        chain.reverse()
        return tuple(chain)

    def _all_deps(self) -> dict[int, tuple[int, ...]]:
        return {s.index: s.deps for s in self.spans} | dict(self._skipped_deps)

    @property
    def peak(self) -> int:
        """The most setups that were in progress at the same moment."""
        events = sorted(
            [(s.start, 1) for s in self.spans] + [(s.end, -1) for s in self.spans],
            key=lambda e: (e[0], e[1]),
        )
        running = most = 0
        for _, step in events:
            running += step
            most = max(most, running)
        return most

    # -- rendering ------------------------------------------------------------------
    def timeline(self, width: int = _BAR_WIDTH) -> str:
        """A text timeline: one row per span, bars on a shared time axis.

        ``=`` is a setup or call, ``#`` one on the critical path (also marked ``*``),
        ``~`` a teardown, ``!`` one that raised.
        """
        total = self.duration or 1e-9
        critical = {s.index for s in self.critical_path}
        names = [s.name for s in self.spans]
        name_w = max([len(n) for n in names] + [4])
        task_w = max([len(s.task) for s in self.spans] + [4])
        head = (
            f"{self.root}: {_ms(self.duration)} on {self.backend}, "
            f"{len(self.spans) - 1} dependencies, peak {self.peak} at once"
        )
        lines = [head]
        if self.critical_path:
            chain = " > ".join(s.name for s in self.critical_path)
            lines.append(f"critical path: {chain}")
        if self.skipped:
            lines.append(f"not called (memo hit): {', '.join(self.skipped)}")
        axis = "0 ms".ljust(width // 2) + _ms(self.duration).rjust(width - width // 2)
        lines.append(f"  {'':{name_w}}  {'':{task_w}}   {axis}")
        for s in self.spans:
            cells = [" "] * width
            mark = "!" if s.error else ("#" if s.index in critical else "=")
            _paint(cells, s.start, s.end, total, mark)
            if s.teardown_start is not None and s.teardown_end is not None:
                _paint(cells, s.teardown_start, s.teardown_end, total, "~")
            star = "*" if s.index in critical else " "
            times = f"{_ms(s.start)} .. {_ms(s.end)}"
            if s.teardown_start is not None and s.teardown_end is not None:
                times += f", teardown {_ms(s.teardown_start)} .. {_ms(s.teardown_end)}"
            bar = "".join(cells)
            row = f"{star} {s.name:{name_w}}  {s.task:{task_w}}  |{bar}|  {times}"
            lines.append(row)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.timeline()

    def to_svg(self, width: int = 880) -> str:
        """A self-contained SVG chart: one bar per span on a time axis.

        Bars are coloured by kind; the critical path is outlined in red; teardowns
        are drawn lighter and hatched; every bar has a tooltip with exact times.
        """
        return _svg(self, width)

    def to_html(self, width: int = 880) -> str:
        """A standalone HTML page with the SVG chart and a table of the spans."""
        rows: list[str] = []
        critical = {s.index for s in self.critical_path}
        for s in self.spans:
            teardown = (
                f"{_ms(s.teardown_start)} .. {_ms(s.teardown_end)}"
                if s.teardown_start is not None and s.teardown_end is not None
                else ""
            )
            rows.append(
                "<tr>"
                f"<td>{'&#9733;' if s.index in critical else ''}</td>"
                f"<td><code>{html.escape(s.name)}</code></td>"
                f"<td>{html.escape(kind_name(s.kind, s.thread))}</td>"
                f"<td>{s.lifetime}</td><td>{html.escape(s.task)}</td>"
                f"<td>{_ms(s.start)}</td><td>{_ms(s.end)}</td><td>{teardown}</td>"
                f"<td>{html.escape(s.error or '')}</td>"
                "</tr>"
            )
        title = html.escape(f"Trace of {self.root}")
        return (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{title}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}"
            "table{border-collapse:collapse;margin-top:1em}"
            "td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}"
            "</style></head><body>\n"
            f"<h1>{title}</h1>\n{_svg(self, width)}\n<table><thead><tr><th></th>"
            "<th>dependable</th><th>kind</th><th>lifetime</th><th>task</th>"
            "<th>start</th><th>end</th><th>teardown</th><th>error</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>\n</body></html>\n"
        )


def kind_name(kind: CallKind, thread: bool) -> str:
    """A span's kind in words (``sync, worker thread``, ``async yield``, ...)."""
    text = {
        CallKind.ASYNC: "async",
        CallKind.SYNC: "sync",
        CallKind.ASYNC_GEN: "async yield",
        CallKind.SYNC_GEN: "sync yield",
    }[kind]
    if kind in (CallKind.SYNC, CallKind.SYNC_GEN):
        text += ", worker thread" if thread else ", inline"
    return text


def _ran_deps(
    deps: tuple[int, ...], ran: dict[int, Span], all_deps: dict[int, tuple[int, ...]]
) -> list[int]:
    """*deps* that ran, looking through nodes that did not run to their own deps."""
    found: list[int] = []
    seen: set[int] = set()
    pending = list(deps)
    while pending:
        index = pending.pop()
        if index in seen:
            continue
        seen.add(index)
        if index in ran:
            found.append(index)
        else:
            pending.extend(all_deps.get(index, ()))
    return found


def _ms(seconds: float | None) -> str:
    """*seconds* as milliseconds with one decimal: ``12.3 ms``."""
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _paint(cells: list[str], start: float, end: float, total: float, mark: str) -> None:
    """Fill the cells of a text bar covering *start*..*end* of *total* seconds."""
    width = len(cells)
    first = min(width - 1, max(0, int(start / total * width)))
    last = min(width, max(first + 1, math.ceil(end / total * width)))
    for i in range(first, last):
        cells[i] = mark


# -- recording -------------------------------------------------------------------------
class _Open:
    """A span being recorded (mutable until the trace is built)."""

    __slots__ = (
        "end",
        "error",
        "start",
        "task",
        "teardown_end",
        "teardown_start",
        "thread",
    )

    def __init__(self, start: float, task: str, thread: bool) -> None:
        self.start = start
        self.end = start
        self.task = task
        self.thread = thread
        self.error: str | None = None
        self.teardown_start: float | None = None
        self.teardown_end: float | None = None


class _Recorder:
    """Collects spans from wrappers running in tasks and worker threads."""

    def __init__(self, size: int) -> None:
        self.t0 = time.perf_counter()
        self.loop_thread = threading.get_ident()
        self.open: list[_Open | None] = [None] * size
        self.labels: dict[object, str] = {current_task(): "main"}
        self.tasks = 0
        self.threads = 0
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def where(self) -> tuple[str, bool]:
        """A label for the running task or worker thread, and whether it is a thread."""
        in_thread = threading.get_ident() != self.loop_thread
        # Keep the task objects themselves (not ids): ids are reused once tasks die.
        who: object = threading.current_thread() if in_thread else current_task()
        with self.lock:
            label = self.labels.get(who)
            if label is None:
                if in_thread:
                    self.threads += 1
                    label = f"thread {self.threads}"
                else:
                    self.tasks += 1
                    label = f"task {self.tasks}"
                self.labels[who] = label
        return label, in_thread

    def begin(self, index: int) -> _Open:
        task, thread = self.where()
        span = self.open[index] = _Open(self.now(), task, thread)
        return span

    def finish(self, span: _Open, error: BaseException | None = None) -> None:
        span.end = self.now()
        if error is not None:
            span.error = type(error).__name__


def _wrap(node: Node, rec: _Recorder) -> Callable[..., Any]:
    """A timing wrapper for *node*'s callable, of the same kind (see the module doc)."""
    call = node.call
    index = node.index
    kind = node.kind
    if kind is CallKind.ASYNC:

        async def traced_async(**kwargs: Any) -> Any:
            span = rec.begin(index)
            try:
                value = await call(**kwargs)
            except BaseException as exc:
                rec.finish(span, exc)
                raise
            rec.finish(span)
            return value

        return traced_async
    if kind is CallKind.SYNC:

        def traced_sync(**kwargs: Any) -> Any:
            span = rec.begin(index)
            try:
                value = call(**kwargs)
            except BaseException as exc:
                rec.finish(span, exc)
                raise
            rec.finish(span)
            return value

        return traced_sync
    if kind is CallKind.ASYNC_GEN:
        return _async_gen_wrapper(call, index, rec)
    return _sync_gen_wrapper(call, index, rec)


def _async_gen_wrapper(
    call: Callable[..., Any], index: int, rec: _Recorder
) -> Callable[..., AsyncGenerator[Any, Any]]:
    """Delegate to an async generator, timing its setup and teardown separately.

    Whatever the scheduler sends or throws in is passed on unchanged, and whatever
    the inner generator raises (the very same exception object) or yields comes back
    unchanged, so the scheduler's checks (no yield, two yields, a swallowed
    exception) see the inner generator's behaviour.
    """

    async def traced_async_gen(**kwargs: Any) -> AsyncGenerator[Any, Any]:
        span = rec.begin(index)
        inner = call(**kwargs)
        try:
            value = await inner.__anext__()
        except StopAsyncIteration:
            rec.finish(span)
            return
        except BaseException as exc:
            rec.finish(span, exc)
            raise
        rec.finish(span)
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                await inner.aclose()
                raise
            except BaseException as exc:
                _teardown_begins(span, rec)
                try:
                    value = await inner.athrow(exc)
                except StopAsyncIteration:
                    span.teardown_end = rec.now()
                    return
                except BaseException as raised:
                    span.teardown_end = rec.now()
                    if raised is not exc:
                        span.error = type(raised).__name__
                    raise
            else:
                _teardown_begins(span, rec)
                try:
                    value = await inner.asend(sent)
                except StopAsyncIteration:
                    span.teardown_end = rec.now()
                    return
                except BaseException as raised:
                    span.teardown_end = rec.now()
                    span.error = type(raised).__name__
                    raise
            span.teardown_end = rec.now()  # it yielded again: the scheduler reports it

    # What the engine reads from a generator's code is the traced one's, not ours.
    setattr(traced_async_gen, GEN_INFO_ATTR, gen_info(call))
    return traced_async_gen


def _sync_gen_wrapper(
    call: Callable[..., Any], index: int, rec: _Recorder
) -> Callable[..., Generator[Any, Any, None]]:
    """The sync twin of :func:`_async_gen_wrapper` (runs wherever the halves run)."""

    def traced_sync_gen(**kwargs: Any) -> Generator[Any, Any, None]:
        span = rec.begin(index)
        inner = call(**kwargs)
        try:
            value = next(inner)
        except StopIteration:
            rec.finish(span)
            return
        except BaseException as exc:
            rec.finish(span, exc)
            raise
        rec.finish(span)
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:
                _teardown_begins(span, rec)
                try:
                    value = inner.throw(exc)
                except StopIteration:
                    span.teardown_end = rec.now()
                    return
                except BaseException as raised:
                    span.teardown_end = rec.now()
                    if raised is not exc:
                        span.error = type(raised).__name__
                    raise
            else:
                _teardown_begins(span, rec)
                try:
                    value = inner.send(sent)
                except StopIteration:
                    span.teardown_end = rec.now()
                    return
                except BaseException as raised:
                    span.teardown_end = rec.now()
                    span.error = type(raised).__name__
                    raise
            span.teardown_end = rec.now()

    return traced_sync_gen


def _teardown_begins(span: _Open, rec: _Recorder) -> None:
    if span.teardown_start is None:
        span.teardown_start = rec.now()


def instrument(plan: Plan[T], rec: _Recorder) -> Plan[T]:
    """A copy of *plan* whose every node (the root too) calls a timing wrapper.

    The engine caches its generated code per container and plan object, never on the
    plan itself, so the copy can only ever run the wrapped nodes.
    """
    nodes = tuple(dataclasses.replace(n, call=_wrap(n, rec)) for n in plan.nodes)
    return dataclasses.replace(plan, nodes=nodes)


def _backend() -> str:
    """The running event loop's library (anyio runs on exactly these two)."""
    return "trio" if is_trio() else "asyncio"


class Recording:
    """One traced call: the instrumented plan to run, then the :class:`Trace`.

    :meth:`Container.trace <anydepends.Container.trace>` runs :attr:`plan` exactly as
    :meth:`Container.call <anydepends.Container.call>` runs a plan, then calls
    :meth:`finish` with the result.
    """

    def __init__(self, plan: Plan[Any]) -> None:
        self.original = plan
        self.rec = _Recorder(len(plan.nodes))
        self.plan = instrument(plan, self.rec)
        self.rec.t0 = time.perf_counter()

    def finish(self, result: T) -> Trace[T]:
        """The trace of the call that returned *result*."""
        rec = self.rec
        plan = self.original
        duration = rec.now()
        spans: list[Span] = []
        skipped: list[str] = []
        skipped_deps: list[tuple[int, tuple[int, ...]]] = []
        for node in plan.nodes:
            found = rec.open[node.index]
            if found is None:
                skipped.append(node.name)
                skipped_deps.append((node.index, node.deps))
                continue
            spans.append(
                Span(
                    index=node.index,
                    name=node.name,
                    kind=node.kind,
                    lifetime=(
                        "function" if node is plan.root_node else str(node.lifetime)
                    ),
                    task=found.task,
                    thread=found.thread,
                    start=found.start,
                    end=found.end,
                    teardown_start=found.teardown_start,
                    teardown_end=found.teardown_end,
                    error=found.error,
                    deps=node.deps,
                )
            )
        root = (
            spans.pop() if spans and spans[-1].index == plan.root_node.index else None
        )
        spans.sort(key=lambda s: (s.start, s.index))
        if root is not None:
            spans.append(root)
        return Trace(
            result=result,
            root=plan.root_node.name,
            spans=tuple(spans),
            skipped=tuple(skipped),
            duration=duration,
            backend=_backend(),
            _skipped_deps=tuple(skipped_deps),
        )


# -- SVG -------------------------------------------------------------------------------
_COLOURS: Final = {
    CallKind.ASYNC: "#4c78a8",
    CallKind.SYNC: "#f58518",
    CallKind.ASYNC_GEN: "#54a24b",
    CallKind.SYNC_GEN: "#b279a2",
}
_CRITICAL: Final = "#d62728"


def _nice_step(total_ms: float, ticks: int = 8) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving about *ticks* ticks."""
    raw = max(total_ms / ticks, 1e-6)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(f * power for f in (1.0, 2.0, 5.0, 10.0) if raw <= f * power)


def _svg(trace: Trace[Any], width: int) -> str:
    """Render *trace* as a standalone SVG document."""
    spans = trace.spans
    critical = {s.index for s in trace.critical_path}
    label_w = min(
        320, 16 + 7 * max([len(s.name) + len(s.task) + 3 for s in spans] + [10])
    )
    left, right, top, row = label_w, 24, 56, 24
    plot_w = max(120, width - left - right)
    height = top + row * len(spans) + 70
    total = trace.duration or 1e-9
    total_ms = total * 1000
    step = _nice_step(total_ms)

    def x(seconds: float) -> float:
        return left + seconds / total * plot_w

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="system-ui, -apple-system,'
        ' Segoe UI, Helvetica, Arial, sans-serif" font-size="12">',
        "<defs><pattern id='hatch' width='6' height='6' patternUnits='userSpaceOnUse'"
        " patternTransform='rotate(45)'><rect width='6' height='6' fill='white'"
        " fill-opacity='0.0'/><line x1='0' y1='0' x2='0' y2='6' stroke='#ffffff'"
        " stroke-width='2' stroke-opacity='0.7'/></pattern></defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    title = (
        f"{trace.root}: {_ms(trace.duration)} on {trace.backend}, "
        f"{len(spans) - 1} dependencies, peak {trace.peak} at once"
    )
    out.append(
        '<text x="12" y="22" font-size="14" font-weight="bold">'
        f"{html.escape(title)}</text>"
    )
    tick = 0.0
    while tick <= total_ms + 1e-9:
        tx = x(tick / 1000)
        out.append(
            f'<line x1="{tx:.1f}" y1="{top - 8}" x2="{tx:.1f}"'
            f' y2="{top + row * len(spans)}" stroke="#e5e5e5"/>'
            f'<text x="{tx:.1f}" y="{top - 12}" text-anchor="middle" fill="#555">'
            f"{tick:g} ms</text>"
        )
        tick += step
    for position, s in enumerate(spans):
        y = top + position * row
        on_path = s.index in critical
        if position % 2:
            out.append(
                f'<rect x="0" y="{y}" width="{width}" height="{row}" fill="#f7f7f7"'
                ' fill-opacity="0.6"/>'
            )
        weight = ' font-weight="bold"' if on_path else ""
        out.append(
            f'<text x="{left - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end"{weight}>'
            f'{html.escape(s.name)} <tspan fill="#777">({html.escape(s.task)})</tspan>'
            "</text>"
        )
        colour = _COLOURS[s.kind]
        x0 = x(s.start)
        w = max(2.0, x(s.end) - x0)
        stroke = (
            f' stroke="{_CRITICAL}" stroke-width="2.5"' if on_path else ' stroke="none"'
        )
        tip = (
            f"{s.name}: {kind_name(s.kind, s.thread)}, {s.lifetime}, in {s.task}\n"
            f"{_ms(s.start)} .. {_ms(s.end)} ({_ms(s.duration)})"
            + (f"\nraised {s.error}" if s.error else "")
            + ("\non the critical path" if on_path else "")
        )
        out.append(
            f'<rect x="{x0:.1f}" y="{y + 5}" width="{w:.1f}" height="{row - 10}"'
            f' rx="2" fill="{colour}"{stroke}><title>{html.escape(tip)}</title></rect>'
        )
        if s.teardown_start is not None and s.teardown_end is not None:
            t0 = x(s.teardown_start)
            tw = max(2.0, x(s.teardown_end) - t0)
            tip = f"{s.name} teardown: {_ms(s.teardown_start)} .. {_ms(s.teardown_end)}"
            out.append(
                f"<g><title>{html.escape(tip)}</title>"
                f'<rect x="{t0:.1f}" y="{y + 5}" width="{tw:.1f}" height="{row - 10}"'
                f' rx="2" fill="{colour}" fill-opacity="0.45"/>'
                f'<rect x="{t0:.1f}" y="{y + 5}" width="{tw:.1f}" height="{row - 10}"'
                ' fill="url(#hatch)"/></g>'
            )
        if s.error:
            out.append(
                f'<text x="{x0 + w + 4:.1f}" y="{y + row / 2 + 4:.1f}"'
                f' fill="{_CRITICAL}">raised {html.escape(s.error)}</text>'
            )
    # Legend.
    ly = top + row * len(spans) + 28
    lx = 12.0
    kinds = {s.kind for s in spans}
    items = [
        (kind_name(kind, False).split(",")[0], _COLOURS[kind], False)
        for kind in CallKind
        if kind in kinds
    ]
    if any(s.teardown_start is not None for s in spans):
        items.append(("teardown", "#999999", True))
    for text, colour, light in items:
        opacity = ' fill-opacity="0.45"' if light else ""
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 10}" width="14" height="12" rx="2"'
            f' fill="{colour}"{opacity}/><text x="{lx + 19:.1f}" y="{ly}">{text}</text>'
        )
        lx += 30 + 7 * len(text)
    out.append(
        f'<rect x="{lx:.1f}" y="{ly - 10}" width="14" height="12" rx="2" fill="none"'
        f' stroke="{_CRITICAL}" stroke-width="2.5"/>'
        f'<text x="{lx + 19:.1f}" y="{ly}">critical path</text>'
    )
    if trace.skipped:
        out.append(
            f'<text x="12" y="{ly + 22}" fill="#555">not called (memo hit): '
            f"{html.escape(', '.join(trace.skipped))}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
