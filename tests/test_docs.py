"""Every ``python`` code block in ``docs/*.md`` runs, and shown output is real.

The blocks of one page run in order in one namespace (a page may build on its earlier
blocks), as a script named ``__main__`` would. Conventions in the pages:

- ```` ```python ````: run.
- ```` ```python-skip ````: shown, not run (only for code that cannot run here, like
  the FastAPI side of a comparison). Sphinx highlights it as Python (``conf.py``).
- ```` ```output ````: exactly what the ``python`` block before it prints.

Async blocks run themselves (``anyio.run(main)``), so each page says which backends
it uses. Run ``python tests/test_docs.py docs/page.md`` to print each block's output.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
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


def run_page(page: Path, show: bool = False) -> int:
    """Run *page*'s python blocks, checking ``output`` blocks; return how many ran."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    last_output: str | None = None
    ran = 0
    for block in blocks(page):
        where = f"{page.name}:{block.line}"
        if block.info == "python":
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


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_code_runs(page: Path) -> None:
    """The page's python blocks run in order, and shown output matches."""
    run_page(page)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {run_page(Path(name), show=True)} blocks ran")
