"""Console and Markdown tables from a results dictionary (see ``runner``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.adapters import BY_KEY


def fmt_us(us: float | None) -> str:
    """Microseconds with three significant figures (``4.97``, ``49.7``, ``4,970``)."""
    if us is None:
        return "-"
    if us < 10:
        return f"{us:.2f}"
    if us < 100:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def fmt_ratio(ratio: float | None) -> str:
    """A ratio like ``1.00x`` (``-`` when the reference did not run)."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def fmt_bytes(n: float) -> str:
    """Bytes in B or KiB."""
    return f"{n:,.0f} B" if n < 4096 else f"{n / 1024:,.1f} KiB"


def _case_rows(case: dict[str, Any]) -> list[list[str]]:
    hand = case["hand_ref"]
    out: list[list[str]] = []
    for row in case["rows"]:
        if row["status"] != "ok":
            reason = row.get("reason") or ""
            out.append([row["label"], row["status"], reason[:70], "", "", "", ""])
            continue
        out.append(
            [
                row["label"],
                f"{row['rps']:,.0f}",
                fmt_us(row["median_us"]),
                f"{fmt_us(row['min_us'])}-{fmt_us(row['max_us'])}",
                fmt_ratio(row["ratio_any"]),
                fmt_ratio(row["ratio_hand"]) if row["impl"] != hand else "1.00x",
                "",
            ]
        )
    return out


def _headers(case: dict[str, Any]) -> list[str]:
    return [
        "implementation",
        "req/s",
        "µs/call",
        "min-max µs",
        "vs anydepends",
        f"vs {case['hand_ref']}",
    ]


def _title(case: dict[str, Any]) -> str:
    text = f"{case['key']}: {case['description']} ({case['nodes']} nodes)"
    if case.get("ideal_us"):
        text += f"; ideal (critical path) {fmt_us(case['ideal_us'])} µs"
    return text


