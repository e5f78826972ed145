# ruff: noqa: I002  (annotations must be real objects here; see harness.py)
"""Dependables written for FastAPI (``fastapi.Depends``, ``fastapi.Security``,
``fastapi.security.SecurityScopes``) run unchanged through anydepends with identical
results (docs/semantics.md §1: FastAPI's markers are accepted wherever ours are).
"""

import subprocess
import sys
from typing import Annotated, Any

import pytest

from . import (  # noqa: F401  (importing the modules registers their cases)
    test_caching,
    test_declarations,
    test_overrides,
    test_security,
    test_teardown,
)
from .harness import (
    FASTAPI,
    REGISTRY,
    Case,
    Log,
    Markers,
    anydepends_markers,
    assert_same,
    check,
    logged,
    run_anydepends,
    run_fastapi,
)


@pytest.mark.parametrize("key", sorted(REGISTRY))
async def test_every_case_with_fastapi_markers(key: str) -> None:
    """Every conformance case, declared with FastAPI's own markers and run through
    ``Container(sequential=True)``, gives exactly what FastAPI gives: result or
    exception, and the log entry by entry."""
    build = REGISTRY[key]
    fa = await run_fastapi(build(FASTAPI))
    seq = await run_anydepends(build(FASTAPI), sequential=True)
    assert_same(fa, seq, order="exact")


def case_mixed(inner: Markers, outer: Markers) -> Case:
    log = Log()

    def token(ss: inner.SecurityScopes, t: str = "anon") -> Any:
        log("token", "call", tuple(ss.scopes))
        return [t, ss.scope_str]

    async def session() -> Any:
        with logged(log, "session"):
            yield "db"

    async def user(
        tok: Annotated[Any, inner.Security(token, scopes=["me"])],
        db: str = inner.Depends(session),
    ) -> Any:
        log("user", "call")
        return {"token": tok, "db": db}

    def root(
        db: Annotated[str, outer.Depends(session)],
        u: Any = outer.Security(user, scopes=["items"]),
    ) -> Any:
        log("root", "call")
        return [u, db]

    return Case(root, log, values={"t": "abc"})


async def test_fastapi_declared_dependables_under_an_anydepends_root() -> None:
    """Dependables written for FastAPI (``fastapi.Security`` with scopes,
    ``fastapi.security.SecurityScopes``, ``fastapi.Depends`` on a ``yield``
    dependency), used from a root declared with anydepends' markers, behave as the
    same graph does in FastAPI; the two marker sets share cache entries."""
    fa = await run_fastapi(case_mixed(FASTAPI, FASTAPI))
    assert fa.exc is None, fa
    assert fa.result == [{"token": ["abc", "items me"], "db": "db"}, "db"]
    m = anydepends_markers()
    for inner, outer in ((FASTAPI, m), (m, FASTAPI)):
        for sequential in (True, False):
            outcome = await run_anydepends(
                case_mixed(inner, outer), sequential=sequential
            )
            assert_same(fa, outcome, order="exact" if sequential else "multiset")


def case_params_objects(m: Markers) -> Case:
    import fastapi.params

    log = Log()

    def dep(n: int) -> int:
        log("dep", "call")
        return n

    def scoped(ss: m.SecurityScopes) -> Any:
        log("scoped", "call")
        return ss.scopes

    def root(
        a: int = fastapi.params.Depends(dep),
        b: Any = fastapi.params.Security(scoped, scopes=["x"]),
        c: Annotated[int, fastapi.params.Depends(dep, use_cache=False)] = 0,
    ) -> Any:
        return [a, b, c]

    return Case(root, log, values={"n": 4})


async def test_fastapi_params_classes() -> None:
    """``fastapi.params.Depends``/``fastapi.params.Security`` instances built
    directly (the classes behind the factories, with ``use_cache``) are accepted
    too."""
    await check(
        case_params_objects,
        expect=[4, ["x"], 4],
        expect_log=[("dep", "call"), ("scoped", "call"), ("dep", "call")],
    )


def test_importing_anydepends_does_not_import_fastapi() -> None:
    """Recognising FastAPI's markers must not import FastAPI: a program that never
    imported it does not get it from anydepends (docs/semantics.md §1)."""
    code = (
        "import sys, anydepends\n"
        "from anydepends import Container, Depends\n"
        "assert 'fastapi' not in sys.modules, 'anydepends imported fastapi'\n"
        "import anyio\n"
        "def dep() -> int:\n"
        "    return 1\n"
        "async def root(x: int = Depends(dep)) -> int:\n"
        "    return x\n"
        "async def main() -> None:\n"
        "    async with Container() as c:\n"
        "        assert await c.call(root) == 1\n"
        "anyio.run(main)\n"
        "assert 'fastapi' not in sys.modules, 'resolving imported fastapi'\n"
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
