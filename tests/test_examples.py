"""The programs in ``examples/`` run to completion and print what they promise."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``examples/<name>`` in a fresh interpreter; return its standard output."""
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    return completed.stdout


def load(name: str) -> ModuleType:
    """Import ``examples/<name>`` as a module (examples are not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name[:-3]}", EXAMPLES / name
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested() -> None:
    """Each example program has a test here (a new one needs one)."""
    tested = {"queue_worker.py", "trio_service.py", "starlette_app.py", "cli.py"}
    tested.add("trace_demo.py")
    tested.add("fastapi_app.py")
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_queue_worker() -> None:
    """Five jobs, one rolled back; the app-scoped database opens and closes once."""
    out = run("queue_worker.py").splitlines()
    assert out[0] == "db: connected to memory://jobs"
    assert out[-1] == "db: closed after 4 commits"
    handled = sorted(
        line.split(": ", 1)[1] for line in out if line.startswith("worker")
    )
    assert handled == [
        "failed: job 3: grace may send 3 words",
        "job 1: ada says 'hello'",
        "job 2: grace says 'hi there'",
        "job 4: ada says 'bye'",
        "job 5: grace says 'ok'",
    ]
    assert "  rollback: job 3: grace may send 3 words" in out
    assert {line.split(":")[0] for line in out if line.startswith("worker")} == {
        "worker-1",
        "worker-2",
    }


def test_trio_service() -> None:
    """Six messages delivered, never more than two connections at once."""
    out = run("trio_service.py").splitlines()
    assert out[0] == "templates: loaded"
    assert out[-1] == "templates: unloaded"
    assert out[-2] == "sent 6, at most 2 connections at once"
    delivered = sorted(line for line in out if line.startswith("#"))
    assert delivered[0] == "#1 to ada@example.com: Welcome, Ada!"
    assert delivered[1] == "#2 to grace@example.com: Hi Grace, ping."
    assert len(delivered) == 6


def test_starlette_app_program() -> None:
    """The in-process demo prints each request's status and body."""
    assert run("starlette_app.py").splitlines() == [
        "GET /items/1 200 {'item': 'lamp', 'read_by': 'bob'}",
        "PUT /items/1 403 {'detail': 'bob lacks items:write'}",
        "PUT /items/2 200 {'item': 'chair', 'written_by': 'ada'}",
        "GET /items/9 404 {'detail': 'no item 9'}",
        "GET /items/1 401 {'detail': 'not authenticated'}",
    ]


async def test_starlette_app_in_process() -> None:
    """The app answers through httpx's ASGI transport on asyncio and on trio."""
    import httpx

    app = load("starlette_app.py").app
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        ada = {"authorization": "Bearer t-ada"}
        ok = await client.get("/items/2", headers=ada)
        assert ok.status_code == 200
        assert ok.json() == {"item": "chair", "read_by": "ada"}
        bob = {"authorization": "Bearer t-bob"}
        assert (await client.put("/items/2", headers=bob)).status_code == 403
        bad = await client.get("/items/2", headers={"authorization": "Bearer x"})
        assert bad.json() == {"detail": "bad token"}


def test_cli_greet() -> None:
    """Values come from the parsed arguments by name; config from the environment."""
    assert run("cli.py", "greet", "--name", "Ada").splitlines() == ["Hello, Ada!"]
    shouted = run("cli.py", "greet", "--name", "Ada", "--shout", env={"GREETING": "Hi"})
    assert shouted.splitlines() == ["HI, ADA!"]


def test_cli_stats() -> None:
    """An async command with the same dependencies."""
    out = run("cli.py", "stats", "3", "1", "4", "1", "5", env={"PRECISION": "1"})
    assert out.splitlines() == ["n=5 mean=2.8", "median=3.0"]


def test_trace_demo(tmp_path: Path) -> None:
    """The demo traces both modes and writes the docs' figures where asked."""
    out = run("trace_demo.py", "--out", str(tmp_path))
    assert "--- concurrent: ada pays 36.00" in out
    assert "--- sequential: ada pays 36.00" in out
    assert "critical path: get_cart > get_prices > checkout" in out
    for name in ("concurrent.svg", "sequential.svg", "concurrent.txt", "explain.txt"):
        assert (tmp_path / name).stat().st_size > 0
    assert (
        (tmp_path / "explain.txt")
        .read_text()
        .startswith("Plan for checkout: 6 dependencies, at most 4 at once")
    )


def test_fastapi_app_program() -> None:
    """The FastAPI demo answers as FastAPI would (403, 404, 401 from dependencies),
    the pool is created once for the app, each request's transaction commits or
    rolls back, and an override replaces the token check (no header needed)."""
    out = run("fastapi_app.py").splitlines()
    ada = "{'viewer': 'ada', 'profile': {'id': 'ada', 'plan': 'pro'}, 'orders': [1, 2]}"
    assert out[:5] == [
        f"GET /users/ada/home 200 {ada}",
        "GET /users/bob/home 403 {'detail': 'bob lacks orders:read'}",
        "GET /users/zoe/home 404 {'detail': 'no user zoe'}",
        "GET /users/ada/home 401 {'detail': 'bad token'}",
        "GET /users/ada/home 200 "
        + ada.replace("'ada', 'profile'", "'tester', 'profile'"),
    ]
    assert out[5] == "pool: open"
    assert out[-1] == "pool: closed"
    assert out[6:-1] == [
        "tx 1: commit",
        *(f"tx {n}: rollback (HTTPException)" for n in (2, 3, 4)),
        "tx 5: commit",
    ]


async def test_fastapi_app_in_process() -> None:
    """The example app answers through httpx's ASGI transport on asyncio and trio,
    with its lifespan run, and its OpenAPI document lists the security scope."""
    import httpx

    app = load("fastapi_app.py").app
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        response = await client.get(
            "/users/ada/home", headers={"authorization": "Bearer t-ada"}
        )
        assert response.json()["orders"] == [1, 2]
        schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/users/{user_id}/home"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["user_id", "authorization"]
