"""A command-line tool whose commands take their dependencies from anydepends.

Each sub-command is a function; its parameters are either dependencies or values
filled from the parsed arguments *by name*. The sync dependencies here are cheap, so
the container runs them inline (``sync_to_thread=False``) instead of in threads.

Run it with ``python examples/cli.py greet --name Ada --shout`` or
``python examples/cli.py stats 3 1 4 1 5``.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import anyio

from anydepends import Container, Depends, MissingValuesError


@dataclass(frozen=True)
class Config:
    greeting: str
    precision: int


def load_config() -> Config:
    return Config(
        greeting=os.environ.get("GREETING", "Hello"),
        precision=int(os.environ.get("PRECISION", "2")),
    )


ConfigDep = Annotated[Config, Depends(load_config)]


class Console:
    def __init__(self, shout: bool) -> None:
        self.shout = shout
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(text.upper() if self.shout else text)


def console(shout: bool = False) -> Iterator[Console]:
    # A yield dependency: everything said is printed once the command is done.
    out = Console(shout)
    yield out
    print("\n".join(out.lines))


ConsoleDep = Annotated[Console, Depends(console)]


def greet(name: str, config: ConfigDep, out: ConsoleDep) -> None:
    out.say(f"{config.greeting}, {name}!")


async def stats(numbers: list[float], config: ConfigDep, out: ConsoleDep) -> None:
    p = config.precision
    out.say(f"n={len(numbers)} mean={statistics.fmean(numbers):.{p}f}")
    out.say(f"median={statistics.median(numbers):.{p}f}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cli.py", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    hello = commands.add_parser("greet", help="greet someone")
    hello.add_argument("--name", required=True)
    hello.add_argument("--shout", action="store_true")
    numbers = commands.add_parser("stats", help="summarise numbers")
    numbers.add_argument("numbers", nargs="+", type=float)
    return top


COMMANDS = {"greet": greet, "stats": stats}


async def run(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    command = COMMANDS[args.pop("command")]
    async with Container(sync_to_thread=False) as container:
        try:
            await container.call(command, **args)
        except MissingValuesError as exc:  # a command needs an option nobody parses
            print(exc)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return anyio.run(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
