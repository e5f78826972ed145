"""The command line, run as users run it: ``python -m anydepends`` in a subprocess.

Each test writes a user module (``shop.py``) into a temporary directory and runs the
command there, so the module is found the way a user's own module is: from the
current directory. Bad input must give one paragraph on stderr and a non-zero exit
status, never a traceback.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SHOP = """
import sys
from typing import Annotated

import anyio

from anydepends import Container, Depends


async def get_settings():
    print("settings: open", file=sys.stderr, flush=True)
    try:
        yield {"greeting": "Hello"}
    finally:
        print("settings: close", file=sys.stderr, flush=True)


async def get_user(user_id: int) -> str:
    await anyio.sleep(0)  # really waits: the call goes through the scheduler
    return {1: "ada", 2: "grace"}[user_id]


def get_flags() -> list:
    return ["beta"]


async def greet(
    settings: Annotated[dict, Depends(get_settings, scope="app")],
    user: Annotated[str, Depends(get_user)],
    flags: Annotated[list, Depends(get_flags)],
    punctuation: str = "!",
) -> str:
    return f"{settings['greeting']}, {user}{punctuation}"


async def fake_user() -> str:
    return "fake"


container = Container(sync_to_thread=False)
container.overrides[get_user] = fake_user


def make_container() -> Container:
    return Container(sequential=True)


def needs_nothing() -> str:
    return "ok"


async def settled(settings: Annotated[dict, Depends(get_settings, scope="app")]):
    return settings["greeting"]  # never waits, once the app-scoped value exists


async def fails(user: Annotated[str, Depends(get_user)]) -> None:
    raise ValueError(f"no orders for {user}")


async def broken(x: Annotated[int, Depends("get_user")]) -> int:
    return x


class Request:
    pass


async def by_type(request: Request) -> None:
    pass


request_container = Container(context_types=[Request])
CONFIG = {"debug": True}


def broken_factory() -> Container:
    raise RuntimeError("no configuration file")


async def events() -> tuple:
    return anyio.Event(), anyio.Event()


async def fail_first(pair: Annotated[tuple, Depends(events)]) -> None:
    await pair[0].wait()
    pair[1].set()
    raise ValueError("first")


async def fail_second(pair: Annotated[tuple, Depends(events)]) -> None:
    with anyio.CancelScope(shield=True):  # fails even though the first did
        pair[0].set()
        await pair[1].wait()
    raise KeyError("second")


async def fails_twice(
    a: Annotated[None, Depends(fail_first)], b: Annotated[None, Depends(fail_second)]
) -> None:
    pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding the user's module, where the commands run."""
    (tmp_path / "shop.py").write_text(SHOP, encoding="utf-8")
    (tmp_path / "broken_import.py").write_text("import no_such_dependency\n")
    (tmp_path / "bad_name.py").write_text("from os import no_such_name\n")
    (tmp_path / "bad_syntax.py").write_text("def f(:\n")
    (tmp_path / "fails_at_import.py").write_text("raise RuntimeError('no db')\n")
    return tmp_path


