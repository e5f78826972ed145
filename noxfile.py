"""Development sessions: tests, typing, lint, docs and the benchmark comparison.

Run ``nox -s tests-3.11`` for the test suite and ``nox -s bench`` for the benchmark
comparison against the peer libraries. Sessions install from the dependency groups in
``pyproject.toml``, so nothing is pinned twice.
"""

from __future__ import annotations

import os

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
    session.install("-e", ".", *_group("tests"), *pins)
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


if __name__ == "__main__":
    nox.main()
