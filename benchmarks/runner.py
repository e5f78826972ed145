"""The orchestrator: one worker subprocess per library, repeats interleaved.

For each case every implementation is first checked and calibrated (one batch whose
length sets how many calls later batches make), then timed in ``repeats`` rounds; each
round runs every implementation once, in a rotated order, so slow drifts of a shared
machine hit all of them alike and the ratios to anydepends can be taken round by round.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import graphs
from benchmarks.adapters import ImplInfo
from benchmarks.scenarios import (
    MEMORY_POSITIONS,
    SCENARIOS,
    Case,
    Mode,
)

ROOT = Path(__file__).resolve().parent.parent
Log = Callable[[str], None]


class Worker:
    """A ``python -m benchmarks.worker LIB`` subprocess spoken to in JSON lines."""

    def __init__(self, lib: str) -> None:
        self.lib = lib
        # Kept open for the worker's lifetime; shown if the worker dies.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", lib],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its reply (a dead worker is an error reply)."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:]
            return {"ok": False, "error": f"worker {self.lib} died: {tail}"}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        """Let the worker see EOF and exit."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._stderr.close()


def start_workers(impls: Sequence[ImplInfo]) -> dict[str, Worker]:
    """Start every needed worker at once (imports overlap), then greet each."""
    return {lib: Worker(lib) for lib in dict.fromkeys(i.lib for i in impls)}


def make_row(info: ImplInfo, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "impl": info.key,
        "label": info.label,
        "lib": info.lib,
        "status": status,
        **extra,
    }


def median_ratio(a: list[float], b: list[float] | None) -> float | None:
    """Median of round-by-round ratios a[r] / b[r] (None without a reference)."""
    if not b or not a:
        return None
    return statistics.median(x / y for x, y in zip(a, b, strict=False))


def median_difference(a: list[float], b: list[float] | None) -> float | None:
    """Median of round-by-round differences a[r] - b[r] (None without a baseline)."""
    if not b or not a:
        return None
    return statistics.median(x - y for x, y in zip(a, b, strict=False))


def resolution(
    us: list[float], base: list[float] | None, ref: list[float] | None
) -> tuple[float | None, float | None]:
    """What resolving the graph costs per request: this row's time minus the
    baseline's, round by round (median); and, round by round, that difference
    divided by the reference row's own (median)."""
    diff = median_difference(us, base)
    if diff is None or not base or not ref:
        return diff, None
    ratios = [
        (x - b) / (r - b)
        for x, b, r in zip(us, base, ref, strict=False)
        if r - b > 0  # a reference no slower than the baseline: no ratio that round
    ]
    return diff, statistics.median(ratios) if ratios else None


def run_case(
    case: Case,
    impls: Sequence[ImplInfo],
    workers: dict[str, Worker],
    mode: Mode,
    log: Log,
) -> dict[str, Any]:
    """Check, calibrate and time every implementation on one case."""
    graph = case.graph()
    io = case.io
    rows: dict[str, dict[str, Any]] = {}
    plan: list[tuple[ImplInfo, int]] = []
    for info in impls:
        status = info.status(case.scenario)
        if status == "":
            continue  # not part of this comparison
        if status is not None:
            rows[info.key] = make_row(info, "n/a", reason=status)
            continue
        fixed = case.fixed_calls
        reply = workers[info.lib].request(
            {
                "op": "run",
                "impl": info.key,
                "case": case.to_json(),
                "n": None if fixed is None else case.params["callers"],
                "warmup": 2 if io else 20,
            }
        )
        if not reply["ok"]:
            kind = "check failed" if reply.get("check") else "error"
            rows[info.key] = make_row(
                info, "failed", reason=f"{kind}: {reply['error']}"
            )
            log(f"    {info.key}: {kind}: {reply['error']}")
            if reply.get("traceback"):
                log(reply["traceback"])
            continue
        if fixed is not None:  # the same work for every implementation
            n = fixed
        else:
            n = max(mode.min_calls, math.ceil(mode.batch_seconds / reply["per_call"]))
        plan.append((info, n))
        rows[info.key] = make_row(info, "ok", n=n, us=[])
    for r in range(mode.repeats):
        shift = r % len(plan) if plan else 0
        for info, n in plan[shift:] + plan[:shift]:
            row = rows[info.key]
            if row["status"] != "ok":
                continue
            reply = workers[info.lib].request(
                {
                    "op": "run",
                    "impl": info.key,
                    "case": case.to_json(),
                    "n": n,
                    "warmup": max(2, n // 10),
                }
            )
            if reply["ok"]:
                row["us"].append(reply["per_call"] * 1e6)
            else:
                row.update(status="failed", reason=reply["error"])
                log(f"    {info.key}: {reply['error']}")
    ref_us = {ref: rows.get(ref, {}).get("us") for ref in case.refs}
    for row in rows.values():
        if row["status"] != "ok" or not row["us"]:
            continue
        us = row["us"]
        ratios = {ref: median_ratio(us, ref_us[ref]) for ref in case.refs}
        row.update(
            median_us=statistics.median(us),
            min_us=min(us),
            max_us=max(us),
            rps=1e6 / statistics.median(us),
            ratio_any=ratios[case.refs[0]],
            ratio_hand=ratios[case.hand_ref],
            ratios=ratios,
        )
        if case.resolution is not None:
            base, ref = (rows.get(k, {}).get("us") for k in case.resolution)
            row["resolution_us"], row["resolution_ratio"] = resolution(us, base, ref)
    ideal = graphs.critical_path(graph) * 1e6 if io else None
    out = {
        "key": case.key,
        **case.to_json(),
        "description": case.description,
        "nodes": len(graph.nodes),
        "ideal_us": ideal,
        "hand_ref": case.hand_ref,
        "refs": list(case.refs),
        "rows": list(rows.values()),
    }
    if case.resolution is not None:  # (baseline, reference) of resolution_us
        out["resolution"] = list(case.resolution)
    return out


def run_memory(impls: Sequence[ImplInfo], mode: Mode, log: Log) -> dict[str, Any]:
    """Bytes held per in-flight request with ``mode.memory_tasks`` of them parked,
    for every waiting position; each measurement in a fresh worker process."""
    rows: list[dict[str, Any]] = []
    for info in impls:
        status = info.status("memory")
        if status == "" or not (
            mode.memory_peers or info.hand or info.lib in ("anydepends", "dishka")
        ):
            continue
        if status is not None:
            rows.append(make_row(info, "n/a", reason=status))
            continue
        positions = ("root",) if info.key == "bare-task" else MEMORY_POSITIONS
        row = make_row(info, "ok", bytes={}, errors={})
        for position in positions:
            started = time.perf_counter()
            worker = Worker(info.lib)  # fresh: no heap left over from other runs
            try:
                reply = worker.request(
                    {
                        "op": "memory",
                        "impl": info.key,
                        "position": position,
                        "tasks": mode.memory_tasks,
                    }
                )
            finally:
                worker.close()
            log(f"    {info.key} ({position}): {time.perf_counter() - started:.1f} s")
            if reply["ok"]:
                row["bytes"][position] = reply["bytes_per_scope"]
            else:
                kind = "check failed" if reply.get("check") else "error"
                row["errors"][position] = f"{kind}: {reply['error']}"
                row.update(status="failed", reason=row["errors"][position])
                log(f"    {info.key} ({position}): {reply['error']}")
        rows.append(row)
    return {
        "tasks": mode.memory_tasks,
        "positions": list(MEMORY_POSITIONS),
        "description": SCENARIOS["memory"],
        "rows": rows,
    }
