"""Plain-text and Markdown tables, and the number formats every report uses."""

from __future__ import annotations

from collections.abc import Iterable


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


def console_table(headers: list[str], rows: Iterable[list[str]]) -> str:
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


def md_table(headers: list[str], rows: Iterable[list[str]]) -> str:
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
