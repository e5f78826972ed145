"""Console and Markdown tables from a results dictionary (see ``runner``)."""

from __future__ import annotations

from typing import Any

from benchmarks import report_startup
from benchmarks.adapters import BY_KEY
from benchmarks.tables import (
    console_table,
    fmt_ratio,
    fmt_us,
    md_table,
)


def _refs(case: dict[str, Any]) -> list[str]:
    """The implementations this case's ratio columns divide by (headline first)."""
    return list(case.get("refs") or ["anydepends", case["hand_ref"]])


def _ratio(row: dict[str, Any], ref: str, case: dict[str, Any]) -> str:
    if row["impl"] == ref:
        return "1.00x"
    if "ratios" in row:
        return fmt_ratio(row["ratios"].get(ref))
    return fmt_ratio(row["ratio_hand"] if ref == case["hand_ref"] else row["ratio_any"])


def _resolution(row: dict[str, Any], case: dict[str, Any]) -> list[str]:
    """The resolution columns (fastapi_route without I/O): µs over the baseline,
    and that difference ÷ the reference's."""
    if not case.get("resolution"):
        return []
    base, ref = case["resolution"]
    if row["impl"] == base:
        return ["0", "-"]
    us = row.get("resolution_us")
    ratio = "1.00x" if row["impl"] == ref else fmt_ratio(row.get("resolution_ratio"))
    return [fmt_us(us) if us is None or us >= 0 else f"-{fmt_us(-us)}", ratio]


def _case_rows(case: dict[str, Any]) -> list[list[str]]:
    refs = _refs(case)
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
                *(_ratio(row, ref, case) for ref in refs),
                *_resolution(row, case),
            ]
        )
    return out


# Column names of the fastapi_route scenario's references.
_REF_NAMES = {
    "anydepends-route": "ConcurrentRoute",
    "fastapi-route": "FastAPI",
    "hand-route-seq": "by hand",
    "hand-route-tg": "by hand (tg)",
}


def _ref_name(ref: str) -> str:
    """A short column name for a reference implementation."""
    if ref in _REF_NAMES:
        return _REF_NAMES[ref]
    if ref.startswith("anydepends-"):
        return "anydepends (" + ref.removeprefix("anydepends-").replace("-", " ") + ")"
    return ref


def _headers(case: dict[str, Any]) -> list[str]:
    per = "µs/request" if case["scenario"] in ("loaded", "fastapi_route") else "µs/call"
    extra = []
    if case.get("resolution"):
        base, ref = case["resolution"]
        extra = [
            f"resolution µs (- {_ref_name(base)})",
            f"resolution vs {_ref_name(ref)}",
        ]
    return [
        "implementation",
        "req/s",
        per,
        "min-max µs",
        *(f"vs {_ref_name(ref)}" for ref in _refs(case)),
        *extra,
    ]


def _title(case: dict[str, Any]) -> str:
    text = f"{case['key']}: {case['description']} ({case['nodes']} nodes)"
    if case.get("ideal_us"):
        text += f"; ideal (critical path) {fmt_us(case['ideal_us'])} µs"
    return text


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
        headline = _refs(case)[0]  # e.g. the scope row in the scope case
        ours = ok.get(headline)
        hand = ok.get(case["hand_ref"])
        peers = [
            r for r in ok.values() if not r["impl"].startswith(("anydepends", "hand"))
        ]
        best = min(peers, key=lambda r: r["median_us"]) if peers else None
        ratio = None
        if best:
            ratio = best.get("ratios", {}).get(headline, best["ratio_any"])
        rows.append(
            [
                case["key"],
                fmt_us(ours["median_us"]) if ours else "-",
                fmt_us(hand["median_us"]) if hand else "-",
                f"{best['label']}: {fmt_us(best['median_us'])}" if best else "-",
                fmt_ratio(ratio and 1 / ratio),
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
        if c["scenario"] != "loaded"  # its own tables show both backends
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
        parts.append(console_table(*_summary_table(results)))
        parts.append("")
    for case in results["cases"]:
        parts.append(_title(case))
        parts.append(console_table(_headers(case), _case_rows(case)))
        parts.append("")
    backends = _backend_table(results)
    if backends:
        parts.append(
            "asyncio vs trio: median µs per call, asyncio / trio (trio ÷ asyncio)"
        )
        parts.append(console_table(*backends))
        parts.append("")
    parts += report_startup.console_lines(results)
    return "\n".join(parts)


def _notes(results: dict[str, Any]) -> list[str]:
    seen: dict[str, str] = {}
    for case in results["cases"]:
        for row in case["rows"]:
            note = BY_KEY[row["impl"]].note if row["impl"] in BY_KEY else ""
            if note:
                seen.setdefault(row["label"], note)
    return [f"- **{label}**: {note}" for label, note in seen.items()]


_SECTION_NOTES = {
    "fastapi_route": "Whole requests to a FastAPI app (middleware, routing, "
    "validation, the endpoint, JSON response, teardown), one at a time. "
    "*resolution µs* is a row's time minus the time of the same app whose endpoint "
    "has no `Depends` and awaits the same functions by hand, round by round "
    "(median): what resolving the dependencies costs per request; *resolution vs "
    "FastAPI* divides it by plain FastAPI's, round by round.",
}


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
            md_table(*_summary_table(results)),
            "",
        ]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for case in results["cases"]:
        by_scenario.setdefault(case["scenario"], []).append(case)
    for scenario, cases in by_scenario.items():
        out.append(f"### {scenario}")
        out.append("")
        if scenario in _SECTION_NOTES:
            out += [_SECTION_NOTES[scenario], ""]
        for case in cases:
            out += [
                f"**{_title(case)}**",
                "",
                md_table(_headers(case), _case_rows(case)),
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
            md_table(*backends),
            "",
        ]
    out += report_startup.markdown_lines(results, image_dir)
    notes = _notes(results)
    if notes:
        out += ["### Notes on the implementations", "", *notes, ""]
    return "\n".join(out)
