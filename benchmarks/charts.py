"""PNG charts (matplotlib, Agg backend) from a results dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or the benchmark box

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

ANY_COLOR = "#d62728"
HAND_COLOR = "#9e9e9e"
PEER_COLOR = "#1f77b4"
DPI = 72  # small committed PNGs; the numbers are in the tables


def _color(impl: str) -> str:
    if impl.startswith("anydepends"):
        return ANY_COLOR
    if impl.startswith(("hand", "bare")):
        return HAND_COLOR
    return PEER_COLOR


def _bars(ax: Axes, case: dict[str, Any]) -> None:
    rows = [r for r in case["rows"] if r["status"] == "ok"]
    rows.sort(key=lambda r: r["median_us"], reverse=True)  # fastest on top
    med = [r["median_us"] for r in rows]
    lo = [r["median_us"] - r["min_us"] for r in rows]
    hi = [r["max_us"] - r["median_us"] for r in rows]
    y = range(len(rows))
    ax.barh(
        y,
        med,
        xerr=[lo, hi],
        color=[_color(r["impl"]) for r in rows],
        error_kw={"elinewidth": 0.8, "capsize": 2},
    )
    ax.set_yticks(list(y), [r["label"] for r in rows], fontsize=8)
    io = case.get("ideal_us") is not None
    if io:
        ax.axvline(case["ideal_us"], color="black", linestyle="--", linewidth=1)
        ax.text(case["ideal_us"], len(rows) - 0.4, " ideal", fontsize=7)
    elif med and max(med) / min(med) > 30:
        ax.set_xscale("log")  # no-I/O costs span orders of magnitude
    for i, (v, top) in enumerate(zip(med, (r["max_us"] for r in rows), strict=True)):
        ax.text(
            top, i, f" {v:,.1f}" if v < 100 else f" {v:,.0f}", va="center", fontsize=7
        )
    ax.set_xlabel(
        "µs per call (median, bars: min-max)"
        + (", log" if ax.get_xscale() == "log" else ""),
        fontsize=8,
    )
    ax.set_title(case["key"], fontsize=9)
    ax.margins(x=0.15)


def scenario_chart(scenario: str, cases: list[dict[str, Any]], path: Path) -> None:
    """One PNG per scenario, one panel per case (backend, k, ...)."""
    cols = 2 if len(cases) > 1 else 1
    rows = (len(cases) + cols - 1) // cols
    height = max(2.2, 0.28 * max(len(c["rows"]) for c in cases) + 1.0)
    fig, axes = plt.subplots(
        rows, cols, figsize=(7.5 * cols, height * rows), squeeze=False
    )
    for ax, case in zip(axes.flat, cases, strict=False):
        _bars(ax, case)
    for ax in list(axes.flat)[len(cases) :]:
        ax.set_visible(False)
    fig.suptitle(f"{scenario}: {cases[0]['description']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def compile_chart(data: dict[str, Any], path: Path) -> None:
    """Graph-build time against graph size, log-log."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in data["rows"]:
        if row["status"] != "ok":
            continue
        pts = [(p["size"], p["median_ms"]) for p in row["points"] if p["median_ms"]]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        width = 2.5 if row["impl"] == "anydepends" else 1.5
        ax.plot(
            xs, ys, marker="o", linewidth=width, label=row.get("step") or row["label"]
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes in the layered DAG")
    ax.set_ylabel("graph-build time, ms (median)")
    ax.set_title(
        f"compile: build time; missing points exceeded {data['budget_s']:g} s",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def memory_chart(data: dict[str, Any], path: Path) -> None:
    """KiB per in-flight request."""
    rows = sorted(
        (r for r in data["rows"] if r["status"] == "ok"),
        key=lambda r: r["bytes_per_scope"],
        reverse=True,
    )
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    kib = [r["bytes_per_scope"] / 1024 for r in rows]
    ax.barh(range(len(rows)), kib, color=[_color(r["impl"]) for r in rows])
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
    for i, v in enumerate(kib):
        ax.text(v, i, f" {v:,.1f}", va="center", fontsize=7)
    ax.set_xlabel(f"KiB held per in-flight request ({data['tasks']:,} at once)")
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_all(results: dict[str, Any], out: Path) -> list[Path]:
    """Write every chart for ``results`` into ``out``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for case in results["cases"]:
        by_scenario.setdefault(case["scenario"], []).append(case)
    for scenario, cases in by_scenario.items():
        path = out / f"{scenario}.png"
        scenario_chart(scenario, cases, path)
        written.append(path)
    if results.get("compile"):
        compile_chart(results["compile"], out / "compile.png")
        written.append(out / "compile.png")
    if results.get("memory"):
        memory_chart(results["memory"], out / "memory.png")
        written.append(out / "memory.png")
    return written
