"""Every ``python`` code block in ``docs/*.md`` runs, and shown output is real.

The blocks of one page run in order in one namespace (a page may build on its earlier
blocks), as a script named ``__main__`` would. Conventions in the pages:

- ```` ```python ````: run.
- ```` ```python-skip ````: shown, not run (only for code that cannot run here, like
  the FastAPI side of a comparison). Sphinx highlights it as Python (``conf.py``).
- ```` ```output ````: exactly what the ``python`` block before it prints.
- ```` ```{code-block} python ```` with a ``:caption:`` that is a file name
  (``shop.py``, ``pyproject.toml``): a file of the user's project, written into a
  temporary directory for the page's console commands.
- ```` ```console ````: ``$ command`` lines, each followed by what it prints. The
  commands of anydepends' command line and of pytest (``anydepends ...``,
  ``pytest ...``, or ``python -m`` either) run in that directory and their output
  (stdout and stderr) is compared with the shown one after :func:`normalize`, which
  masks timings; other commands (``pip install``) are only shown.

Async blocks run themselves (``anyio.run(main)``), so each page says which backends
it uses. Run ``python tests/test_docs.py docs/page.md`` to print each block's output.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md"))
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


@dataclass
class Block:
    """One fenced code block of a page."""

    info: str  # the language (first word of the info string)
    code: str
    line: int  # 1-based line of the opening fence


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of *page*, in order (nested fences stay inside)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip().split(" ")[0]
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(
                lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j]
            )
            j += 1
        found.append(Block(info, "\n".join(body) + "\n", i + 1))
        i = j + 1
    return found


def page_file(block: Block) -> tuple[str, str] | None:
    """``(name, text)`` of a ``{code-block}`` whose caption is a file name."""
    if block.info != "{code-block}":
        return None
    lines = block.code.splitlines()
    options: dict[str, str] = {}
    while lines and (option := re.match(r"^:([\w-]+):\s*(.*)$", lines[0])):
        options[option[1]] = option[2]
        lines.pop(0)
    if lines and not lines[0].strip():
        lines.pop(0)
    name = options.get("caption", "")
    if not re.fullmatch(r"[\w.-]+\.(py|toml|ini|cfg|txt)", name):
        return None
    return name, "\n".join(lines) + "\n"


def console(block: Block) -> list[tuple[str, str]]:
    """The ``$ command`` lines of a console block, each with its shown output."""
    sessions: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        elif sessions:
            sessions[-1][1].append(line)
    return [(command, "\n".join(out).strip("\n")) for command, out in sessions]


def command_argv(command: str) -> list[str] | None:
    """How to run *command* here, if it is anydepends' or pytest's; else None."""
    words = shlex.split(command)
    if words[:2] == ["python", "-m"]:
        words = words[2:]
    if not words or words[0] not in ("anydepends", "pytest"):
        return None
    return [sys.executable, "-m", *words]


def normalize(text: str) -> list[str]:
    """*text* with its timings masked: numbers, timeline bars and alignment."""
    text = re.sub(r"\|[^|\n]*\|", "|...|", text)  # bars drawn to scale
    text = re.sub(r"\b(main|task \d+|thread \d+)\b", "task", text)  # which ran it
    text = re.sub(r"\d[\d,.]*", "0", text)  # durations, rates, counts
    text = re.sub(r"[ \t]+", " ", text)  # columns aligned to the numbers
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def run_command(command: str, cwd: Path) -> str | None:
    """Run a console *command* in *cwd*; its output, or None if it is not run."""
    argv = command_argv(command)
    if argv is None:
        return None
    done = subprocess.run(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    return done.stdout


def run_page(page: Path, show: bool = False) -> int:
    """Run *page*'s python blocks, checking ``output`` blocks; return how many ran.

    Console commands run too, in a temporary directory holding the page's files.
    """
    with tempfile.TemporaryDirectory(prefix="docs-") as project:
        return _run_page(page, Path(project), show)


def _run_page(page: Path, project: Path, show: bool) -> int:
    namespace: dict[str, object] = {"__name__": "__main__"}
    last_output: str | None = None
    ran = 0
    for block in blocks(page):
        where = f"{page.name}:{block.line}"
        file = page_file(block)
        if file is not None:
            (project / file[0]).write_text(file[1], encoding="utf-8")
        elif block.info == "console":
            for command, shown in console(block):
                out = run_command(command, project)
                if out is None:
                    continue
                ran += 1
                if show:
                    print(f"--- {where} $ {command}\n{out}", file=sys.__stdout__)
                assert normalize(out) == normalize(shown), (
                    f"{where}: `{command}` prints\n{out}\nnot\n{shown}"
                )
        elif block.info == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = compile(block.code, where, "exec", dont_inherit=True)
                exec(code, namespace)
            last_output = out.getvalue()
            ran += 1
            if show:
                print(f"--- {where}\n{last_output}", end="", file=sys.__stdout__)
        elif block.info == "output":
            assert last_output is not None, f"{where}: output block with no code before"
            assert last_output == block.code, (
                f"{where}: the block before prints\n{last_output}\nnot\n{block.code}"
            )
            last_output = None
    return ran


def test_pages_exist() -> None:
    """The docs this test covers are there (an empty glob would test nothing)."""
    names = {p.name for p in PAGES}
    assert {"index.md", "tutorial.md", "fastapi.md", "concepts.md"} <= names
    assert {"testing.md", "explain.md", "api.md", "examples.md"} <= names
    assert {"cli.md", "starlette.md"} <= names


def test_api_reference_is_complete() -> None:
    """The API page documents every public name, and the test helpers."""
    import anydepends
    import anydepends.testing

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    directive = r"^\.\. auto(?:class|function|exception):: ([\w.]+)$"
    documented = {
        target.rsplit(".", 1)[-1] for target in re.findall(directive, api, re.MULTILINE)
    }
    assert set(anydepends.__all__) <= documented
    for name in anydepends.testing.__all__:
        assert name in api


def test_every_block_is_run_or_marked() -> None:
    """Python code is only ever in run blocks or in explicitly skipped ones."""
    for page in PAGES:
        for block in blocks(page):
            assert block.info not in ("py", "python3", "pycon", "ipython"), (
                f"{page.name}:{block.line}: use ```python (run) or ```python-skip"
            )


def test_skipped_blocks_are_rare() -> None:
    """Skipping is for code that cannot run here, not for convenience."""
    skipped = [
        f"{page.name}:{block.line}"
        for page in PAGES
        for block in blocks(page)
        if block.info == "python-skip"
    ]
    assert len(skipped) <= 3, skipped


def test_output_blocks_follow_code() -> None:
    """Each ``output`` block comes right after a ``python`` block."""
    for page in PAGES:
        previous = ""
        for block in blocks(page):
            if block.info == "output":
                assert previous == "python", f"{page.name}:{block.line}"
            previous = block.info


def test_fence_parser(tmp_path: Path) -> None:
    """Indented fences, longer fences and directive fences are read correctly."""
    text = (
        "text\n"
        "````markdown\n```python\nnot a block\n```\n````\n"
        "- item\n\n  ```python\n  x = 1\n  ```\n"
        "```{literalinclude} ../examples/cli.py\n```\n"
    )
    page = tmp_path / "probe.md"
    page.write_text(text, encoding="utf-8")
    found = blocks(page)
    assert [(b.info, b.code) for b in found] == [
        ("markdown", "```python\nnot a block\n```\n"),
        ("python", "x = 1\n"),
        ("{literalinclude}", "\n"),
    ]


def test_console_blocks(tmp_path: Path) -> None:
    """Captioned files are written; anydepends and pytest commands run and compare.

    Output matches with timings masked; any other difference fails.
    """
    page = tmp_path / "probe.md"
    page.write_text(
        "```{code-block} python\n:caption: probe_mod.py\n\n"
        "async def f(n: int) -> int:\n    return n\n```\n\n"
        "```console\n$ pip install nothing\nnot run\n"
        "$ python -m anydepends trace probe_mod:f -v n=3\n"
        "probe_mod.f: 9.9 ms on asyncio, 1 dependencies, peak 7 at once\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match="trace probe_mod:f -v n=3` prints"):
        run_page(page)
    shown = run_command("anydepends trace probe_mod:f -v n=3", DOCS / ".." / "tests")
    assert shown is not None and "No module named 'probe_mod'" in shown
    real = (
        "probe_mod.f: 0.1 ms on asyncio, 0 dependencies, peak 1 at once\n"
        "critical path: probe_mod.f\n"
        "                 0 ms                        0.1 ms\n"
        "* probe_mod.f  main  |##################|  0.0 ms .. 0.1 ms\n"
        "result: 3\n"
    )
    page.write_text(
        page.read_text().replace(
            "probe_mod.f: 9.9 ms on asyncio, 1 dependencies, peak 7 at once\n", real
        ),
        encoding="utf-8",
    )
    assert run_page(page) == 1
    assert normalize("a  12.5 ms thread 2 |==  |\n\n") == ["a 0 ms task |...|"]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_code_runs(page: Path) -> None:
    """The page's python blocks run in order, and shown output matches."""
    run_page(page)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {run_page(Path(name), show=True)} blocks ran")
