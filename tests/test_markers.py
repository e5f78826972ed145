"""The declaration markers: ``Depends``, ``Security`` and ``SecurityScopes`` (§1, §9).

Also: FastAPI's own markers are accepted wherever ours are, without anydepends ever
importing FastAPI.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from fastapi.security import SecurityScopes as FastAPIScopes

from anydepends import (
    Container,
    DeclarationError,
    Dependency,
    Depends,
    Security,
    SecurityDependency,
    SecurityScopes,
)
from anydepends._markers import as_marker, is_security_scopes_type

from .helpers import async_value, sync_value


def test_depends_defaults() -> None:
    """``Depends(f)`` carries FastAPI's defaults: cached, no lifetime, no limit."""
    marker = Depends(async_value)
    assert isinstance(marker, Dependency)
    assert marker.dependency is async_value
    assert marker.use_cache is True
    assert marker.scope is None
    assert marker.max_concurrency is None
    assert marker.sync_to_thread is None
    assert marker.own_scopes == ()


def test_depends_without_callable() -> None:
    """``Depends()`` has no callable yet: the annotation fills it at compile time."""
    assert Depends().dependency is None


@pytest.mark.parametrize("scope", [None, "function", "request", "app"])
def test_depends_accepts_every_lifetime(scope: str | None) -> None:
    """``scope`` is one of None, "function", "request" and "app"."""
    assert Depends(async_value, scope=scope).scope == scope  # type: ignore[arg-type]


@pytest.mark.parametrize("scope", ["session", "", "App", 1])
def test_depends_rejects_other_lifetimes(scope: object) -> None:
    """Any other ``scope`` is a DeclarationError naming the callable and the fix."""
    with pytest.raises(DeclarationError) as info:
        Depends(async_value, scope=scope)  # type: ignore[arg-type]
    assert "async_value" in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "2"])
def test_depends_rejects_bad_max_concurrency(limit: object) -> None:
    """``max_concurrency`` must be a positive int (not a bool) or None."""
    with pytest.raises(DeclarationError) as info:
        Depends(async_value, max_concurrency=limit)  # type: ignore[arg-type]
    assert info.value.hint


def test_depends_accepts_positive_max_concurrency() -> None:
    """A positive int is a valid ``max_concurrency``."""
    assert Depends(async_value, max_concurrency=3).max_concurrency == 3


def test_markers_are_immutable() -> None:
    """Markers cannot be changed after creation (they are shared and hashed)."""
    marker = Depends(async_value)
    with pytest.raises(AttributeError):
        marker.use_cache = False
    with pytest.raises(AttributeError):
        Security(async_value, scopes=["a"]).scopes = ("b",)


def test_markers_compare_and_hash_by_value() -> None:
    """Equal declarations are equal and hash alike (FastAPI's frozen dataclass)."""
    assert Depends(async_value) == Depends(async_value)
    assert hash(Depends(async_value)) == hash(Depends(async_value))
    assert Depends(async_value) != Depends(sync_value)
    assert Depends(async_value) != Depends(async_value, use_cache=False)
    assert Depends(async_value) != Depends(async_value, scope="app")
    assert Security(async_value, scopes=["a"]) == Security(async_value, scopes=("a",))
    assert Security(async_value, scopes=["a"]) != Security(async_value, scopes=["b"])
    assert Depends(async_value) != Security(async_value)


def test_repr_names_the_callable_and_options() -> None:
    """The repr shows the callable and the non-default options."""
    text = repr(Depends(async_value, use_cache=False, scope="app"))
    assert text.startswith("Depends(")
    assert "async_value" in text
    assert "use_cache=False" in text
    assert "'app'" in text
    assert "scopes=['x']" in repr(Security(async_value, scopes=["x"]))


def test_security_carries_scopes() -> None:
    """``Security(f, scopes=[...])`` is a dependency with its own scopes."""
    marker = Security(async_value, scopes=["read", "write"])
    assert isinstance(marker, SecurityDependency)
    assert isinstance(marker, Dependency)
    assert marker.scopes == ("read", "write")
    assert marker.own_scopes == ("read", "write")
    assert Security(async_value).own_scopes == ()


def test_security_rejects_a_bare_string() -> None:
    """``scopes="read"`` is a mistake (it would be split into letters): an error."""
    with pytest.raises(DeclarationError) as info:
        Security(async_value, scopes="read")  # type: ignore[arg-type]
    assert "['read']" in (info.value.hint or "")


def test_with_dependency_keeps_options_and_limit_token() -> None:
    """Filling in ``Depends()`` from the annotation keeps every option and the
    concurrency token, so the limit is still per declaration object."""
    marker = Security(
        scopes=["a"], use_cache=False, scope="function", max_concurrency=2
    )
    filled = marker.with_dependency(async_value)
    assert filled.dependency is async_value
    assert filled.use_cache is False
    assert filled.scope == "function"
    assert filled.max_concurrency == 2
    assert filled.own_scopes == ("a",)
    assert filled._limit_token is marker._limit_token
    assert Depends(async_value)._limit_token is not Depends(async_value)._limit_token


