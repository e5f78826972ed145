"""Report sections for the one-off measurements: ``compile`` and ``memory``."""

from __future__ import annotations

from typing import Any

from benchmarks.tables import console_table, fmt_bytes, fmt_ratio, md_table


def _fmt_ms(ms: float) -> str:
    return f"{ms:,.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def _fmt_mb(n: float) -> str:
    return f"{n / 1e6:,.2f} MB" if n < 1e8 else f"{n / 1e6:,.0f} MB"


def _compile_cell(p: dict[str, Any], budget: float) -> str:
    if p["median_ms"] is None:
        if p.get("error"):
            return "cannot build: " + p["error"].split(":")[0]
        if p["timeout"]:
            return f"> {budget:g} s" + (" (est.)" if p.get("estimate") else "")
        return "-"
    return f"{_fmt_ms(p['median_ms'])} ({p['us_per_edge']:,.1f} µs/edge)"


def _growth(points: list[dict[str, Any]]) -> str:
    """µs per edge at the largest measured size ÷ at the smallest."""
    per_edge = [p["us_per_edge"] for p in points if p.get("us_per_edge")]
    if len(per_edge) < 2:
        return "-"
    return f"{per_edge[-1] / per_edge[0]:.2f}x"


def _compile_table(
    family: dict[str, Any], budget: float
) -> tuple[list[str], list[list[str]]]:
    """One family: build (+ first call) time and µs per edge for each size."""
    ok = [r for r in family["rows"] if r["status"] == "ok"]
    edges: dict[int, int] = {}
    for row in ok:
        for p in row["points"]:
            edges.setdefault(p["size"], p["edges"])
    headers = [
        "implementation",
        *(f"{s:,} nodes, {edges.get(s, 0):,} edges" for s in family["sizes"]),
        "µs/edge growth",
    ]
    rows: list[list[str]] = []
    for row in family["rows"]:
        if row["status"] != "ok":
            rows.append([row["label"], row["status"], row.get("reason", "")])
            continue
        cells = [row.get("step") or row["label"]]
        cells += [_compile_cell(p, budget) for p in row["points"]]
        rows.append([*cells, _growth(row["points"])])
    ours = next((r for r in ok if r["impl"] == "anydepends"), None)
    if ours and any(x is not None for x in ours.get("ratio_dishka", [])):
        cells = ["anydepends ÷ dishka (round by round)"]
        cells += [fmt_ratio(x) for x in ours["ratio_dishka"]]
        rows.append([*cells, ""])
    return headers, rows


def _errors(family: dict[str, Any]) -> list[str]:
    """The messages behind the family's ``cannot build`` cells."""
    return [
        f"{row.get('step') or row['label']} at {p['size']:,} nodes: {p['error']}"
        for row in family["rows"]
        for p in row.get("points", [])
        if p.get("error")
    ]


