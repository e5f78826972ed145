"""Development sessions: tests, typing, lint, docs and the benchmark comparison.

Run ``nox -s tests-3.11`` for the test suite and ``nox -s bench`` for the benchmark
comparison against the peer libraries. Sessions install from the dependency groups in
``pyproject.toml``, so nothing is pinned twice.
"""

from __future__ import annotations

import glob
import os
import shutil
import tarfile
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_external_run = True
# This project's machines have one interpreter and no network but the package index:
# never let nox try to download a Python.
if hasattr(nox.options, "download_python"):
    nox.options.download_python = "never"
nox.options.sessions = ["tests-3.11", "lint", "mypy", "pyright", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.11"]


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite on asyncio and trio, with branch coverage: once with the
    private fast paths (the default), once with public APIs only
    (``ANYDEPENDS_PRIVATE_STATE=0``), where every guarantee must hold too."""
    session.install("-e", ".", *_group("tests"))
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-q",
        *session.posargs,
        env={"ANYDEPENDS_PRIVATE_STATE": "0"},
    )
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


def _floors() -> list[str]:
    """The lowest versions the metadata allows: runtime floors, and trio's (tests)."""
    pins: list[str] = []
    wanted = [*PYPROJECT["project"]["dependencies"], *_group("tests")]
    for requirement in wanted:
        name, sep, version = requirement.partition(">=")
        if sep and name.strip().lower() in {"anyio", "typing-extensions", "trio"}:
            pins.append(f"{name.strip()}=={version.strip()}")
    return pins


@nox.session(python="3.11", default=False)
def tests_lowest(session: nox.Session) -> None:
    """Run the test suite on the lowest versions of anyio, typing-extensions and trio
    the metadata allows (the rest of the test tools at their latest)."""
    pins = _floors()
    # anyio 4.14.x's pytest plugin imports pytest's CallSpec2, which pytest 9.2 turned
    # into an error-by-default deprecation: the lowest anyio needs a pytest before it.
    session.install("-e", ".", *_group("tests"), *pins, "pytest<9.2")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHONS, default=False)
def stress(session: nox.Session) -> None:
    """Run the long load and cancellation trials (shortened ones run in `tests`)."""
    session.install("-e", ".", *_group("tests"))
    session.run(
        "pytest",
        "tests/test_stress.py",
        *session.posargs,
        env={"ANYDEPENDS_STRESS": "full"},
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check formatting and lint rules with ruff."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11", default=False)
def fmt(session: nox.Session) -> None:
    """Apply ruff's fixes and formatting."""
    session.install(*_group("lint"))
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")


@nox.session(python="3.11")
def mypy(session: nox.Session) -> None:
    """Type-check the package and the typing tests with mypy --strict."""
    session.install("-e", ".", *_group("typing"))
    session.run("mypy")


@nox.session(python="3.11")
def pyright(session: nox.Session) -> None:
    """Type-check the package and the typing tests with pyright strict."""
    session.install("-e", ".", *_group("typing"))
    session.run("pyright")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    session.install("-e", ".", *_group("docs"))
    session.run(
        "sphinx-build",
        "-n",
        "-T",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
    )


