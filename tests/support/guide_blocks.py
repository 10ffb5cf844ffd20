"""The code blocks of the documentation guides, as the suite runs them.

A guide is MyST Markdown. Its fenced blocks in ``python``, ``bash`` and ``yaml`` are *code
blocks*, and every one of them is run by ``tests/docs/test_guide_blocks.py`` unless it is
marked; ``text`` blocks show output and are not run. A marker is a MyST comment line (``%``)
right above the fence, and several may stack:

``% skip: <reason>``
    The block is shown, counted and not run; the reason is required (``needs the hosted
    service``, ``needs a Slurm cluster``, ...).
``% file: <name>``
    The block is written to ``<name>`` in the page's working directory before the blocks
    after it run (an endpoint config file a later block loads, say).
``% background: <text>``
    A ``bash`` block is started and left running; the next block runs once its output shows
    ``<text>``. It is stopped (its whole process group) when the page ends.

A ``text`` block right below a ``python`` block (blank lines between are fine) is that block's
expected output: what the block prints must be exactly that text.

The blocks of one page run in order in one ``__main__`` namespace, as a notebook's cells do,
so a page may start a ``LocalCompute`` in its first block and stop it in its last
(``run_guide.py``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

#: Languages whose blocks are code (run unless marked) and the one that shows output.
CODE_LANGUAGES = frozenset({"python", "bash", "yaml"})
OUTPUT_LANGUAGES = frozenset({"text"})

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^%\s*(?P<key>skip|file|background):\s*(?P<value>.*?)\s*$")


class GuideFormatError(ValueError):
    """A guide's code block or marker that the runner cannot honour."""


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a guide.

    Attributes:
        page: The guide's path, relative to the docs dir.
        line: The line of the opening fence (1-based).
        language: ``python``, ``bash`` or ``yaml``.
        code: The block's text.
        skip: Why the block is not run, or None.
        file: The file the block is written to, or None.
        background: The output that says a background block is ready, or None.
        expected: What a python block must print (the ``text`` block below it), or None.
    """

    page: str
    line: int
    language: str
    code: str
    skip: str | None = None
    file: str | None = None
    background: str | None = None
    expected: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.skip is None


def guide_pages(docs_dir: Path) -> list[Path]:
    """The guides: every Markdown page of the docs except the API reference's."""
    return sorted(
        p for p in docs_dir.rglob("*.md") if "_build" not in p.parts and "api" not in p.parts
    )


def read_blocks(path: Path, docs_dir: Path) -> list[Block]:
    """The code blocks of one guide, with their markers.

    Raises:
        GuideFormatError: A code block in another language, a marker not followed by a code
            block, a ``skip`` without a reason, a ``yaml`` block neither written nor skipped,
            or ``background`` on a block that is not ``bash``.
    """
    return parse_blocks(path.relative_to(docs_dir).as_posix(), path.read_text(encoding="utf-8"))


def parse_blocks(page: str, text: str) -> list[Block]:
    """The code blocks of Markdown ``text``, named after ``page`` (see :func:`read_blocks`)."""
    return _blocks(page, text.splitlines())


def _blocks(page: str, lines: list[str]) -> list[Block]:
    blocks: list[Block] = []
    last_close = -2  # the closing fence line of the last code block
    markers: dict[str, str] = {}
    marker_line = 0
    index = 0
    while index < len(lines):
        text = lines[index]
        marker = _MARKER.match(text)
        if marker:
            key, value = marker["key"], marker["value"]
            if not value:
                raise GuideFormatError(f"{page}:{index + 1}: '% {key}:' needs a value")
            markers[key] = value
            marker_line = index + 1
            index += 1
            continue
        fence = _FENCE.match(text)
        if not fence:
            if markers and text.strip():
                raise GuideFormatError(
                    f"{page}:{marker_line}: a marker must stand right above a code block"
                )
            index += 1
            continue
        info = fence["info"].strip()
        close = _closing_line(lines, index, fence["fence"])
        body = "\n".join(lines[index + 1 : close]) + "\n"
        language = info.split()[0] if info else ""
        if language.startswith("{") or language in OUTPUT_LANGUAGES:
            if markers:
                raise GuideFormatError(f"{page}:{index + 1}: markers on a block that is not code")
            follows = not any(line.strip() for line in lines[last_close + 1 : index])
            if language in OUTPUT_LANGUAGES and follows and blocks[-1:]:
                if blocks[-1].language == "python":
                    blocks[-1] = dataclasses.replace(blocks[-1], expected=body)
        elif language not in CODE_LANGUAGES:
            raise GuideFormatError(
                f"{page}:{index + 1}: code block in {language or 'no language'!r}; use one of "
                f"{sorted(CODE_LANGUAGES | OUTPUT_LANGUAGES)}"
            )
        else:
            blocks.append(_block(page, index + 1, language, body, markers))
            last_close = close
        markers = {}
        index = close + 1
    return blocks


def _closing_line(lines: list[str], start: int, fence: str) -> int:
    for index in range(start + 1, len(lines)):
        if lines[index].strip() == fence:
            return index
    raise GuideFormatError(f"line {start + 1}: code block never closed")


def _block(page: str, line: int, language: str, code: str, markers: dict[str, str]) -> Block:
    block = Block(
        page,
        line,
        language,
        code,
        skip=markers.get("skip"),
        file=markers.get("file"),
        background=markers.get("background"),
    )
    if block.background is not None and language != "bash":
        raise GuideFormatError(f"{block.where}: only a bash block can run in the background")
    if language == "yaml" and block.file is None and block.skip is None:
        raise GuideFormatError(
            f"{block.where}: a yaml block is run by writing it to a file ('% file: NAME') "
            "that a later block uses; else mark it '% skip: <reason>'"
        )
    return block
