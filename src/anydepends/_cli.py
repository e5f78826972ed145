"""The ``anydepends`` command line: explain, trace and bench your own graphs.

``python -m anydepends explain|trace|bench MODULE:FUNC ...`` (or the ``anydepends``
script). Bad input (a target that cannot be found, a graph that does not compile, a
missing value) is one paragraph on stderr and exit status 2, never a traceback; an
exception raised by the user's own code while it runs is reported the same way, with
exit status 1; Ctrl-C cancels the run (teardowns included), exit status 130.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import anyio

from ._cli_target import CliError, describe, load_container, load_target, parse_values
from ._container import Container
from ._errors import DependencyError
from ._plan import Plan
from ._scope import Scope

__all__ = ["main"]

_EXAMPLES = """\
examples:
  anydepends explain myapp.handlers:checkout --mermaid
  anydepends trace   myapp.handlers:checkout -v user_id=7 -v token=abc --svg out.svg
  anydepends bench   myapp.handlers:checkout -v user_id=7 --concurrency 100 --json
"""


class UserCodeError(Exception):
    """The user's own code raised while the command ran it (exit status 1)."""


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="anydepends",
        description="Explain, trace and benchmark the dependency graph of your own"
        " callables (FUNC in MODULE, imported from the current directory).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "target",
            metavar="MODULE:FUNC",
            help="the callable (MODULE may also be a path/to/file.py)",
        )
        sub.add_argument(
            "--container",
            metavar="MODULE:ATTR",
            help="your configured Container (overrides, context types), or a function"
            " returning one; default: Container()",
        )
        return sub

    def running(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-v",
            "--value",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a value by name (JSON if it parses as JSON, else the text); repeat"
            " for each value",
        )
        sub.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")

    explain = command("explain", "print the compiled plan (Plan.explain())")
    form = explain.add_mutually_exclusive_group()
    form.add_argument("--mermaid", action="store_true", help="a Mermaid flowchart")
    form.add_argument("--dot", action="store_true", help="a Graphviz DOT digraph")
    explain.set_defaults(run=_explain)

    trace = command("trace", "call it once and print when each dependency ran")
    running(trace)
    trace.add_argument("--svg", type=Path, metavar="PATH", help="write the chart")
    trace.add_argument("--html", type=Path, metavar="PATH", help="write a page")
    trace.set_defaults(run=_trace)

    bench = command(
        "bench",
        "measure calls per second, concurrently (the default) and with sequential=True",
    )
    running(bench)
    bench.add_argument(
        "--seconds",
        type=_positive(float),
        default=2.0,
        help="measuring time, both modes together (default: 2)",
    )
    bench.add_argument(
        "--rounds",
        type=_positive(int),
        default=5,
        help="rounds per mode; medians and ranges are over rounds (default: 5)",
    )
    bench.add_argument(
        "--concurrency",
        type=_positive(int),
        default=1,
        metavar="N",
        help="concurrent callers (default: 1)",
    )
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.set_defaults(run=_bench)
    return top


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            number = kind(text)
        except ValueError:
            number = None
        if number is None or number <= 0:
            msg = f"expected a positive number, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return number

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _compile(container: Container, fn: Callable[..., Any], target: str) -> Plan[Any]:
    try:
        return container.compile(fn)
    except DependencyError as exc:
        msg = f"cannot compile {target}: {exc}"
        raise CliError(msg) from None
    except Exception as exc:
        msg = f"compiling {target} raised {describe(exc)}"
        raise CliError(msg) from None


def _check_inputs(
    plan: Plan[Any], values: dict[str, Any], target: str, container: Container
) -> None:
    """Fail before running on values the graph lacks, or does not take."""
    known = {name for node in plan.nodes for name, _ in node.values}
    unknown = sorted(set(values) - known)
    note = ""
    if unknown:
        # Not an error: the same -v options may serve several containers, one of
        # whose overrides needs fewer values. A misspelt required value fails below.
        takes = ", ".join(sorted(known)) or "none"
        note = (
            f"{target} takes no value named {', '.join(unknown)} (the values its"
            f" graph takes: {takes})"
        )
    missing = {
        name: where
        for name, where in plan.required_values.items()
        if name not in values
    }
    if missing:
        needs = "; ".join(
            f"{name} (needed by {', '.join(where)})" for name, where in missing.items()
        )
        give = " ".join(f"-v {name}=VALUE" for name in missing)
        msg = f"{target} needs a value for {needs}: give it with {give}"
        if note:
            msg += f"\nanydepends: note: {note}"
        raise CliError(msg)
    if note:
        print(f"anydepends: note: {note}", file=sys.stderr)
    provided = {Container, Scope, type(container)}
    by_type = sorted(t.__qualname__ for t in plan.context_types if t not in provided)
    if by_type:
        msg = (
            f"{target} needs {', '.join(by_type)} injected by type (from a scope's"
            " context), which the command line cannot provide: override the"
            " dependables that take it in a --container"
        )
        raise CliError(msg)


