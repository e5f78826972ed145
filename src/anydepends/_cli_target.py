"""What the command line works on: ``MODULE:FUNC`` targets, ``-v`` values, containers.

Everything here turns bad input into a :class:`CliError` whose message is the whole
explanation (what is wrong and how to fix it), so the command line can print it as
one paragraph instead of a traceback.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from ._container import Container

__all__ = ["CliError", "describe", "load_container", "load_target", "parse_values"]


class CliError(Exception):
    """Bad input on the command line; the message says what to fix."""


def describe(exc: BaseException) -> str:
    """``Type: message``, with where it was raised (the innermost user frame)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<frozen ")
    ]
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno}, in {last.name})"
    return text


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _split(spec: str, option: str) -> tuple[str, str]:
    module, colon, attr = spec.partition(":")
    if not colon or not module or not attr:
        example = "myapp.handlers:checkout" if option == "target" else "myapp:container"
        msg = (
            f"{option} {spec!r} is not MODULE:NAME; write the module, a colon and the"
            f" name in it, e.g. {example} (or path/to/file.py:NAME)"
        )
        raise CliError(msg)
    return module, attr


def _import(module: str) -> ModuleType:
    """Import *module* by name (from the current directory first) or by file path."""
    # `python -m` puts the current directory first on sys.path; the console script
    # does not, and the user's module is in their project, not in site-packages.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module.endswith(".py") or "/" in module or os.sep in module:
            return _import_file(Path(module))
        return importlib.import_module(module)
    except CliError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module + ".").startswith(exc.name + "."):
            msg = (
                f"cannot import module {module!r}: {exc}. Modules are found in the"
                " current directory and the installed packages: run the command from"
                " your project's root directory, or install your project"
            )
            raise CliError(msg) from None
        msg = f"cannot import module {module!r}: {describe(exc)}"
        raise CliError(msg) from None
    except ImportError as exc:
        msg = f"cannot import module {module!r}: {describe(exc)}"
        raise CliError(msg) from None
    except SyntaxError as exc:
        msg = f"cannot import module {module!r}: {type(exc).__name__}: {exc}"
        raise CliError(msg) from None
    except Exception as exc:
        msg = f"importing module {module!r} raised {describe(exc)}"
        raise CliError(msg) from None


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        msg = f"cannot import {str(path)!r}: there is no such file"
        raise CliError(msg)
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - not a .py file
        msg = f"cannot import {str(path)!r}: not a Python source file"
        raise CliError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _resolve(spec: str, option: str) -> object:
    module_name, attr = _split(spec, option)
    obj: object = _import(module_name)
    parts = attr.split(".")
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("__")]
            close = difflib.get_close_matches(part, names, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            owner = ".".join(parts[:i])
            where = f"{module_name}:{owner}" if owner else f"module {module_name!r}"
            msg = f"{where} has no attribute {part!r}{guess}"
            raise CliError(msg) from None
    return obj


def load_target(spec: str) -> Any:
    """The callable named by ``MODULE:FUNC`` (``FUNC`` may be dotted)."""
    obj = _resolve(spec, "target")
    if not callable(obj):
        msg = (
            f"{spec} is {_a(type(obj).__name__)}, not a callable: name the function (or"
            " class) whose dependencies you want to explain, trace or bench"
        )
        raise CliError(msg)
    return obj


def load_container(spec: str | None) -> Container:
    """The container named by ``--container MODULE:ATTR``, or a default one.

    *ATTR* is a :class:`Container` (not entered yet) or a function that returns
    one, such as the application's own container factory.
    """
    if spec is None:
        return Container()
    obj = _resolve(spec, "--container")
    if not isinstance(obj, Container) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            msg = f"--container {spec}: calling it raised {describe(exc)}"
            raise CliError(msg) from None
    if not isinstance(obj, Container):
        msg = (
            f"--container {spec} is {_a(type(obj).__name__)}, not an anydepends"
            " Container (nor a function without arguments that returns one)"
        )
        raise CliError(msg)
    return obj


def parse_values(items: list[str]) -> dict[str, Any]:
    """``-v NAME=VALUE`` options: the value is JSON if it parses, else the string."""
    values: dict[str, Any] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            msg = (
                f"-v {item!r} is not NAME=VALUE; write the parameter name, '=' and the"
                " value, e.g. -v user_id=7 or -v token=abc (JSON if it parses as JSON,"
                " otherwise the text as a string)"
            )
            raise CliError(msg)
        if name in values:
            msg = f"-v {name}=... is given twice; give each value once"
            raise CliError(msg)
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values
