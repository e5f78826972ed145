"""``anydepends bench``: calls per second of a user's graph, default vs sequential.

Both modes run in one event loop, each in its own container (the user's, and a twin
of it with ``sequential=True``), in interleaved rounds so that a drift of the
machine's speed hits both alike. A round calls the root back to back (or from N
concurrent callers) until its time is up; a warm-up round per mode is not counted.
Both containers are entered with ``async with``, so app-scoped teardowns run at the
end, also when a call fails or the run is interrupted.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.lowlevel import checkpoint

from ._container import Container
from ._scope import Scope

__all__ = ["BenchSettings", "ModeResult", "bench", "report", "report_json"]

_WARMUP_SECONDS = 0.1
# Calls that never wait never let the event loop run: pause this often, so that
# Ctrl-C (on asyncio, a cancellation of the main task) gets in.
_PAUSE_EVERY = 0.05


@dataclass(frozen=True)
class BenchSettings:
    """What to measure and how long."""

    target: str
    backend: str
    seconds: float  # measuring time, all rounds of both modes together
    rounds: int
    concurrency: int

    @property
    def round_seconds(self) -> float:
        return self.seconds / (2 * self.rounds)


@dataclass(frozen=True)
class Round:
    """One measured round: how many calls completed in how much wall time."""

    calls: int
    seconds: float

    def calls_per_second(self) -> float:
        return self.calls / self.seconds

    def us_per_call(self, concurrency: int) -> float:
        """What each caller waited per call: round time x callers / calls."""
        return self.seconds * concurrency / self.calls * 1e6


@dataclass
class ModeResult:
    """The rounds of one mode (``"default"`` or ``"sequential"``)."""

    mode: str
    concurrency: int
    rounds: list[Round] = field(default_factory=list[Round])

    def stats(self) -> dict[str, dict[str, float]]:
        """Median, min and max over rounds of calls/s and of µs/call."""
        rates = [r.calls_per_second() for r in self.rounds]
        costs = [r.us_per_call(self.concurrency) for r in self.rounds]
        return {
            "calls_per_second": _summary(rates),
            "us_per_call": _summary(costs),
        }


def _summary(numbers: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(numbers),
        "min": min(numbers),
        "max": max(numbers),
    }


def sequential_twin(container: Container) -> Container:
    """A new container configured like *container*, but with ``sequential=True``."""
    own = {Container, Scope}
    twin = Container(
        sync_to_thread=container.sync_to_thread,
        sequential=True,
        context_types=[t for t in container.context_types if t not in own],
        dependencies=container.dependencies,
    )
    for original, replacement in container.overrides.items():
        twin.overrides[original] = replacement
    return twin


async def _round(
    container: Container,
    fn: Callable[..., Any],
    values: dict[str, Any],
    seconds: float,
    concurrency: int,
) -> Round:
    call = container.call
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds
    if concurrency == 1:
        calls = 0
        pause = start + _PAUSE_EVERY
        while True:
            await call(fn, **values)
            calls += 1
            now = clock()
            if now >= deadline:
                return Round(calls, now - start)
            if now >= pause:
                await checkpoint()
                pause = now + _PAUSE_EVERY
    counts = [0] * concurrency

    async def caller(i: int) -> None:
        # Each caller makes at least one call: a caller whose calls never wait
        # holds the event loop until the deadline, and the others start after it.
        n = 0
        pause = start + _PAUSE_EVERY
        while True:
            await call(fn, **values)
            n += 1
            now = clock()
            if now >= deadline:
                break
            if now >= pause:
                await checkpoint()
                pause = now + _PAUSE_EVERY
        counts[i] = n

    async with anyio.create_task_group() as tg:
        for i in range(concurrency):
            tg.start_soon(caller, i)
    return Round(sum(counts), clock() - start)


async def bench(
    container: Container,
    fn: Callable[..., Any],
    values: dict[str, Any],
    settings: BenchSettings,
    *,
    progress: bool = False,
) -> list[ModeResult]:
    """Measure *fn* in *container* and in its sequential twin, interleaved."""
    modes = [("default", container), ("sequential", sequential_twin(container))]
    results = [ModeResult(name, settings.concurrency) for name, _ in modes]
    try:
        async with AsyncExitStack() as stack:
            for _, each in modes:
                await stack.enter_async_context(each)
            for _, each in modes:
                await each.call(fn, **values)  # compiles; creates app-scoped values
                warmup = min(_WARMUP_SECONDS, settings.round_seconds)
                await _round(each, fn, values, warmup, settings.concurrency)
            for number in range(1, settings.rounds + 1):
                for (_, each), result in zip(modes, results, strict=True):
                    result.rounds.append(
                        await _round(
                            each,
                            fn,
                            values,
                            settings.round_seconds,
                            settings.concurrency,
                        )
                    )
                if progress:
                    _show_progress(settings, results, number)
    finally:
        if progress:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
    return results


def _show_progress(
    settings: BenchSettings, results: list[ModeResult], number: int
) -> None:
    latest = "  ".join(
        f"{r.mode} {_number(r.rounds[-1].calls_per_second())} calls/s" for r in results
    )
    line = f"\r\x1b[K{settings.target}: round {number}/{settings.rounds}  {latest}"
    sys.stdout.write(line)
    sys.stdout.flush()


def _number(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def report(settings: BenchSettings, results: list[ModeResult]) -> str:
    """The text table: calls/s and µs/call per mode, with the min-max range."""
    n = settings.concurrency
    callers = "1 caller" if n == 1 else f"{n} concurrent callers"
    lines = [
        f"{settings.target} on {settings.backend}, {callers}:"
        f" {settings.rounds} rounds of {settings.round_seconds:.2g} s per mode",
        "",
    ]
    rows = [("mode", "calls/s", "µs/call", "min-max µs/call")]
    for result in results:
        stats = result.stats()
        cost = stats["us_per_call"]
        rows.append(
            (
                result.mode,
                _number(stats["calls_per_second"]["median"]),
                _number(cost["median"]),
                f"{_number(cost['min'])} - {_number(cost['max'])}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        numbers = zip(row[1:], widths[1:], strict=True)
        cells += [cell.rjust(width) for cell, width in numbers]
        lines.append("  ".join(cells).rstrip())
    default, sequential = (r.stats()["calls_per_second"]["median"] for r in results)
    lines += [
        "",
        f"default: {default / sequential:.2f}x the calls per second of"
        " sequential=True (medians over rounds)",
    ]
    if n > 1:
        lines.append(
            "µs/call: what each caller waits per call (time x callers / calls)"
        )
    return "\n".join(lines)


def report_json(settings: BenchSettings, results: list[ModeResult]) -> str:
    """Everything measured, for machines."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("anydepends")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        own_version = "unknown"
    document = {
        "target": settings.target,
        "backend": settings.backend,
        "concurrency": settings.concurrency,
        "seconds": settings.seconds,
        "rounds": settings.rounds,
        "python": platform.python_version(),
        "anydepends": own_version,
        "modes": {
            r.mode: {
                **r.stats(),
                "calls": sum(each.calls for each in r.rounds),
                "rounds": [
                    {"calls": each.calls, "seconds": each.seconds} for each in r.rounds
                ],
            }
            for r in results
        },
    }
    return json.dumps(document, indent=2)
