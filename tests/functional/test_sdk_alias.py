"""The opt-in ``globus_compute_sdk`` alias (``globus_compute.compat``), in fresh interpreters.

The reference SDK is installed in this environment (the interop tests need it), so each test
also shows the alias wins over it when on, and leaves it alone when off. The variable's tests
rely on ``globus_compute_alias.pth`` being installed with the package (``pip install .`` or
``pip install -e .``; tests/functional/test_alias_packaging.py builds both).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
VAR = "GLOBUS_COMPUTE_SDK_ALIAS"

#: What dependents import from the reference SDK, and the object of ours each must be.
EXPECTED = {
    "globus_compute_sdk.Executor": "globus_compute.executor.Executor",
    "globus_compute_sdk.Client": "globus_compute.client.Client",
    "globus_compute_sdk.sdk.executor.Executor": "globus_compute.executor.Executor",
    "globus_compute_sdk.sdk.executor.ComputeFuture": "globus_compute.executor.ComputeFuture",
    "globus_compute_sdk.sdk.client.Client": "globus_compute.client.Client",
    "globus_compute_sdk.sdk.batch.Batch": "globus_compute.client.batch.Batch",
    "globus_compute_sdk.serialize.ComputeSerializer": "globus_compute.serialize.ComputeSerializer",
    "globus_compute_sdk.serialize.DillCode": "globus_compute.serialize.DillCode",
    "globus_compute_sdk.serialize.concretes.JSONData": "globus_compute.serialize.JSONData",
    "globus_compute_sdk.serialize.facade.ComputeSerializer": (
        "globus_compute.serialize.ComputeSerializer"
    ),
    "globus_compute_sdk.errors.TaskExecutionFailed": "globus_compute.errors.TaskExecutionFailed",
    "globus_compute_sdk.errors.error_types.SerializationError": (
        "globus_compute.errors.SerializationError"
    ),
}

CHECK_EXPECTED = """
import importlib, json, sys

def resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)

expected = json.loads(sys.argv[1])
same = {alias: resolve(alias) is resolve(ours) for alias, ours in expected.items()}
import globus_compute_sdk
print(json.dumps({
    "same": same,
    "version": globus_compute_sdk.__version__,
    "real_sdk_loaded": any(
        getattr(m, "__file__", None) and "site-packages" in m.__file__
        for n, m in sys.modules.items() if n.startswith("globus_compute_sdk")
    ),
}))
"""


def python(code: str, *args: str, alias: str | None = None, flags: tuple[str, ...] = ()):
    env = {k: v for k, v in os.environ.items() if k != VAR}
    if alias is not None:
        env[VAR] = alias
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
        env=env,
    )


def pth_installed() -> bool:
    dirs = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    return any(Path(d, "globus_compute_alias.pth").exists() for d in dirs)


needs_pth = pytest.mark.skipif(
    not pth_installed(),
    reason="globus_compute_alias.pth is not installed: reinstall with pip install -e .",
)


@needs_pth
@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_alias_variable_gives_our_objects_for_the_modules_dependents_import(value):
    proc = python(CHECK_EXPECTED, json.dumps(EXPECTED), alias=value)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["same"] == {alias: True for alias in EXPECTED}
    assert out["version"] == "4.19.0"  # the reference API the alias stands in for
    assert out["real_sdk_loaded"] is False


@pytest.mark.parametrize("value", [None, "", "0"])
def test_without_the_variable_the_reference_sdk_is_imported_unchanged(value):
    proc = python(
        """
        import globus_compute_sdk, globus_compute
        print(globus_compute_sdk.__file__)
        print(globus_compute_sdk.Executor is globus_compute.Executor)
        """,
        alias=value,
    )
    assert proc.returncode == 0, proc.stderr
    path, same = proc.stdout.split()
    assert Path(path).parts[-2:] == ("globus_compute_sdk", "__init__.py")
    assert "site-packages" in path and same == "False"


@needs_pth
def test_alias_refuses_reference_modules_it_has_no_counterpart_for():
    proc = python(
        """
        import sys
        try:
            import globus_compute_sdk.sdk.web_client
        except ModuleNotFoundError as exc:
            print(exc.name, "|", exc)
        try:
            from globus_compute_sdk import ShellFunction
        except ImportError:
            print("no ShellFunction")
        print(sorted(m for m in sys.modules if m.startswith("globus_compute_sdk")))
        """,
        alias="1",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("globus_compute_sdk.sdk.web_client |")
    assert "aliased to globus_compute" in lines[0]
    assert lines[1] == "no ShellFunction"
    assert "globus_compute_sdk.sdk.web_client" not in lines[2]  # not half-loaded from the real one


def test_alias_function_works_in_code_without_the_variable():
    proc = python(CHECK_EXPECTED.replace(
        "import importlib, json, sys",
        "import importlib, json, sys\nimport globus_compute.compat as c\n"
        "c.alias_reference_sdk()\nc.alias_reference_sdk()  # idempotent\nassert c.is_aliased()",
    ), json.dumps(EXPECTED))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["same"] == {alias: True for alias in EXPECTED}


def test_alias_function_after_the_reference_was_imported_raises():
    proc = python(
        """
        import globus_compute_sdk
        from globus_compute.compat import alias_reference_sdk
        try:
            alias_reference_sdk()
        except RuntimeError as exc:
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "already imported" in proc.stdout and "before anything imports it" in proc.stdout


def test_alias_function_works_without_site(tmp_path):
    # python -S skips .pth files (and the variable with them); the call still works.
    proc = python(
        f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, *{site.getsitepackages()!r}]
        import globus_compute.compat
        globus_compute.compat.alias_reference_sdk()
        import globus_compute_sdk, globus_compute
        print(globus_compute_sdk.Executor is globus_compute.Executor)
        """,
        flags=("-S",),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def imported_at_start_up(alias: str | None) -> set[str]:
    proc = python("pass", flags=("-X", "importtime"), alias=alias)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # after the header line


@needs_pth
def test_start_up_imports_nothing_of_ours_without_the_variable():
    ours = {"globus_compute", "globus_compute_sdk"}
    quiet = imported_at_start_up(None)
    assert not {m for m in quiet if m.split(".")[0] in ours}
    on = imported_at_start_up("1")
    assert "globus_compute.compat" in on  # the .pth line did run
    assert not {m for m in on if m.split(".")[0] == "globus_compute_sdk"}  # nothing it need not
