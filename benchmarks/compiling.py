"""The ``compile`` scenario's orchestrator: start-up cost per graph family and size.

For each family (layered DAG, wide fan-in, chain) and size, every implementation with
a build step builds the graph (most rows: build + first call) in its worker, the
implementations interleaved and rotated repeat by repeat like the timed cases, so
``anydepends ÷ dishka`` can be taken round by round. A build slower than the budget
is interrupted and ends that implementation's series; a size whose build,
extrapolated linearly from the previous size, would exceed the budget is skipped
without running (quick mode does not spend its time on timeouts); a library that
raises cannot build the graph (e.g. ``RecursionError`` on a deep chain) and stops
too. anydepends also reports its phases and, when it fits, its traced plan memory;
last, 500 handlers over one shared graph are compiled in one container and each in
its own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks import graphs
from benchmarks.adapters import ImplInfo
from benchmarks.runner import Log, Worker, make_row, median_ratio
from benchmarks.scenarios import SCENARIOS, Mode

TRACED_SLOWDOWN = 3  # how much slower a build runs under tracemalloc, about


def _repeats(size: int) -> int:
    return 5 if size <= 100 else 3 if size <= 1000 else 1


@dataclass
class _Series:
    """One implementation's progress through one family's sizes."""

    info: ImplInfo
    row: dict[str, Any]
    last: tuple[int, float] | None = None  # (size, seconds of its whole build)
    stopped: bool = False

    def estimate(self, size: int) -> float:
        """The linear extrapolation of the last build to ``size`` (0: unknown)."""
        return self.last[1] * size / self.last[0] if self.last else 0.0


def _build(
    worker: Worker, info: ImplInfo, family: str, size: int, mode: Mode, traced: bool
) -> dict[str, Any]:
    return worker.request(
        {
            "op": "compile",
            "impl": info.key,
            "family": family,
            "size": size,
            "budget": mode.compile_budget,
            "traced": traced,
        }
    )


def _measure_size(
    series: list[_Series],
    workers: dict[str, Worker],
    family: str,
    size: int,
    mode: Mode,
    log: Log,
) -> dict[str, dict[str, Any]]:
    """Build ``size`` with every implementation still running; their raw points."""
    graph = graphs.family(family, size)
    shape = {"size": size, "nodes": len(graph.nodes), "edges": graphs.edge_count(graph)}
    points = {
        s.info.key: {**shape, "seconds": [], "whole": [], "phases": []} for s in series
    }
    active: list[_Series] = []
    for s in series:
        estimate = s.estimate(size)
        if s.stopped or estimate > mode.compile_budget:
            s.stopped = True
            points[s.info.key].update(timeout=True, estimate=estimate)
        else:
            active.append(s)
    done: set[str] = set()  # slow, failed or stopped at this size: once is enough
    for r in range(_repeats(size)):
        todo = [s for s in active if s.info.key not in done]
        if not todo:
            break
        shift = r % len(todo)
        for s in todo[shift:] + todo[:shift]:
            reply = _build(workers[s.info.lib], s.info, family, size, mode, False)
            point = points[s.info.key]
            if not reply["ok"]:
                kind = "check failed" if reply.get("check") else "error"
                s.row.update(status="failed", reason=f"{kind}: {reply['error']}")
                log(f"    {s.info.key}: {s.row['reason']}")
            elif "seconds" not in reply:  # over the budget, or cannot build
                point["timeout"] = bool(reply.get("timeout"))
                if reply.get("error"):
                    point["error"] = reply["error"]
            else:
                point["seconds"].append(reply["seconds"])
                point["whole"].append(reply["whole"])
                if reply.get("phases"):
                    point["phases"].append(reply["phases"])
                if reply["whole"] <= mode.compile_budget / 4:
                    continue  # fast: repeat it
            done.add(s.info.key)
    for s in active:
        point = points[s.info.key]
        if not point["seconds"] or s.row["status"] != "ok":
            s.stopped = True
            point["seconds"] = []
            point.setdefault("timeout", "error" not in point)
            continue
        point["timeout"] = False
        s.last = (size, min(point["whole"]))
        # Under tracemalloc a build is ~3x slower: measure only what fits.
        if s.info.key != "anydepends":
            continue
        if min(point["whole"]) * TRACED_SLOWDOWN >= mode.compile_budget:
            point["traced"] = "skipped"
            continue
        reply = _build(workers[s.info.lib], s.info, family, size, mode, True)
        if reply.get("retained_bytes") is None:
            point["traced"] = "over budget" if reply.get("timeout") else "failed"
        else:
            point.update(
                retained_bytes=reply["retained_bytes"], peak_bytes=reply["peak_bytes"]
            )
    return points


def _point(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians of one size's builds (``median_ms`` None when it did not build)."""
    seconds = raw["seconds"]
    median = statistics.median(seconds) if seconds else None
    out = {k: v for k, v in raw.items() if k not in ("phases", "whole")}
    out["median_ms"] = None if median is None else median * 1e3
    out["us_per_edge"] = None if median is None else median * 1e6 / max(1, raw["edges"])
    if raw.get("phases"):
        out["phases_ms"] = {
            name: statistics.median(p[name] for p in raw["phases"]) * 1e3
            for name in raw["phases"][0]
        }
    return out