def _plan_table(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """anydepends per family and size: time by phase, and traced memory."""
    headers = [
        "graph",
        "nodes",
        "edges",
        "compile",
        "first call",
        "second call",
        "retained",
        "peak",
        "retained/edge",
    ]
    rows: list[list[str]] = []
    for family in data["families"]:
        for row in family["rows"]:
            if row["status"] != "ok" or row["impl"] != "anydepends":
                continue
            for p in row["points"]:
                if p["median_ms"] is None:
                    continue
                phases = p.get("phases_ms", {})
                cells = [
                    family["family"],
                    f"{p['nodes']:,}",
                    f"{p['edges']:,}",
                    *(
                        _fmt_ms(phases[k]) if k in phases else "-"
                        for k in ("compile", "first call", "second call")
                    ),
                ]
                if "retained_bytes" in p:
                    cells += [
                        _fmt_mb(p["retained_bytes"]),
                        _fmt_mb(p["peak_bytes"]),
                        f"{p['retained_bytes'] / max(1, p['edges']):,.0f} B",
                    ]
                else:
                    why = {
                        "skipped": "not traced (3 x its time exceeds the budget)",
                        "over budget": "not traced (over the budget under tracemalloc)",
                    }.get(p.get("traced", ""), "not traced")
                    cells += [why, "", ""]
                rows.append(cells)
    return headers, rows


def _shared_table(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    shared = data["shared"]
    headers = ["anydepends", "total", "per handler", "shared ÷ independent"]
    if shared["status"] != "ok":
        return headers, [["failed", shared.get("reason", "")[:70], "", ""]]
    n = shared["handlers"]
    return headers, [
        [
            f"{n} roots compiled in one container",
            _fmt_ms(shared["shared_ms"]),
            _fmt_ms(shared["shared_ms"] / n),
            f"{shared['ratio']:.2f}x",
        ],
        [
            f"{n} roots, each in its own container",
            _fmt_ms(shared["independent_ms"]),
            _fmt_ms(shared["independent_ms"] / n),
            "1.00x",
        ],
    ]


_POSITION_TEXT = {
    "root": "waiting in the root",
    "svc_y": "waiting in svc_y",
    "cache": "waiting in the leaf cache",
}


def _memory_table(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Bytes per parked request, one column per waiting position, + over hand-seq."""
    positions = data.get("positions", ["root"])
    rows_by_impl = {r["impl"]: r for r in data["rows"]}
    floor = rows_by_impl.get("hand-seq", {}).get("bytes", {})
    headers = ["implementation", *(_POSITION_TEXT.get(p, p) for p in positions)]
    rows: list[list[str]] = []
    for row in data["rows"]:
        if row["status"] == "n/a":
            rows.append([row["label"], "n/a", row.get("reason", "")])
            continue
        cells = [row["label"]]
        for pos in positions:
            got = row.get("bytes", {}).get(pos)
            if got is None:
                cells.append("failed" if pos in row.get("errors", {}) else "-")
                continue
            text = fmt_bytes(got)
            base = floor.get(pos)
            if base is not None and not row["impl"].startswith(("hand", "bare")):
                extra = got - base
                text += f" ({'+' if extra >= 0 else '-'}{fmt_bytes(abs(extra))})"
            cells.append(text)
        rows.append(cells)
    return headers, rows


def console_lines(results: dict[str, Any]) -> list[str]:
    """The compile and memory tables as plain text."""
    parts: list[str] = []
    if results.get("compile", {}).get("families"):  # (older files: no families)
        data = results["compile"]
        for family in data["families"]:
            parts.append(
                f"compile {family['family']}: {family['description']}; "
                "build + first call unless the row says otherwise, string annotations"
            )
            parts.append(console_table(*_compile_table(family, data["budget_s"])))
            parts += [f"  ({text})" for text in _errors(family)]
            parts.append("")
        parts.append(
            "compile: anydepends by phase (medians) and traced memory after "
            "compile + 2 calls (tracemalloc)"
        )
        parts.append(console_table(*_plan_table(data)))
        parts.append("")
        if "shared" in data:
            sh = data["shared"]
            mean = sh.get("mean_plan_nodes", 0)
            parts.append(
                f"compile: {sh.get('handlers', '?')} handlers over one shared "
                f"{sh.get('nodes', 0):,}-node graph ({mean:,.0f} nodes per plan "
                "on average; container.compile only)"
            )
            parts.append(console_table(*_shared_table(data)))
            parts.append("")
    if results.get("memory"):
        data = results["memory"]
        parts.append(
            f"memory: bytes per in-flight request ({data['tasks']:,} parked; "
            "in brackets: over hand-written, sequential, same position)"
        )
        parts.append(console_table(*_memory_table(data)))
        parts.append("")
    return parts


def markdown_lines(results: dict[str, Any], image_dir: str) -> list[str]:
    """The compile and memory sections as Markdown (images under ``image_dir``)."""
    out: list[str] = []
    if results.get("compile", {}).get("families"):  # (older files: no families)
        data = results["compile"]
        out += [
            "### compile",
            "",
            "Start-up cost: the graph build plus the first call (which runs the "
            "graph once and builds any generated code), on modules written with "
            "`from __future__ import annotations`, one build per measurement in a "
            f"fresh event loop. A build over {data['budget_s']:g} s is stopped; a size "
            "whose linear extrapolation exceeds that is skipped (`est.`). µs/edge "
            "growth is µs per edge at the largest measured size ÷ at the smallest "
            "(1.00x: linear).",
            "",
        ]
        for family in data["families"]:
            out += [
                f"**{family['family']}: {family['description']}**",
                "",
                md_table(*_compile_table(family, data["budget_s"])),
                "",
            ]
            if errors := _errors(family):
                out += [*(f"- {text}" for text in errors), ""]
        out += [
            f"![compile]({image_dir}/compile.png)",
            "",
            "anydepends by phase: `container.compile`, the first call, and the "
            "second call (not part of the row above; today it generates the "
            "runner of a plan whose nodes may overlap). Memory: one more build "
            "(compile + 2 calls) per size under tracemalloc, when it fits the "
            "budget; *retained* is what the container still holds afterwards "
            "(plans, caches, generated code), *peak* the most traced during it.",
            "",
            md_table(*_plan_table(data)),
            "",
        ]
        if "shared" in data:
            sh = data["shared"]
            out += [
                f"**{sh.get('handlers', '?')} handlers over one shared "
                f"{sh.get('nodes', 0):,}-node graph** (8 layers of 250 nodes, 2 "
                "parents each; each handler depends on 3 random nodes, so its plan "
                f"has {sh.get('mean_plan_nodes', 0):,.0f} nodes on average; "
                "`container.compile` only)",
                "",
                md_table(*_shared_table(data)),
                "",
            ]
    if results.get("memory"):
        data = results["memory"]
        out += [
            "### memory",
            "",
            f"Bytes held per in-flight request with {data['tasks']:,} requests "
            "parked at once (tracemalloc, after a warm-up, each figure in a fresh "
            "process). The waiting dependable awaits an event: the root, `svc_y` "
            "(a dependency after which only the root is left) or the leaf `cache` "
            "(its siblings still to run). In brackets: above hand-written, "
            "sequential code waiting at the same place.",
            "",
            md_table(*_memory_table(data)),
            "",
            f"![memory]({image_dir}/memory.png)",
            "",
        ]
    return out