def anydepends(
    cwd: Path, *args: str, status: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m anydepends ARGS`` in *cwd*; check its exit status."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "anydepends", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == status, (done.stdout, done.stderr)
    return done


def test_explain(project: Path) -> None:
    """``explain`` prints the plan; ``--mermaid`` and ``--dot`` the diagrams."""
    out = anydepends(project, "explain", "shop:greet").stdout
    assert out.startswith("Plan for shop.greet: 3 dependencies, at most 3 at once\n")
    assert "required values: user_id (shop.greet -> shop.get_user)" in out
    assert "├── settings: shop.get_settings  [#0 · async yield · app" in out
    mermaid = anydepends(project, "explain", "shop:greet", "--mermaid").stdout
    assert mermaid.startswith("flowchart LR\n")
    dot = anydepends(project, "explain", "shop:greet", "--dot").stdout
    assert dot.startswith("digraph plan {") and dot.endswith("}\n")


def test_console_script(project: Path) -> None:
    """The installed ``anydepends`` script finds the module in the current directory.

    (Unlike ``python -m``, a script does not put the current directory on the path.)
    """
    script = Path(sys.executable).with_name("anydepends")
    done = subprocess.run(
        [str(script), "explain", "shop:greet"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.startswith("Plan for shop.greet: ")


def test_explain_with_the_users_container(project: Path) -> None:
    """``--container`` takes the user's container with its overrides."""
    out = anydepends(project, "explain", "shop:greet", "--container", "shop:container")
    assert "overridden by shop.fake_user" in out.stdout
    assert "sync, inline" in out.stdout  # sync_to_thread=False
    assert "user_id" not in out.stdout


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_trace(project: Path, backend: str) -> None:
    """``trace`` calls once and prints the timeline, the critical path, the result.

    ``-v`` values are JSON when they parse (``user_id=2`` is an int, which the
    lookup needs), else strings; app-scoped teardown runs once, before exit.
    """
    svg, html = project / "out.svg", project / "out.html"
    done = anydepends(
        project,
        *("trace", "shop:greet", "-v", "user_id=2", "-v", "punctuation=?"),
        *("--backend", backend, "--svg", str(svg), "--html", str(html)),
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("shop.greet: ")
    assert f" on {backend}, 3 dependencies, peak " in lines[0]
    assert lines[1].startswith("critical path: ") and lines[1].endswith("shop.greet")
    assert "result: 'Hello, grace?'" in lines
    assert lines[-2:] == [f"wrote {svg}", f"wrote {html}"]
    assert svg.read_text().startswith("<svg")
    assert html.read_text().startswith("<!doctype html>")
    assert done.stderr.splitlines() == ["settings: open", "settings: close"]


def test_trace_with_a_container_factory(project: Path) -> None:
    """``--container`` may name a function that builds the container."""
    done = anydepends(
        project,
        *("trace", "shop:greet", "-v", "user_id=1"),
        *("--container", "shop.py:make_container"),
    )
    assert "result: 'Hello, ada!'" in done.stdout


def bench_json(project: Path, *args: str) -> dict[str, object]:
    done = anydepends(
        project,
        *("bench", "shop:greet", "-v", "user_id=1", "--json"),
        *("--seconds", "0.04", "--rounds", "2", *args),
    )
    # One app-scoped value per container (the given one, and its sequential twin).
    assert done.stderr.splitlines() == ["settings: open"] * 2 + ["settings: close"] * 2
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_bench_json(project: Path, backend: str) -> None:
    """``bench --json``: both modes, per-round counts, medians and ranges."""
    report = bench_json(project, "--backend", backend)
    assert report["target"] == "shop:greet"
    assert report["backend"] == backend
    assert report["concurrency"] == 1
    modes = report["modes"]
    assert isinstance(modes, dict) and set(modes) == {"default", "sequential"}
    for mode in modes.values():
        assert len(mode["rounds"]) == 2
        assert mode["calls"] == sum(r["calls"] for r in mode["rounds"]) > 0
        for stat in ("calls_per_second", "us_per_call"):
            low, mid, high = (mode[stat][k] for k in ("min", "median", "max"))
            assert 0 < low <= mid <= high


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_bench_concurrent_callers(project: Path, backend: str) -> None:
    """``--concurrency N``: every caller makes calls in every round."""
    report = bench_json(project, "--concurrency", "5", "--backend", backend)
    assert report["concurrency"] == 5
    modes = report["modes"]
    assert isinstance(modes, dict)
    for mode in modes.values():
        assert all(r["calls"] >= 5 for r in mode["rounds"])


def test_bench_table(project: Path) -> None:
    """Without ``--json``, and not on a terminal: the table, no progress display."""
    done = anydepends(
        project,
        *("bench", "shop:greet", "-v", "user_id=1", "--seconds", "0.04"),
        *("--rounds", "2", "--container", "shop:container"),
    )
    # With the container's override, the graph no longer takes user_id.
    assert (
        done.stderr.splitlines()
        == [
            "anydepends: note: shop:greet takes no value named user_id (the values its"
            " graph takes: punctuation)"
        ]
        + ["settings: open"] * 2
        + ["settings: close"] * 2
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "shop:greet on asyncio, 1 caller: 2 rounds of 0.01 s per mode"
    assert lines[2].split() == ["mode", "calls/s", "µs/call", "min-max", "µs/call"]
    assert lines[3].split()[0] == "default"
    assert lines[4].split()[0] == "sequential"
    assert lines[-1].startswith("default: ")
    assert lines[-1].endswith(
        "x the calls per second of sequential=True (medians over rounds)"
    )
    assert "\r" not in done.stdout


def test_bench_twin_has_the_containers_overrides(project: Path) -> None:
    """The sequential twin of ``--container`` carries its overrides.

    ``shop:container`` overrides the only dependable that takes ``user_id``; without
    the override, the sequential mode would fail for the missing value.
    """
    done = anydepends(
        project,
        *("bench", "shop:greet", "--json", "--seconds", "0.04", "--rounds", "2"),
        *("--container", "shop:container"),
    )
    modes = json.loads(done.stdout)["modes"]
    assert modes["default"]["calls"] > 0
    assert modes["sequential"]["calls"] > 0


def test_bench_progress_on_a_terminal(project: Path) -> None:
    """On a terminal, each round updates a progress line, erased before the table."""
    main, terminal = pty.openpty()
    command = [sys.executable, "-m", "anydepends", "bench", "shop:needs_nothing"]
    with subprocess.Popen(
        [*command, "--seconds", "0.04", "--rounds", "3"],
        cwd=project,
        stdout=terminal,
        stderr=subprocess.PIPE,
    ) as process:
        os.close(terminal)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed: the process exited
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    os.close(main)
    shown = b"".join(chunks).decode()
    for number in (1, 2, 3):
        assert f"\r\x1b[Kshop:needs_nothing: round {number}/3  default " in shown
    assert "\r\x1b[Kshop:needs_nothing on asyncio" in shown


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("target", ["shop:greet", "shop:settled"])
def test_ctrl_c_tears_down(project: Path, backend: str, target: str) -> None:
    """Ctrl-C during ``bench`` cancels it: both containers' teardowns run.

    Also for calls that never wait (``settled``), which give the event loop no
    chance to deliver the interrupt unless the bench pauses for it.
    """
    values = ["-v", "user_id=1"] if target == "shop:greet" else []
    options = ["--seconds", "600", "--backend", backend, "--concurrency", "2"]
    with subprocess.Popen(
        [sys.executable, "-m", "anydepends", "bench", target, *values, *options],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        # Both containers have made their first call: the bench is measuring.
        assert process.stderr.readline() == "settings: open\n"
        assert process.stderr.readline() == "settings: open\n"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert out == ""
    assert err.splitlines() == ["settings: close"] * 2 + ["anydepends: interrupted"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["explain", "shop.greet"],
            "target 'shop.greet' is not MODULE:NAME; write the module, a colon and",
        ),
        (
            ["explain", "nowhere:greet"],
            "cannot import module 'nowhere': No module named 'nowhere'. Modules are"
            " found in the current directory",
        ),
        (
            ["explain", "broken_import:f"],
            "cannot import module 'broken_import': ModuleNotFoundError: No module"
            " named 'no_such_dependency' (at ",
        ),
        (
            ["explain", "bad_name:f"],
            "cannot import module 'bad_name': ImportError: cannot import name"
            " 'no_such_name' from 'os'",
        ),
        (
            ["explain", "bad_syntax:f"],
            "cannot import module 'bad_syntax': SyntaxError: invalid syntax",
        ),
        (
            ["explain", "fails_at_import:f"],
            "importing module 'fails_at_import' raised RuntimeError: no db (at ",
        ),
        (["explain", "nofile.py:f"], "cannot import 'nofile.py': there is no such"),
        (["explain", "shop:gret"], "module 'shop' has no attribute 'gret'; did you"),
        (["explain", "shop:Request.x"], "shop:Request has no attribute 'x'"),
        (["explain", "shop:CONFIG"], "shop:CONFIG is a dict, not a callable"),
        (
            ["explain", "shop:broken"],
            "cannot compile shop:broken: 'get_user' is not callable\n"
            "  path: shop.broken\n",
        ),
        (
            ["trace", "shop:greet"],
            "shop:greet needs a value for user_id (needed by shop.greet ->"
            " shop.get_user): give it with -v user_id=VALUE",
        ),
        (
            ["trace", "shop:greet", "-v", "userid=1"],
            "shop:greet needs a value for user_id (needed by shop.greet ->"
            " shop.get_user): give it with -v user_id=VALUE\nanydepends: note:"
            " shop:greet takes no value named userid (the values its graph takes:"
            " punctuation, user_id)",
        ),
        (["trace", "shop:greet", "-v", "user_id"], "-v 'user_id' is not NAME=VALUE"),
        (
            ["trace", "shop:greet", "-v", "user_id=1", "-v", "user_id=2"],
            "-v user_id=... is given twice",
        ),
        (
            ["trace", "shop:greet", "-v", "user_id=1", "--svg", "no/such/dir.svg"],
            "cannot write 'no/such/dir.svg': there is no directory 'no/such'",
        ),
        (
            ["explain", "shop:greet", "--container", "shop:broken_factory"],
            "--container shop:broken_factory: calling it raised RuntimeError: no"
            " configuration file (at ",
        ),
        (
            ["bench", "shop:greet", "-v", "user_id=1", "--container", "shop:CONFIG"],
            "--container shop:CONFIG is a dict, not an anydepends Container",
        ),
        (
            ["trace", "shop:by_type", "--container", "shop:request_container"],
            "shop:by_type needs Request injected by type",
        ),
    ],
)
def test_bad_input(project: Path, args: list[str], message: str) -> None:
    """Each mistake: exit status 2 and one message saying what to fix."""
    done = anydepends(project, *args, status=2)
    assert done.stdout == ""
    assert done.stderr.startswith(f"anydepends: error: {message}")
    assert "Traceback" not in done.stderr


def test_trio_not_installed(project: Path) -> None:
    """``--backend trio`` without trio says what to install."""
    code = (
        "import sys; sys.modules['trio'] = None  # as if trio were not installed\n"
        "from anydepends._cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))"
    )
    args = ["trace", "shop:greet", "-v", "user_id=1", "--backend", "trio"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "anydepends: error: --backend trio needs trio installed: pip install trio\n"
    )


def test_several_failures_at_once(project: Path) -> None:
    """Two dependencies failing together: both are named, in the order they failed."""
    done = anydepends(project, "trace", "shop:fails_twice", status=1)
    message = done.stderr.strip()
    assert message.startswith(
        "anydepends: error: calling shop:fails_twice raised 2 errors: ValueError:"
        " first (at "
    )
    assert "; KeyError: 'second' (at " in message
    assert "Traceback" not in message


@pytest.mark.parametrize("command", ["trace", "bench"])
def test_the_users_code_raises(project: Path, command: str) -> None:
    """An exception from the user's code: exit status 1, where it was raised."""
    done = anydepends(project, command, "shop:fails", "-v", "user_id=1", status=1)
    first, *_ = done.stderr.splitlines()
    assert first.startswith(
        "anydepends: error: calling shop:fails raised ValueError: no orders for ada"
        " (at "
    )
    line = SHOP.splitlines().index('    raise ValueError(f"no orders for {user}")') + 1
    assert first.endswith(f"shop.py:{line}, in fails)")
    assert "Traceback" not in done.stderr
