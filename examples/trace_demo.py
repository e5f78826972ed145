"""Trace one call, concurrently and in FastAPI's sequential order, and draw both.

A checkout handler needs a user (which needs a session), the cart, prices for the
cart, a sync tax table (in a worker thread) and a database transaction. The same
graph runs twice: once as anydepends runs it by default, once with
``Container(sequential=True)`` (FastAPI's one-at-a-time, depth-first order).

Run it with ``python examples/trace_demo.py``; with ``--out DIR`` it also writes the
plan explanation, both timelines and both SVG charts into DIR (the docs' figures are
made this way: ``python examples/trace_demo.py --out docs/_static/trace``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio

from anydepends import Container, Depends


async def get_session(token: str) -> dict[str, str]:
    await anyio.sleep(0.020)  # a session store round trip
    return {"user_id": token.removeprefix("t-")}


async def get_user(session: Annotated[dict[str, str], Depends(get_session)]) -> str:
    await anyio.sleep(0.015)  # the user service
    return session["user_id"]


async def get_cart(cart_id: int) -> list[str]:
    await anyio.sleep(0.030)  # the cart service
    return ["book", "lamp"]


async def get_prices(cart: Annotated[list[str], Depends(get_cart)]) -> dict[str, int]:
    await anyio.sleep(0.020)  # the pricing service
    return {item: 10 * (i + 1) for i, item in enumerate(cart)}


def tax_table() -> float:
    time.sleep(0.010)  # blocking file read: it belongs in a worker thread
    return 0.2


async def transaction() -> AsyncIterator[list[str]]:
    await anyio.sleep(0.005)  # BEGIN
    log: list[str] = []
    yield log
    await anyio.sleep(0.005)  # COMMIT


async def checkout(
    user: Annotated[str, Depends(get_user)],
    prices: Annotated[dict[str, int], Depends(get_prices)],
    tax: Annotated[float, Depends(tax_table)],
    tx: Annotated[list[str], Depends(transaction)],
) -> str:
    await anyio.sleep(0.005)
    total = sum(prices.values()) * (1 + tax)
    tx.append(f"order for {user}")
    return f"{user} pays {total:.2f}"


async def main() -> dict[str, str]:
    """Trace both modes; return the figures by file name."""
    figures: dict[str, str] = {}
    for sequential in (False, True):
        async with Container(sequential=sequential) as container:
            trace = await container.trace(checkout, token="t-ada", cart_id=7)
            label = "sequential" if sequential else "concurrent"
            print(f"--- {label}: {trace.result}")
            print(trace.timeline())
            figures[f"{label}.txt"] = trace.timeline() + "\n"
            figures[f"{label}.svg"] = trace.to_svg()
            if not sequential:
                figures["explain.txt"] = container.compile(checkout).explain() + "\n"
    return figures


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--out", type=Path, help="write the figures into this folder")
    out: Path | None = cli.parse_args().out
    figures = anyio.run(main)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in figures.items():
            (out / name).write_text(text)
