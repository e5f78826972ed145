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
LINE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
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
    per = "request" if case["scenario"] == "loaded" else "call"
    ax.set_xlabel(
        f"µs per {per} (median, bars: min-max)"
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
    """Per graph family: build (+ first call) time, and µs per edge (the growth
    curve: flat means linear), against graph size, log x."""
    families = data["families"]
    fig, axes = plt.subplots(
        2, len(families), figsize=(5 * len(families), 7.5), squeeze=False
    )
    keys = list(dict.fromkeys(r["impl"] for f in families for r in f["rows"]))
    peers = [k for k in keys if k != "anydepends"]
    colors = {k: LINE_COLORS[i % len(LINE_COLORS)] for i, k in enumerate(peers)}
    colors["anydepends"] = ANY_COLOR
    for col, family in enumerate(families):
        top, bottom = axes[0][col], axes[1][col]
        for row in family["rows"]:
            if row["status"] != "ok":
                continue
            pts = [p for p in row["points"] if p["median_ms"]]
            if not pts:
                continue
            xs = [p["nodes"] for p in pts]
            style = {
                "color": colors[row["impl"]],
                "marker": "o",
                "linewidth": 2.5 if row["impl"] == "anydepends" else 1.5,
                "label": row.get("step") or row["label"],
            }
            top.plot(xs, [p["median_ms"] for p in pts], **style)
            bottom.plot(xs, [p["us_per_edge"] for p in pts], **style)
        top.set_title(f"{family['family']}: {family['description']}", fontsize=8)
        top.set_yscale("log")
        top.set_ylabel("ms (median)", fontsize=8)
        bottom.set_ylabel("µs per edge", fontsize=8)
        bottom.set_ylim(bottom=0)
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xlabel("nodes", fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    fig.suptitle(
        "compile: build + first call (string annotations); missing points exceeded "
        f"{data['budget_s']:g} s or could not be built",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def memory_chart(data: dict[str, Any], path: Path) -> None:
    """KiB per in-flight request, grouped by where the request waits."""
    positions: list[str] = data.get("positions", ["root"])
    rows = [r for r in data["rows"] if r.get("bytes")]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) * len(positions) / 2 + 1.5))
    height = 0.8 / len(positions)
    shades = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    for j, pos in enumerate(positions):
        ys, kib = [], []
        for i, row in enumerate(rows):
            got = row["bytes"].get(pos)
            if got is not None:
                ys.append(i + (j - (len(positions) - 1) / 2) * height)
                kib.append(got / 1024)
        ax.barh(ys, kib, height=height, color=shades[j % len(shades)], label=pos)
        for y, v in zip(ys, kib, strict=True):
            ax.text(v, y, f" {v:,.1f}", va="center", fontsize=6)
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(
        f"KiB held per in-flight request ({data['tasks']:,} at once), by where it waits"
    )
    ax.legend(fontsize=7, title="waiting in", title_fontsize=7)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# fastapi_route: one colour per row, the same in both panels.
_ROUTE_COLORS = {
    "anydepends-route": ANY_COLOR,
    "anydepends-route-seq": "#ff9896",
    "fastapi-route": PEER_COLOR,
    "hand-route-seq": HAND_COLOR,
    "hand-route-tg": "#4d4d4d",
}


def route_chart(cases: list[dict[str, Any]], path: Path) -> None:
    """fastapi_route: ms per request against k (one line per row and backend), and
    µs per request of the no-I/O endpoint (one group of bars per client and
    backend)."""
    fanout = [c for c in cases if c["params"].get("shape") == "fanout"]
    flat = [c for c in cases if c["params"].get("shape") != "fanout"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    backends = list(dict.fromkeys(c["backend"] for c in fanout))
    labels: dict[str, str] = {}
    for backend in backends:
        series: dict[str, list[tuple[int, float]]] = {}
        for case in fanout:
            if case["backend"] != backend:
                continue
            for row in case["rows"]:
                if row["status"] == "ok":
                    labels[row["impl"]] = row["label"]
                    point = (case["params"]["k"], row["median_us"] / 1000)
                    series.setdefault(row["impl"], []).append(point)
        for impl, points in series.items():
            points.sort()
            left.plot(
                [k for k, _ in points],
                [ms for _, ms in points],
                color=_ROUTE_COLORS.get(impl, PEER_COLOR),
                linestyle="-" if backend == backends[0] else "--",
                marker="o",
                linewidth=2.5 if impl == "anydepends-route" else 1.5,
            )
    if fanout:
        ideal = fanout[0]["ideal_us"] / 1000
        left.axhline(ideal, color="black", linestyle=":", linewidth=1)
        left.text(
            left.get_xlim()[0], ideal, " ideal (one sleep)", fontsize=7, va="bottom"
        )
        left.set_xticks(sorted({c["params"]["k"] for c in fanout}))
    left.set_xlabel(
        "k independent dependencies, each awaiting anyio.sleep(L)", fontsize=8
    )
    left.set_ylabel("ms per request (median)", fontsize=8)
    left.set_ylim(bottom=0)
    styles = " (solid: asyncio, dashed: trio)" if len(backends) > 1 else ""
    left.set_title(f"fan-out through httpx's ASGI transport{styles}", fontsize=9)
    left.grid(True, alpha=0.3)
    impls = list(dict.fromkeys(r["impl"] for c in flat for r in c["rows"]))
    height = 0.8 / max(1, len(impls))
    for j, impl in enumerate(impls):
        ys, us, label = [], [], impl
        for i, case in enumerate(flat):
            row = next((r for r in case["rows"] if r["impl"] == impl), None)
            if row is None or row["status"] != "ok":
                continue
            label = row["label"]
            ys.append(i + (j - (len(impls) - 1) / 2) * height)
            us.append(row["median_us"])
        right.barh(
            ys,
            us,
            height=height,
            color=_ROUTE_COLORS.get(impl, PEER_COLOR),
            label=label,
        )
        for y, v in zip(ys, us, strict=True):
            right.text(v, y, f" {v:,.0f}", va="center", fontsize=6)
    right.set_yticks(
        range(len(flat)),
        [c["key"].removeprefix("fastapi_route overhead, ") for c in flat],
        fontsize=8,
    )
    right.invert_yaxis()
    right.set_xlabel("µs per request (median)", fontsize=8)
    right.set_title("no I/O: the 10-node graph behind the endpoint", fontsize=9)
    right.margins(x=0.15)
    handles, names = right.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=7)
    fig.suptitle(
        "fastapi_route: plain FastAPI vs anydepends' ConcurrentRoute, whole requests",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
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
        if scenario == "fastapi_route":
            route_chart(cases, path)
        else:
            scenario_chart(scenario, cases, path)
        written.append(path)
    if results.get("compile", {}).get("families"):  # (older files: no families)
        compile_chart(results["compile"], out / "compile.png")
        written.append(out / "compile.png")
    if results.get("memory"):
        memory_chart(results["memory"], out / "memory.png")
        written.append(out / "memory.png")
    return written