def _run(backend: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    """``anyio.run(fn)``, where Ctrl-C cancels *fn* (see :func:`_interruptible`)."""
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        msg = "--backend trio needs trio installed: pip install trio"
        raise CliError(msg)
    return anyio.run(_interruptible, fn, backend=backend)


async def _interruptible(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Await *fn*; the first Ctrl-C cancels it, then raises KeyboardInterrupt.

    A KeyboardInterrupt raised wherever the code happens to be (trio raises it at
    any line; asyncio's handler only cancels at the next wait) could land in the
    middle of a teardown. A cancellation is what the containers know how to
    unwind: every app-scoped teardown runs. A second Ctrl-C interrupts as usual.
    """
    interrupted = False
    result: Any = None
    error: Exception | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal interrupted
            try:
                with anyio.open_signal_receiver(signal.SIGINT) as signals:
                    async for _ in signals:
                        interrupted = True
                        tg.cancel_scope.cancel()
                        return
            except NotImplementedError:  # pragma: no cover - no signals (Windows)
                return

        tg.start_soon(watch)
        try:
            result = await fn()
        except Exception as exc:  # the task group would wrap it in a group
            error = exc
        tg.cancel_scope.cancel()  # stop watching
    if interrupted:
        raise KeyboardInterrupt
    if error is not None:
        raise error
    return result


def _user_error(target: str, exc: BaseException) -> UserCodeError:
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        stack: list[BaseException] = [exc]
        while stack:
            current = stack.pop()
            if isinstance(current, BaseExceptionGroup):
                group = cast("BaseExceptionGroup[BaseException]", current)
                stack.extend(reversed(group.exceptions))
            else:
                leaves.append(current)
        what = "; ".join(describe(leaf) for leaf in leaves)
        return UserCodeError(f"calling {target} raised {len(leaves)} errors: {what}")
    return UserCodeError(f"calling {target} raised {describe(exc)}")


def _prepare(args: argparse.Namespace) -> tuple[Container, Callable[..., Any]]:
    fn = load_target(args.target)
    container = load_container(args.container)
    return container, fn


def _explain(args: argparse.Namespace) -> int:
    container, fn = _prepare(args)
    plan = _compile(container, fn, args.target)
    if args.mermaid:
        print(plan.to_mermaid())
    elif args.dot:
        print(plan.to_dot(), end="")
    else:
        print(plan.explain())
    return 0


def _trace(args: argparse.Namespace) -> int:
    container, fn = _prepare(args)
    values = parse_values(args.value)
    for path in (args.svg, args.html):
        if path is not None and not path.parent.is_dir():  # fail before the run
            where = str(path.parent)
            msg = f"cannot write {str(path)!r}: there is no directory {where!r}"
            raise CliError(msg)
    plan = _compile(container, fn, args.target)
    _check_inputs(plan, values, args.target, container)

    async def traced() -> Any:
        try:
            async with container:  # app-scoped teardowns run before we print
                return await container.trace(fn, **values)
        except Exception as exc:
            raise _user_error(args.target, exc) from None

    trace = _run(args.backend, traced)
    print(trace.timeline())
    result = repr(trace.result)
    print(f"result: {result if len(result) <= 200 else result[:197] + '...'}")
    for path, text in ((args.svg, trace.to_svg), (args.html, trace.to_html)):
        if path is not None:
            try:
                path.write_text(text(), encoding="utf-8")
            except OSError as exc:
                msg = f"cannot write {str(path)!r}: {exc.strerror or exc}"
                raise CliError(msg) from None
            print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ._bench import BenchSettings, bench, report, report_json

    container, fn = _prepare(args)
    values = parse_values(args.value)
    plan = _compile(container, fn, args.target)
    _check_inputs(plan, values, args.target, container)
    settings = BenchSettings(
        target=args.target,
        backend=args.backend,
        seconds=args.seconds,
        rounds=args.rounds,
        concurrency=args.concurrency,
    )
    progress = sys.stdout.isatty() and not args.json

    async def measured() -> Any:
        try:
            return await bench(container, fn, values, settings, progress=progress)
        except Exception as exc:
            raise _user_error(args.target, exc) from None

    results = _run(args.backend, measured)
    print(report_json(settings, results) if args.json else report(settings, results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except CliError as exc:
        print(f"anydepends: error: {exc}", file=sys.stderr)
        return 2
    except UserCodeError as exc:
        print(f"anydepends: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("anydepends: interrupted", file=sys.stderr)
        return 130
    except BaseExceptionGroup as group:  # Ctrl-C on trio, in a task group
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        print("anydepends: interrupted", file=sys.stderr)
        return 130
    return status
