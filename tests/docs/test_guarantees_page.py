"""The guarantees page ties every claim to a test that exists.

``docs/guides/guarantees.md`` names tests as `` `test_file.py::test_name` `` and, after such a
reference, `` `::test_other` `` for another test of the same file; a bare `` `test_file.py` ``
names a whole file. Each must exist under ``tests/``, and every claim (a bold-led bullet) outside
"Known limits" must name at least one. A renamed or deleted test fails here, so the page cannot
keep promising what nothing checks any more.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "guides" / "guarantees.md"

_SPAN = re.compile(r"`([^`]+)`")
_FILE_REF = re.compile(r"^(test_\w+\.py)(?:::(test_\w+))?$")
_MEMBER_REF = re.compile(r"^::(test_\w+)$")


def _test_files() -> dict[str, list[Path]]:
    """Test files by name (``test_endpoint_agent.py`` is both a unit and an integration file)."""
    files: dict[str, list[Path]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        files.setdefault(path.name, []).append(path)
    return files


def _defines(paths: list[Path], test_name: str) -> bool:
    pattern = re.compile(rf"^\s*(async )?def {test_name}\(", re.M)
    return any(pattern.search(path.read_text(encoding="utf-8")) for path in paths)


def _references(text: str) -> list[tuple[str, str | None]]:
    """(file name, test name or None) for every test the text names, in order.

    Raises:
        AssertionError: A ``::test_name`` before any file reference of the text.
    """
    refs: list[tuple[str, str | None]] = []
    last_file: str | None = None
    for span in _SPAN.findall(text.replace("\n", " ")):
        span = span.strip()
        if match := _FILE_REF.match(span):
            last_file = match[1]
            refs.append((match[1], match[2]))
        elif (match := _MEMBER_REF.match(span)) and last_file is not None:
            refs.append((last_file, match[1]))
        elif _MEMBER_REF.match(span):
            raise AssertionError(f"{span} follows no test file reference")
    return refs


def _claims(text: str, known_limits: bool = False) -> list[str]:
    """Each bold-led bullet with its continuation lines (and sub-bullets); the Known limits
    bullet only if ``known_limits``."""
    claims: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if re.match(r"^\s*- \*\*", line):
            if current:
                claims.append("\n".join(current))
            current = [line]
        elif current is not None and (line.startswith("  ") or not line.strip()) and line.strip():
            current.append(line)
        elif current is not None and not line.startswith("  "):
            claims.append("\n".join(current))
            current = None
    if current:
        claims.append("\n".join(current))
    return [c for c in claims if known_limits or "**Known limits.**" not in c]


def test_every_test_the_page_names_exists():
    text = PAGE.read_text(encoding="utf-8")
    files = _test_files()
    # Each claim is read on its own, so a `::test` always means a file named in the same claim.
    refs = [ref for claim in _claims(text, known_limits=True) for ref in _references(claim)]
    assert len(refs) > 100, "the page names its tests"
    missing = []
    for file_name, test_name in refs:
        paths = files.get(file_name)
        if paths is None:
            missing.append(file_name)
        elif test_name is not None and not _defines(paths, test_name):
            missing.append(f"{file_name}::{test_name}")
    assert not missing, f"the guarantees page names tests that do not exist: {missing}"


_LEGEND = re.compile(r"`([A-Z])` = `(tests/\w+)/`")
_PREFIXED_FILE = re.compile(r"\b([A-Z]) `(test_\w+\.py)")


def test_each_prefix_names_the_directory_of_its_files():
    """``F `test_x.py``` must be a file of the directory the legend gives ``F``."""
    text = re.sub(r"\s+", " ", PAGE.read_text(encoding="utf-8"))
    legend = dict(_LEGEND.findall(text))
    assert {"S", "F", "I", "U"} <= legend.keys(), legend
    refs = _PREFIXED_FILE.findall(text)
    assert len(refs) > 50
    misplaced = sorted(
        {
            f"{letter} {name}"
            for letter, name in refs
            if letter in legend and not (ROOT / legend[letter] / name).is_file()
        }
    )
    assert not misplaced, f"files not in the directory their prefix names: {misplaced}"


def test_every_claim_names_a_test():
    claims = _claims(PAGE.read_text(encoding="utf-8"))
    assert len(claims) > 20
    untied = [c.splitlines()[0].strip() for c in claims if not _references(c)]
    assert not untied, f"claims without a test: {untied}"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(S `test_a.py::test_x`, `::test_y`; U `test_b.py`)",
         [("test_a.py", "test_x"), ("test_a.py", "test_y"), ("test_b.py", None)]),
        ("`--rate-limit` and `Client()` are not tests", []),
    ],
)  # fmt: skip
def test_references_are_read_as_written(text, expected):
    assert _references(text) == expected