def _console_table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = [(r + [""] * len(headers))[: len(headers)] for r in rows]
    timed = [r for r in rows if r[1] not in ("n/a", "failed")]
    widths = [len(h) for h in headers]
    for r in rows:
        widths[0] = max(widths[0], len(r[0]))
    for r in timed:
        widths[1:] = [max(w, len(c)) for w, c in zip(widths[1:], r[1:], strict=True)]
    lines = []
    for r in [headers, *rows]:
        cells = [r[0].ljust(widths[0])]
        if r[1] in ("n/a", "failed"):
            cells.append(f"{r[1]}  {r[2]}")
        else:
            cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _md_table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = [(r + [""] * len(headers))[: len(headers)] for r in rows]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] + ["--:"] * (len(headers) - 1)) + "|",
    ]
    for r in rows:
        if r[1] in ("n/a", "failed"):
            r = [r[0], f"{r[1]}: {r[2]}", *([""] * (len(headers) - 2))]
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def _compile_table(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["implementation", *(f"{s:,} nodes" for s in data["sizes"])]
    rows: list[list[str]] = []
    for row in data["rows"]:
        if row["status"] != "ok":
            rows.append([row["label"], row["status"], row.get("reason", "")])
            continue
        cells = [row.get("step") or row["label"]]
        for p in row["points"]:
            if p["median_ms"] is None:
                limit = f"> {data['budget_s']:g} s"
                if p.get("estimate"):
                    limit += " (est.)"
                if p.get("error"):
                    limit = "cannot build"
                cells.append(limit if p["timeout"] else "-")
            else:
                cells.append(
                    f"{p['median_ms']:,.2f} ms"
                    if p["median_ms"] < 100
                    else f"{p['median_ms']:,.0f} ms"
                )
        rows.append(cells)
    return headers, rows


def _memory_table(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    ok = {r["impl"]: r["bytes_per_scope"] for r in data["rows"] if r["status"] == "ok"}
    floor = ok.get("hand-seq")
    headers = ["implementation", "per in-flight request", "above hand-written"]
    rows: list[list[str]] = []
    for row in data["rows"]:
        if row["status"] != "ok":
            rows.append([row["label"], row["status"], row.get("reason", "")])
            continue
        hand = row["impl"].startswith(("hand", "bare"))
        extra = None if floor is None or hand else row["bytes_per_scope"] - floor
        rows.append(
            [
                row["label"],
                fmt_bytes(row["bytes_per_scope"]),
                "-" if extra is None else fmt_bytes(extra),
            ]
        )
    return headers, rows


def _summary_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One line per case: anydepends, the hand-written reference, the fastest peer."""
    headers = [
        "case",
        "anydepends µs",
        "hand-written µs",
        "fastest peer: µs",
        "anydepends vs fastest peer",
    ]
    rows: list[list[str]] = []
    for case in results["cases"]:
        ok = {r["impl"]: r for r in case["rows"] if r["status"] == "ok"}
        ours = ok.get("anydepends")
        hand = ok.get(case["hand_ref"])
        peers = [
            r for r in ok.values() if not r["impl"].startswith(("anydepends", "hand"))
        ]
        best = min(peers, key=lambda r: r["median_us"]) if peers else None
        rows.append(
            [
                case["key"],
                fmt_us(ours["median_us"]) if ours else "-",
                fmt_us(hand["median_us"]) if hand else "-",
                f"{best['label']}: {fmt_us(best['median_us'])}" if best else "-",
                fmt_ratio(best["ratio_any"] and 1 / best["ratio_any"]) if best else "-",
            ]
        )
    return headers, rows


def _backend_table(
    results: dict[str, Any],
) -> tuple[list[str], list[list[str]]] | None:
    """Median µs on asyncio and on trio, side by side, for cases run on both."""
    by_key = {
        (c["scenario"], tuple(sorted(c["params"].items())), c["backend"]): c
        for c in results["cases"]
    }
    pairs = [
        (c, by_key[(s, p, "trio")])
        for (s, p, b), c in by_key.items()
        if b == "asyncio" and (s, p, "trio") in by_key
    ]
    if not pairs:
        return None
    headers = ["implementation"]
    headers += [
        a["key"].replace(" [asyncio]", "") + ": asyncio / trio" for a, _ in pairs
    ]
    labels: dict[str, str] = {}
    cells: dict[str, dict[int, str]] = {}
    for i, (a, t) in enumerate(pairs):
        trio_rows = {r["impl"]: r for r in t["rows"] if r["status"] == "ok"}
        for row in a["rows"]:
            other = trio_rows.get(row["impl"])
            if row["status"] != "ok" or other is None:
                continue
            labels[row["impl"]] = row["label"]
            ratio = other["median_us"] / row["median_us"]
            cells.setdefault(row["impl"], {})[i] = (
                f"{fmt_us(row['median_us'])} / {fmt_us(other['median_us'])} µs"
                f" ({ratio:.2f}x)"
            )
    rows = [
        [labels[k], *(v.get(i, "-") for i in range(len(pairs)))]
        for k, v in cells.items()
    ]
    return headers, rows


def console(results: dict[str, Any]) -> str:
    """All tables as plain text."""
    parts: list[str] = []
    if results["cases"]:
        parts.append("summary (medians; last column: anydepends time ÷ fastest peer's)")
        parts.append(_console_table(*_summary_table(results)))
        parts.append("")
    for case in results["cases"]:
        parts.append(_title(case))
        parts.append(_console_table(_headers(case), _case_rows(case)))
        parts.append("")
    backends = _backend_table(results)
    if backends:
        parts.append(
            "asyncio vs trio: median µs per call, asyncio / trio (trio ÷ asyncio)"
        )
        parts.append(_console_table(*backends))
        parts.append("")
    if results.get("compile"):
        data = results["compile"]
        parts.append(f"compile: {data['description']}")
        parts.append(_console_table(*_compile_table(data)))
        parts.append("")
    if results.get("memory"):
        data = results["memory"]
        parts.append(f"memory: {data['description']} ({data['tasks']:,} tasks)")
        parts.append(_console_table(*_memory_table(data)))
        parts.append("")
    return "\n".join(parts)


def _notes(results: dict[str, Any]) -> list[str]:
    seen: dict[str, str] = {}
    for case in results["cases"]:
        for row in case["rows"]:
            note = BY_KEY[row["impl"]].note if row["impl"] in BY_KEY else ""
            if note:
                seen.setdefault(row["label"], note)
    return [f"- **{label}**: {note}" for label, note in seen.items()]


def markdown(results: dict[str, Any], image_dir: str) -> str:
    """All tables and charts as Markdown (images under ``image_dir``)."""
    meta = results["meta"]
    out = [
        f"Measured {meta['date']} in **{meta['mode']}** mode "
        f"({meta['repeats']} interleaved rounds per case, medians) on "
        f"{meta['machine']}, {meta['cpus']} CPUs, {meta['python']}"
        + (f", anydepends commit `{meta['commit']}`" if meta.get("commit") else "")
        + "; "
        f"the whole run took {meta['duration_s']:.0f} s.",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items()))
        + ".",
        "",
    ]
    if results["cases"]:
        out += [
            "### Summary",
            "",
            "Medians per call. The last column is anydepends' time divided by the "
            "fastest peer's, taken round by round (below 1.00x: anydepends is faster).",
            "",
            _md_table(*_summary_table(results)),
            "",
        ]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for case in results["cases"]:
        by_scenario.setdefault(case["scenario"], []).append(case)
    for scenario, cases in by_scenario.items():
        out.append(f"### {scenario}")
        out.append("")
        for case in cases:
            out += [
                f"**{_title(case)}**",
                "",
                _md_table(_headers(case), _case_rows(case)),
                "",
            ]
        out += [f"![{scenario}]({image_dir}/{scenario}.png)", ""]
    backends = _backend_table(results)
    if backends:
        out += [
            "### asyncio vs trio",
            "",
            "Median µs per call, asyncio / trio, and trio ÷ asyncio in brackets. The "
            "two backends run at different moments, so this ratio is noisier than the "
            "ratios within one table.",
            "",
            _md_table(*backends),
            "",
        ]
    if results.get("compile"):
        data = results["compile"]
        out += [
            "### compile",
            "",
            data["description"] + ".",
            "",
            _md_table(*_compile_table(data)),
            "",
            f"![compile]({image_dir}/compile.png)",
            "",
        ]
    if results.get("memory"):
        data = results["memory"]
        out += [
            "### memory",
            "",
            f"{data['description']} ({data['tasks']:,} tasks).",
            "",
            _md_table(*_memory_table(data)),
            "",
            f"![memory]({image_dir}/memory.png)",
            "",
        ]
    notes = _notes(results)
    if notes:
        out += ["### Notes on the implementations", "", *notes, ""]
    return "\n".join(out)
