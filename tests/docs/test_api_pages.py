"""Every public name of ``globus_compute`` has an entry in the API reference (``docs/api``).

The pages document names with autodoc directives (``.. autoclass:: globus_compute.Executor``)
or, for ``__version__``, ``.. py:data::``; the ``errors`` module is documented whole with
``automodule`` and must list every name of ``errors.__all__``. This reads the pages, so it needs
no build; ``test_docs_build.py`` checks the built inventory too.
"""

from __future__ import annotations

import re
from pathlib import Path

import globus_compute
from globus_compute import errors

API = Path(__file__).resolve().parents[2] / "docs" / "api"

_DIRECTIVE = re.compile(
    r"^\.\. (?:auto(?:class|function|data|exception)|py:data|py:class)::\s+(\S+)", re.M
)
_AUTOMODULE = re.compile(r"^\.\. automodule::\s+(\S+)\n((?:   .*\n)*)", re.M)


def _documented() -> tuple[set[str], dict[str, str]]:
    names: set[str] = set()
    modules: dict[str, str] = {}
    for page in API.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        names.update(_DIRECTIVE.findall(text))
        modules.update(_AUTOMODULE.findall(text))
    return names, modules


def test_every_public_name_has_an_api_entry():
    names, modules = _documented()
    missing = [
        name
        for name in globus_compute.__all__
        if f"globus_compute.{name}" not in names and f"globus_compute.{name}" not in modules
    ]
    assert not missing, f"public names without an entry in docs/api: {missing}"


def test_the_errors_page_documents_every_error():
    _, modules = _documented()
    options = modules.get("globus_compute.errors")
    assert options is not None, "docs/api documents globus_compute.errors with automodule"
    members = re.search(r":members:(.*)", options)
    assert members is not None, "automodule globus_compute.errors needs :members:"
    listed = members[1].strip()
    # A bare ``:members:`` documents the module's __all__; a list must name each error.
    if listed:
        named = {m.strip() for m in listed.split(",")}
        assert set(errors.__all__) <= named, sorted(set(errors.__all__) - named)


def test_a_missing_name_is_noticed(monkeypatch):
    monkeypatch.setattr(globus_compute, "__all__", [*globus_compute.__all__, "NotDocumented"])
    names, modules = _documented()
    assert "globus_compute.NotDocumented" not in names | set(modules)