def _family(
    chosen: list[ImplInfo],
    workers: dict[str, Worker],
    family: str,
    sizes: Sequence[int],
    mode: Mode,
    log: Log,
) -> list[dict[str, Any]]:
    """Every size of one family; the rows (anydepends' with ``ratio_dishka``)."""
    series = [
        _Series(i, make_row(i, "ok", points=[], step=i.build_step, ratio_dishka=[]))
        for i in chosen
    ]
    rows = {s.info.key: s.row for s in series}
    for size in sizes:
        started = time.perf_counter()
        points = _measure_size(series, workers, family, size, mode, log)
        for s in series:
            s.row["points"].append(_point(points[s.info.key]))
        ours, dishka = points.get("anydepends"), points.get("dishka")
        if ours is not None:
            # Paired repeat by repeat (a slow build is measured once).
            both = bool(ours["seconds"] and dishka and dishka["seconds"])
            ratio = median_ratio(ours["seconds"], dishka["seconds"]) if both else None
            rows["anydepends"]["ratio_dishka"].append(ratio)
        log(f"    {size:,}: {time.perf_counter() - started:.1f} s")
    return [s.row for s in series]


def _shared(worker: Worker, mode: Mode, log: Log) -> dict[str, Any]:
    """500 handlers over one shared graph: one container vs. one container each."""
    nodes, handlers, repeats = mode.compile_shared
    started = time.perf_counter()
    reply = worker.request(
        {"op": "shared", "nodes": nodes, "handlers": handlers, "repeats": repeats}
    )
    log(f"  shared ({handlers} roots): {time.perf_counter() - started:.1f} s")
    if not reply["ok"]:
        log(f"    shared: {reply['error']}")
        return {"status": "failed", "reason": reply["error"]}
    shared = {k: v for k, v in reply.items() if k != "ok"}
    for key in ("shared", "independent"):
        shared[f"{key}_ms"] = statistics.median(shared[key]) * 1e3
    shared["ratio"] = shared["shared_ms"] / shared["independent_ms"]
    shared["status"] = "ok"
    return shared


def run_compile(
    impls: Sequence[ImplInfo],
    workers: dict[str, Worker],
    mode: Mode,
    log: Log,
) -> dict[str, Any]:
    """The ``compile`` results: one table per graph family, and the shared roots."""
    chosen: list[ImplInfo] = []
    na_rows: list[dict[str, Any]] = []
    for info in impls:
        status = info.status("compile")
        if status == "" or not info.build_step:
            continue
        if status is None:
            chosen.append(info)
        else:
            na_rows.append(make_row(info, "n/a", reason=status))
    families = []
    for family, sizes in mode.compile_sizes.items():
        log(f"  {family} {', '.join(f'{s:,}' for s in sizes)}:")
        rows = _family(chosen, workers, family, sizes, mode, log)
        families.append(
            {
                "family": family,
                "description": graphs.FAMILIES[family],
                "sizes": list(sizes),
                "rows": na_rows + rows,
            }
        )
    out: dict[str, Any] = {
        "budget_s": mode.compile_budget,
        "description": SCENARIOS["compile"],
        "string_annotations": True,
        "families": families,
    }
    if any(i.key == "anydepends" for i in chosen):
        out["shared"] = _shared(workers["anydepends"], mode, log)
    return out
