"""The documentation site builds with warnings as errors, as ``tox -e docs`` builds it.

Marked ``docs`` (deselect with ``-m "not docs"``); it needs the ``docs`` extra, which
``.ci/run`` installs, and takes about ten seconds. It also checks the built inventory: every
name of ``globus_compute.__all__`` is a documented object, and no page is left out of the
table of contents.
"""

from __future__ import annotations

import posixpath
import subprocess
import sys
from pathlib import Path

import pytest

import globus_compute

DOCS = Path(__file__).resolve().parents[2] / "docs"
BUILD_TIMEOUT_S = 50

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("myst_parser", reason="the docs extra is not installed")
pytest.importorskip("furo", reason="the docs extra is not installed")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs-html")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.mark.docs
@pytest.mark.timeout(BUILD_TIMEOUT_S + 20)
def test_docs_build_without_warnings(built):
    for page in [
        "index.html",
        "guides/quickstart.html",
        "guides/guarantees.html",
        "api/index.html",
    ]:
        assert (built / page).is_file(), page


@pytest.mark.docs
@pytest.mark.timeout(BUILD_TIMEOUT_S + 20)
def test_every_public_name_is_a_documented_object(built):
    from sphinx.util.inventory import InventoryFile

    with open(built / "objects.inv", "rb") as fh:
        inventory = InventoryFile.load(fh, "", posixpath.join)
    documented = {name for objects in inventory.values() for name in objects}
    missing = [n for n in globus_compute.__all__ if f"globus_compute.{n}" not in documented]
    assert not missing, f"public names the built API reference lacks: {missing}"
    error_names = [f"globus_compute.errors.{n}" for n in globus_compute.errors.__all__]
    assert not [n for n in error_names if n not in documented]
