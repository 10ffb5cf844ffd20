"""Every code block of the guides runs, page by page, against the real embedded stack.

Each page's runnable blocks go to ``tests/support/run_guide.py`` in a child Python, in a fresh
working directory and with ``GLOBUS_COMPUTE_USER_DIR`` pointing into it (so ``globus-compute-local``
and ``Client(environment="local")`` use a state dir of the test's own). Blocks marked
``% skip: <reason>`` are counted and reported at the end of the session
(``tests/docs/conftest.py``). The format of the markers is ``tests/support/guide_blocks.py``'s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.guide_blocks import (
    Block,
    GuideFormatError,
    guide_pages,
    parse_blocks,
    read_blocks,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNER = Path(__file__).resolve().parents[1] / "support" / "run_guide.py"
#: The longest one page may take: a few LocalCompute starts and a Parsl engine, on a busy box.
PAGE_TIMEOUT_S = 100

PAGES = guide_pages(DOCS)
PAGES_WITH_CODE = [p for p in PAGES if read_blocks(p, DOCS)]


def test_there_are_guides_with_code():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert "guides/quickstart.md" in names
    assert sum(len(read_blocks(p, DOCS)) for p in PAGES) >= 30


@pytest.mark.integration
@pytest.mark.timeout(PAGE_TIMEOUT_S + 20)
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_code_block_of_the_page_runs(page, tmp_path, guide_report):
    blocks = read_blocks(page, DOCS)
    runnable = [b for b in blocks if b.runs]
    guide_report["skipped"] += [f"{b.where}: {b.skip}" for b in blocks if not b.runs]
    if not runnable:
        pytest.skip(f"{page.name} has no block to run ({len(blocks)} marked skip)")
    guide_report["run"] += _run_page(runnable, tmp_path)


@pytest.mark.integration
@pytest.mark.timeout(PAGE_TIMEOUT_S + 20)
def test_the_readme_example_runs(tmp_path):
    """The README's Python example (its bash blocks are the install commands CI runs)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = [b for b in parse_blocks("README.md", text) if b.language == "python"]
    assert examples, "the README shows an example"
    assert len(_run_page(examples, tmp_path)) == len(examples)


def _run_page(runnable: list[Block], tmp_path: Path) -> list[str]:
    """Run blocks with ``run_guide.py``; the blocks that passed, once all of them did."""
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps([dataclasses.asdict(b) for b in runnable]))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(
        os.environ,
        GLOBUS_COMPUTE_USER_DIR=str(tmp_path / "home"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(DOCS.parent), os.environ.get("PYTHONPATH", "")]),
    )
    env.pop("GLOBUS_COMPUTE_ENDPOINT_ID", None)
    try:
        done = subprocess.run(
            [sys.executable, str(RUNNER), str(spec)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        out = out.decode() if isinstance(out, bytes) else out
        pytest.fail(f"{runnable[0].page} did not finish in {PAGE_TIMEOUT_S} s; output:\n{out}")
    ok = [
        line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("BLOCK-OK ")
    ]
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert ok == [b.where for b in runnable]
    return ok


# -- the marker format -------------------------------------------------------------------------


def _page(tmp_path: Path, text: str) -> list:
    path = tmp_path / "page.md"
    path.write_text(text)
    return read_blocks(path, tmp_path)


def test_markers_bind_to_the_block_below_them(tmp_path):
    blocks = _page(
        tmp_path,
        "# T\n\n% skip: needs the hosted service\n```python\nClient()\n```\n\n"
        "```text\noutput\n```\n\n```python\nprint(1)\n```\n\n```text\n1\n```\n\n"
        "% file: ep.yaml\n```yaml\nengine: {}\n```\n"
        "```bash\necho hi\n```\n",
    )
    assert [(b.language, b.skip, b.file, b.line) for b in blocks] == [
        ("python", "needs the hosted service", None, 4),
        ("python", None, None, 12),
        ("yaml", None, "ep.yaml", 21),
        ("bash", None, None, 24),
    ]
    assert blocks[0].code == "Client()\n"
    assert [b.expected for b in blocks] == ["output\n", "1\n", None, None]


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("```js\n1\n```\n", "code block in 'js'"),
        ("```\n1\n```\n", "no language"),
        ("% skip:\n```python\n1\n```\n", "needs a value"),
        ("% skip: why\n\nSome prose.\n```python\n1\n```\n", "right above a code block"),
        ("```yaml\na: 1\n```\n", "a yaml block is run by writing it"),
        ("% background: ready\n```python\n1\n```\n", "only a bash block"),
        ("```python\n1\n", "never closed"),
    ],
)
def test_a_block_the_runner_cannot_honour_is_refused(tmp_path, text, complaint):
    with pytest.raises(GuideFormatError, match=complaint):
        _page(tmp_path, text)
