"""The docs suites report how many guide code blocks they ran, at the end of the session."""

from __future__ import annotations

from typing import Any

import pytest

_RAN: dict[str, list[str]] = {"run": [], "skipped": []}


@pytest.fixture
def guide_report() -> dict[str, list[str]]:
    """Where ``test_guide_blocks`` records each block it ran or skipped (with the reason)."""
    return _RAN


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (_RAN["run"] or _RAN["skipped"]):
        return
    terminalreporter.write_sep("-", "guide code blocks")
    terminalreporter.write_line(
        f"{len(_RAN['run'])} code blocks of the guides ran against a real LocalCompute; "
        f"{len(_RAN['skipped'])} are marked skip:"
    )
    for line in _RAN["skipped"]:
        terminalreporter.write_line(f"  {line}")