def test_security_scopes_object() -> None:
    """``SecurityScopes`` has ``.scopes`` (a list) and ``.scope_str`` (space-joined)."""
    scopes = SecurityScopes(["a", "b"])
    assert scopes.scopes == ["a", "b"]
    assert scopes.scope_str == "a b"
    empty = SecurityScopes()
    assert empty.scopes == []
    assert empty.scope_str == ""


def test_as_marker_recognises_ours_only_among_plain_objects() -> None:
    """Our markers are markers; anything else (including None) is not."""
    marker = Depends(async_value)
    assert as_marker(marker) is marker
    for other in (None, 1, "Depends", async_value, object()):
        assert as_marker(other) is None


def test_as_marker_accepts_fastapi_markers() -> None:
    """``fastapi.Depends``/``fastapi.Security`` become our markers, fields copied."""
    import fastapi

    plain = as_marker(fastapi.Depends(async_value, use_cache=False, scope="function"))
    assert type(plain) is Dependency
    assert plain.dependency is async_value
    assert plain.use_cache is False
    assert plain.scope == "function"
    secure = as_marker(fastapi.Security(async_value, scopes=["me"]))
    assert isinstance(secure, SecurityDependency)
    assert secure.own_scopes == ("me",)


def test_reused_fastapi_marker_shares_one_limit_token() -> None:
    """One ``fastapi.Depends`` object reused maps to one concurrency token."""
    import fastapi

    theirs = fastapi.Depends(async_value, max_concurrency=1)
    first, second = as_marker(theirs), as_marker(theirs)
    assert first is not None and second is not None
    assert first._limit_token is second._limit_token
    other = as_marker(fastapi.Depends(async_value, max_concurrency=1))
    assert other is not None
    assert other._limit_token is not first._limit_token


def test_security_scopes_types() -> None:
    """Ours, subclasses of ours and FastAPI's ``SecurityScopes`` are injected."""

    class Mine(SecurityScopes):
        pass

    assert is_security_scopes_type(SecurityScopes)
    assert is_security_scopes_type(Mine)
    assert is_security_scopes_type(FastAPIScopes)
    assert not is_security_scopes_type(list)
    assert not is_security_scopes_type("SecurityScopes")
    assert not is_security_scopes_type(SecurityScopes())


def test_fastapi_is_never_imported_by_anydepends() -> None:
    """Using anydepends end to end (markers, scopes, a call) never imports FastAPI."""
    code = textwrap.dedent(
        """
        import sys
        import anyio
        from anydepends import Container, Depends, Security, SecurityScopes
        from anydepends._markers import as_marker, is_security_scopes_type

        def leaf(ss: SecurityScopes) -> str:
            return ss.scope_str

        async def root(x=Security(leaf, scopes=["a"]), y=Depends(leaf)) -> str:
            return x + "|" + y

        async def main() -> None:
            async with Container() as c:
                assert await c.call(root) == "a|"

        anyio.run(main)
        assert as_marker(object()) is None
        assert not is_security_scopes_type(int)
        assert "fastapi" not in sys.modules, sorted(sys.modules)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- end to end ------------------------------------------------------------------------


async def test_fastapi_markers_run_unchanged() -> None:
    """Dependables written for FastAPI (``fastapi.Depends``/``fastapi.Security``, and
    FastAPI's ``SecurityScopes`` class) resolve in a Container like ours."""
    import fastapi

    def scoped(security_scopes: FastAPIScopes) -> str:
        return security_scopes.scope_str

    seen: list[type] = []

    def check_type(security_scopes: FastAPIScopes) -> None:
        seen.append(type(security_scopes))

    async def user(
        s: str = fastapi.Security(scoped, scopes=["me"]),
        c: None = fastapi.Depends(check_type),
    ) -> str:
        return s

    async def root(u: str = fastapi.Security(user, scopes=["items"])) -> str:
        return u

    async with Container() as container:
        assert await container.call(root) == "items me"
    assert seen == [FastAPIScopes]


async def test_security_scopes_are_injected_end_to_end() -> None:
    """A ``SecurityScopes`` parameter receives the visible scopes: the parent's, then
    each new own scope; the root's own gets none."""

    def leaf(security_scopes: SecurityScopes) -> list[str]:
        return security_scopes.scopes

    async def mid(x: list[str] = Security(leaf, scopes=["y", "x"])) -> list[str]:
        return x

    async def root(
        ss: SecurityScopes,
        m: list[str] = Security(mid, scopes=["x", "z"]),
        direct: list[str] = Depends(leaf),
    ) -> tuple[list[str], list[str], list[str]]:
        return ss.scopes, m, direct

    async with Container() as container:
        assert await container.call(root) == ([], ["x", "z", "y"], [])
