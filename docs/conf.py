"""Sphinx configuration: Markdown pages (MyST), the furo theme, autodoc (Google style).

Build with ``nox -s docs``, or by hand:
``sphinx-build -n -T -W --keep-going -b html docs docs/_build/html``.
Every ``python`` code block in these pages is run by ``tests/test_docs.py``.
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import Any

from pygments.lexers.python import PythonLexer
from pygments.lexers.special import TextLexer

project = "anydepends"
author = "The anydepends developers"
project_copyright = "2026, The anydepends developers"
release = _version("anydepends")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The API reference: Google-style docstrings, signatures without type clutter (the
# types are in the docstrings and, for type checkers, in the package itself).
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# No intersphinx: these machines reach no documentation sites. References to the
# standard library and to anyio cannot resolve, and are not errors.
nitpick_ignore_regex = [
    ("py:.*", r"(collections\.abc|typing|types|anyio|contextlib|inspect|enum)(\..*)?"),
    ("py:.*", r"anydepends\._\w+\.T"),  # the type variable of Plan[T] and Trace[T]
    ("py:class", r"(Any|T|Callable|Hashable|Mapping|Sequence|Iterable|Iterator)"),
    ("py:class", r"(Exception|BaseException|TypeError|LookupError|RuntimeError)"),
    ("py:class", r"(int|str|float|bool|type|object|dict|list|tuple|frozenset)"),
    ("py:class", r"(MutableMapping|Coroutine|AsyncGenerator|Generator)"),
    ("py:class", r"(KeyError|ValueError|Generic|CallKind\.\w+)"),
    ("py:exc", r"(KeyError|TypeError)"),
]

html_theme = "furo"
html_title = "anydepends"
html_static_path = ["_static"]
html_theme_options: dict[str, Any] = {"navigation_with_keys": True}
pygments_style = "friendly"
pygments_dark_style = "monokai"


# Public names whose class lives in a private module and is not re-exported (yet):
# docstrings say :class:`Trace`, the reference documents anydepends._trace.Trace.
_ALIASES = {"Trace": "anydepends.Trace", "Span": "anydepends.Span"}


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a ``py`` reference to one of :data:`_ALIASES` to its real target."""
    target = _ALIASES.get(node.get("reftarget", ""))
    if node.get("refdomain") != "py" or target is None:
        return None
    domain = env.get_domain("py")
    builder = app.builder
    return domain.resolve_xref(
        env, node["refdoc"], builder, node["reftype"], target, node, contnode
    )


def setup(app: Any) -> None:
    """Register the code-block languages the pages use beyond Pygments' own.

    ``python-skip`` is Python that the docs test does not run (it is shown for
    comparison only); ``output`` is the exact output of the block before it, which
    the docs test checks.
    """
    app.add_lexer("python-skip", PythonLexer)
    app.add_lexer("output", TextLexer)
    app.connect(
        "missing-reference",
        lambda app_, env, node, contnode: _resolve_alias(app_, env, node, contnode),
    )
