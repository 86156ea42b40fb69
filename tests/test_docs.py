"""Every ``python`` and ``bash`` block of README.md and docs/*.md runs, so the documentation
cannot drift from the code.

A page's blocks run in order, in a fresh folder of their own, each in a new process (a
``python`` block in ``python -c``, a ``bash`` block in ``bash -euo pipefail``): exactly what a
reader pasting it would get. HTML comments on the lines just above a block steer it:

* ``<!-- no-run: why -->``: not run (set-up, a server, a GPU, an hour of work);
* ``<!-- budget: "A" -> "B"; "C" -> "D" -->``: run with each A replaced by B, to cut its
  steps or queries to a test's size (each A must occur, so a stale budget fails);
* ``<!-- file: PATH -->``: written to PATH in the page's folder instead of run (a module
  that a later block imports).

Usage synopses (with ``[--flag ...]``) are plain fences without a language: not code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = ("python", "bash")
DIRECTIVE = re.compile(r"<!--\s*(no-run|budget|file):\s*(.*?)\s*-->")
SUBSTITUTION = re.compile(r'"((?:[^"\\]|\\.)*)"\s*->\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    directives: dict[str, str]

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"

    def budgeted(self) -> str:
        """The code with the budget's substitutions made; each must apply."""
        code = self.code
        budget = self.directives.get("budget")
        if budget is None:
            return code
        pairs = SUBSTITUTION.findall(budget)
        if not pairs:
            raise ValueError(f'{self.where}: budget without "A" -> "B" pairs: {budget}')
        for old, new in pairs:
            if old not in code:
                raise ValueError(f"{self.where}: budget replaces {old!r}, absent from the block")
            code = code.replace(old, new)
        return code


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, with the directives of the comments just above each."""
    found, lines = [], page.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\S*)", lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        directives, above = {}, index - 1
        while above >= 0 and (match := DIRECTIVE.fullmatch(lines[above].strip())):
            directives[match[1]] = match[2]
            above -= 1
        code = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(page, index + 1, fence[1], code, directives))
        index = end + 1
    return found


def environment(folder: Path) -> dict:
    """The reader's shell after ``source .venv/bin/activate``: this Python first on PATH,
    the repository importable (for ``python -m benchmarks...``); SB3's default log folder
    (``/tmp/SB3-<date>`` for a model given no logger) inside the block's ``folder``."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PATH": path,
        "PYTHONPATH": python_path,
        "OMP_NUM_THREADS": "1",
        "SB3_LOGDIR": str(folder / "sb3-log"),
    }


def run_block(block: Block, folder: Path) -> None:
    if "file" in block.directives:
        target = folder / block.directives["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
        return
    code = block.budgeted()
    command = [sys.executable, "-c", code] if block.language == "python" else None
    command = command or ["bash", "-euo", "pipefail", "-c", code]
    out = subprocess.run(
        command, cwd=folder, env=environment(folder), capture_output=True, text=True, timeout=300
    )
    if out.returncode != 0:
        pytest.fail(f"{block.where} ({block.language}) failed:\n{code}\n{out.stderr[-3000:]}")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_block_of_the_page_runs(page, tmp_path):
    for block in blocks(page):
        if block.language in RUNNABLE and "no-run" not in block.directives:
            run_block(block, tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_blocks_are_code_or_plain_text(page):
    """A block is python, bash or plain (a synopsis, a grammar, an output): a typo such as
    ```Python would silently escape the runner. Directives sit only on runnable blocks."""
    for block in blocks(page):
        assert block.language in ("", *RUNNABLE), f"{block.where}: ```{block.language}"
        if block.directives:
            assert block.language in RUNNABLE, f"{block.where}: a directive on plain text"
        if "no-run" in block.directives:
            assert block.directives["no-run"], f"{block.where}: no-run needs a reason"


def test_the_block_reader_sees_directives_and_budgets(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n<!-- no-run: a server -->\n```bash\ntensorboard --logdir runs\n```\n"
        '<!-- budget: "steps=300" -> "steps=2" -->\n```python\ntrain(steps=300)\n```\n'
        '<!-- budget: "--steps 9" -> "--steps 1" -->\n```bash\necho\n```\n'
    )
    found = blocks(page)
    assert [b.language for b in found] == ["bash", "python", "bash"]
    assert found[0].directives == {"no-run": "a server"}
    assert found[1].budgeted() == "train(steps=2)\n"
    with pytest.raises(ValueError, match="absent from the block"):
        found[2].budgeted()
