"""The pytest plugin: its fixtures work in a user's test suite, on asyncio and trio.

Each test writes a small test suite with ``pytester`` and runs it in-process; the
plugin is loaded the way users get it, through its ``pytest11`` entry point. The
suites' own conftest runs every async test on both backends.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

BOTH_BACKENDS = """
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""

INI = """
[pytest]
anyio_mode = auto
filterwarnings = error
"""

GRAPH = """
from typing import Annotated

from anydepends import Container, Depends, Scope
from anydepends.testing import Spy, dependency_fixture

def log(line):
    with open("log.txt", "a") as file:
        print(line, file=file)


async def get_settings():
    log("settings: open")
    yield {"env": "prod"}
    log("settings: close")


async def get_db(settings: Annotated[dict, Depends(get_settings, scope="app")]):
    db = {"env": settings["env"], "open": True}
    yield db
    db["open"] = False
    log("db: close")


async def get_name() -> str:
    return "real"


async def handler(
    db: Annotated[dict, Depends(get_db)], name: Annotated[str, Depends(get_name)]
) -> tuple:
    return db, name
"""


def run_suite(
    pytester: pytest.Pytester, tests: str, conftest: str = BOTH_BACKENDS
) -> pytest.RunResult:
    """Write *tests* (after the shared graph) and run them in-process."""
    pytester.makeini(INI)
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        graph=GRAPH, test_suite="from graph import *\n" + textwrap.dedent(tests)
    )
    # Without hypothesis' plugin, which each in-process run would import again.
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def log_lines(pytester: pytest.Pytester) -> list[str]:
    return (pytester.path / "log.txt").read_text().splitlines()


def test_entry_point_registers_the_plugin() -> None:
    """Installing anydepends registers the plugin module under ``pytest11``."""
    found = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group="pytest11")
        if ep.name == "anydepends"
    }
    assert found == {"anydepends": "_anydepends_pytest"}


def test_plugin_import_does_not_import_anydepends() -> None:
    """Pytest imports the plugin at startup; that must not import the package."""
    code = (
        "import sys, _anydepends_pytest\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('anydepends', 'anyio', 'trio', 'starlette')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_container_and_scope_fixtures(pytester: pytest.Pytester) -> None:
    """A test gets an entered container and a scope of it; both close after it."""
    result = run_suite(
        pytester,
        """
        async def test_call(anydepends_container, anydepends_scope):
            assert isinstance(anydepends_container, Container)
            assert isinstance(anydepends_scope, Scope)
            assert anydepends_scope.container is anydepends_container
            db, name = await anydepends_scope.call(handler)
            again, _ = await anydepends_scope.call(handler)
            assert again is db and db["open"] and name == "real"
            log("test: done")
        """,
    )
    result.assert_outcomes(passed=2)
    # Per backend: the request-scoped db closes with the scope, then the app-scoped
    # settings with the container, both after the test.
    once = ["settings: open", "test: done", "db: close", "settings: close"]
    assert log_lines(pytester) == once * 2


def test_container_factory_is_configurable_per_module(
    pytester: pytest.Pytester,
) -> None:
    """Overriding ``anydepends_container_factory`` configures one module's tests."""
    pytester.makepyfile(
        test_default="""
        async def test_default(anydepends_container):
            assert anydepends_container.sync_to_thread
        """
    )
    result = run_suite(
        pytester,
        """
        import pytest

        @pytest.fixture
        def anydepends_container_factory():
            return lambda: Container(sync_to_thread=False, context_types=[float])

        async def test_configured(anydepends_container):
            assert not anydepends_container.sync_to_thread
            assert float in anydepends_container.context_types
        """,
    )
    result.assert_outcomes(passed=4)


def test_container_factory_must_build_a_container(pytester: pytest.Pytester) -> None:
    """A factory that returns something else is a clear setup error."""
    result = run_suite(
        pytester,
        """
        import pytest

        @pytest.fixture
        def anydepends_container_factory():
            return dict

        async def test_it(anydepends_container):
            pass
        """,
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*anydepends_container_factory fixture must return a callable that builds*"]
    )


def test_overrides_last_one_test(pytester: pytest.Pytester) -> None:
    """Overrides apply in their test only, even on a container shared by a module.

    The second test sees neither the override nor the app-scoped value created
    under it (dependency-injector#421: overrides leaked out of a session fixture).
    """
    module_backends = BOTH_BACKENDS.replace("(params", "(scope='module', params")
    result = run_suite(
        pytester,
        """
        import pytest

        @pytest.fixture(scope="module")
        async def anydepends_container(anyio_backend):  # one per backend
            async with Container() as container:
                yield container

        async def fake_settings():
            return {"env": "test"}

        async def test_overridden(anydepends_container, anydepends_override):
            spy = anydepends_override(get_name, Spy(get_name))
            anydepends_override({get_settings: fake_settings})
            db, name = await anydepends_container.call(handler)
            assert (db["env"], name, spy.call_count) == ("test", "real", 1)

        async def test_next(anydepends_container):
            assert not anydepends_container.overrides
            db, name = await anydepends_container.call(handler)
            assert (db["env"], name) == ("prod", "real")
        """,
        conftest=module_backends,
    )
    result.assert_outcomes(passed=4)


def test_override_needs_a_replacement(pytester: pytest.Pytester) -> None:
    """``anydepends_override(original)`` alone says what it takes."""
    result = run_suite(
        pytester,
        """
        import pytest

        async def test_it(anydepends_override):
            with pytest.raises(TypeError, match="takes .original, replacement."):
                anydepends_override(get_name)
        """,
    )
    result.assert_outcomes(passed=2)


def test_dependency_fixture(pytester: pytest.Pytester) -> None:
    """``db = dependency_fixture(get_db)``: the instance the test's calls get.

    Set up under the overrides of an autouse fixture, torn down after the test.
    """
    result = run_suite(
        pytester,
        """
        import pytest

        db = dependency_fixture(get_db)
        greeting = dependency_fixture(lambda name: f"hi {name}", name="ada")

        @pytest.fixture(autouse=True)
        def settings_for_tests(anydepends_override):
            anydepends_override(get_settings, lambda: {"env": "test"})

        async def test_shared(anydepends_scope, db, greeting):
            assert db == {"env": "test", "open": True}
            got, _ = await anydepends_scope.call(handler)
            assert got is db
            assert greeting == "hi ada"
            log("test: done")
        """,
    )
    result.assert_outcomes(passed=2)
    assert log_lines(pytester) == ["test: done", "db: close"] * 2