@nox.session(python="3.11", default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmark comparison against the peer libraries (quick mode by default).

    Pass ``-- --full`` for the long run; every other argument goes to the runner.
    """
    session.install(".", *_group("bench"))
    session.run(
        "python",
        "-m",
        "benchmarks",
        *session.posargs,
        env={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
    )


# -- FastAPI's own test suite through anydepends.fastapi.ConcurrentRoute --------------

FASTAPI_VERSION = "0.165.0"
# What FastAPI's dependency and security tests import, pinned (the session is
# deterministic); pytest, inline-snapshot, pytest-timeout and httpx2 come from
# FastAPI's own `tests` dependency group, python-multipart for its form tests.
FASTAPI_SUITE_REQUIREMENTS = [
    f"fastapi=={FASTAPI_VERSION}",
    "starlette==1.10.0",
    "pydantic==2.14.4",
    "anyio==4.16.0",
    "trio==0.35.0",
    "httpx==0.28.1",
    "httpx2==2.16.2",
    "python-multipart==0.0.34",
    "pytest==9.1.1",
    "pytest-timeout==2.4.0",
    "inline-snapshot==0.36.1",
    "dirty-equals==0.11",
]
FASTAPI_SUITE_TESTS = [
    "tests/test_dependency*.py",
    "tests/test_depends*.py",
    "tests/test_security*.py",
]
# The tests of that selection that cannot pass with every route a ConcurrentRoute:
# each is a deliberate difference, listed with its reason in docs/fastapi_route.md.
# A node id without brackets deselects every parametrization (both anyio backends).
_CONCURRENCY = "tests/test_dependency_concurrency.py::"
FASTAPI_SUITE_DESELECT = [
    # max_concurrency: FastAPI keeps one semaphore per Depends(max_concurrency=...)
    # object and event loop (`declaration._concurrency.get_semaphore()`). These tests
    # inspect that semaphore, or rely on it being shared with routes FastAPI resolves
    # itself (a WebSocket route, another app). anydepends enforces the same limit
    # with a limiter of its own per declaration and container (docs/semantics.md
    # §10), so FastAPI's semaphore stays untouched.
    *(
        _CONCURRENCY + name
        for name in (
            "test_shared_declaration_limits_both_routes_before_worker_entry",
            "test_separate_declarations_are_independent_even_with_identical_annotations",
            "test_cached_reuse_and_separate_executions_with_default_dependencies",
            "test_declaration_survives_parameterless_and_inferred_dependencies",
            "test_errors_return_capacity",
            "test_cancelled_waiter_does_not_leak_capacity",
            "test_cleanup_can_own_a_task_group",
            "test_cancelled_admission_cleans_up_earlier_dependency",
            "test_cancellation_holds_capacity_until_sync_cleanup_finishes",
            "test_cancellation_waiting_for_entry_worker_releases_ownership",
            "test_shared_declaration_limits_across_apps",
            "test_cached_value_only_uses_capacity_from_the_first_declaration",
            "test_websocket_cleanup_releases_capacity_for_waiting_http_request",
        )
    ),
    *(
        f"{_CONCURRENCY}{name}[{backend}-{params}]"
        for backend in ("asyncio", "trio")
        for name, params in (
            (
                "test_resource_limit_allows_sync_endpoint_and_response_validation",
                "function-dependency",
            ),
            (
                "test_resource_limit_allows_sync_endpoint_and_response_validation",
                "request-dependency",
            ),
            (
                "test_capacity_follows_scope_through_streaming_and_background_work",
                "request",
            ),
            ("test_copied_declaration_uses_its_configured_limit", "1-3"),
            ("test_copied_declaration_uses_its_configured_limit", "3-1"),
            ("test_copied_declaration_uses_its_configured_limit", "None-2"),
            ("test_copied_declaration_uses_its_configured_limit", "1-1"),
        )
    ),
    # FastAPI reads app.dependency_overrides again for every dependency it resolves,
    # so a dependency can install an override its later siblings see in the same
    # request. The route class reads the override set once per request (and runs the
    # plan compiled for that set): such an override applies from the next request.
    _CONCURRENCY + "test_override_installed_by_earlier_dependency_applies_immediately",
    # Numbers its dependencies' results by a shared counter in the order they run:
    # two independent sync dependencies (in worker threads) that overlap may run in
    # either order, so the numbers swap whenever the second finishes first (about one
    # run in three on a 2-CPU machine). The order of independent dependencies is not
    # promised (docs/semantics.md §4); `sequential=True` keeps FastAPI's.
    "tests/test_security_scopes_sub_dependency.py::"
    "test_security_scopes_sub_dependency_caching",
]


@nox.session(python="3.11", default=False)
def fastapi_suite(session: nox.Session) -> None:
    """Run FastAPI's dependency and security tests with every route a ConcurrentRoute.

    Downloads FastAPI's source distribution from PyPI (it ships the tests), drops in
    `.ci/fastapi_suite/conftest.py` (APIRouter's default route_class becomes
    anydepends' ConcurrentRoute) and runs the selection, minus the documented
    deliberate differences in FASTAPI_SUITE_DESELECT.
    """
    session.install(".", *FASTAPI_SUITE_REQUIREMENTS)
    tmp = Path(session.create_tmp()).resolve()
    source = tmp / f"fastapi-{FASTAPI_VERSION}"
    if source.exists():
        shutil.rmtree(source)
    session.run(
        "python",
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--dest",
        str(tmp),
        f"fastapi=={FASTAPI_VERSION}",
    )
    with tarfile.open(tmp / f"fastapi-{FASTAPI_VERSION}.tar.gz") as sdist:
        sdist.extractall(tmp, filter="data")
    # Test the installed FastAPI (the same release), not the sources next to the tests.
    shutil.rmtree(source / "fastapi")
    shutil.copy(Path(".ci/fastapi_suite/conftest.py"), source / "tests" / "conftest.py")
    files = sorted(
        os.path.relpath(found, source)
        for pattern in FASTAPI_SUITE_TESTS
        for found in glob.glob(str(source / pattern))
    )
    deselect = [arg for node in FASTAPI_SUITE_DESELECT for arg in ("--deselect", node)]
    session.chdir(source)
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        *files,
        *deselect,
        *session.posargs,
    )


if __name__ == "__main__":
    nox.main()
