"""``pip install .`` and ``pip install -e .`` both ship the alias's ``.pth`` file (setup.py).

Each install goes into a scratch venv (``--no-deps``: the package's own files are what is
tested); the dependencies, and the reference SDK the alias must win over, come from this test
environment's site-packages on ``PYTHONPATH``, which is not a site directory, so no ``.pth``
of this environment runs there.
"""

from __future__ import annotations

import os
import site
import subprocess
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_install_ships_the_alias_pth_and_the_variable_works(tmp_path, editable):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = str(bin_dir / "python")
    install = [python, "-m", "pip", "install", "-q", "--no-deps", *(["-e"] if editable else [])]
    proc = subprocess.run(
        [*install, str(ROOT)], capture_output=True, text=True, timeout=500, cwd=tmp_path
    )
    if proc.returncode and "satisfies the requirement setuptools" in proc.stderr:
        pytest.skip("no package index to fetch the build backend from")
    assert proc.returncode == 0, proc.stderr
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (Path(purelib) / "globus_compute_alias.pth").is_file()
    if editable:
        # The scratch install itself points at this checkout (the import below may resolve
        # through this environment's finder of the same name when it is editable too).
        hooks = [p.read_text() for p in Path(purelib).glob("__editable__*globus_compute*")]
        assert any(str(ROOT) in text for text in hooks), hooks

    deps = os.pathsep.join(site.getsitepackages())
    check = (
        "import globus_compute_sdk, globus_compute; "
        "print(globus_compute_sdk.Executor is globus_compute.Executor, globus_compute.__file__)"
    )
    for alias, same in (("1", "True"), ("", "False")):
        env = {**os.environ, "PYTHONPATH": deps, "GLOBUS_COMPUTE_SDK_ALIAS": alias}
        out = subprocess.run(
            [python, "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        result, where = out.stdout.split()
        assert result == same
        expected_home = ROOT if editable else Path(purelib)
        assert Path(where).is_relative_to(expected_home)
