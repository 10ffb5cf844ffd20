"""Results the SDK cannot read back, on the real stack: each fails its own future, nothing else.

Regression (issue 13 item 4): an undeserializable result resolved its future to ``None`` with
the task entry left "success", and a result whose unpickling raised ``SystemExit`` killed the
result poller, failing every pending future of the executor. The endpoint's workers serialize
these results without trouble; only reading them here fails.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from globus_compute.errors import DeserializationError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


class ExitsWhenUnpickled:
    """Unpickling this calls ``sys.exit(3)``, as a hostile or buggy ``__reduce__`` may."""

    def __reduce__(self):
        return (sys.exit, (3,))


class InterruptsWhenUnpickled:
    def __reduce__(self):
        return (_raise_keyboard_interrupt, ())


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


def exiting_result():
    return ExitsWhenUnpickled()


def interrupting_result():
    return InterruptsWhenUnpickled()


def unimportable_result():
    # A class the SDK side cannot import: dill refers to it by module and name.
    cls = type("OnlyOnTheEndpoint", (), {"__module__": "module_only_on_the_endpoint"})
    sys.modules["module_only_on_the_endpoint"] = type(sys)("module_only_on_the_endpoint")
    sys.modules["module_only_on_the_endpoint"].OnlyOnTheEndpoint = cls
    return cls()


def slow_square(x, seconds):
    time.sleep(seconds)
    return x * x


@pytest.fixture(scope="module")
def local():
    from globus_compute.local import LocalCompute

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    try:
        with LocalCompute(workers=2) as stack:
            yield stack
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.mark.parametrize(
    ("task", "cause"),
    [
        (exiting_result, "SystemExit"),
        (interrupting_result, "KeyboardInterrupt"),
        (unimportable_result, "module_only_on_the_endpoint"),
    ],
)
def test_unreadable_result_fails_only_its_own_future_and_the_poller_lives(local, task, cause):
    with local.executor() as ex:
        bystander = ex.submit(slow_square, 7, 1.0)  # pending while the bad result arrives
        bad = ex.submit(task)
        with pytest.raises(DeserializationError) as info:
            bad.result(timeout=60)
        assert bad.task_id in str(info.value) and cause in str(info.value)
        assert bystander.result(timeout=60) == 49
        assert ex.submit(slow_square, 3, 0).result(timeout=60) == 9  # still working


def test_unreadable_result_through_the_client_is_a_failed_entry(local):
    with local.executor() as ex:
        fut = ex.submit(exiting_result)
        with pytest.raises(DeserializationError):
            fut.result(timeout=60)
    entries = local.client().get_batch_result([fut.task_id])
    assert entries[fut.task_id]["status"] == "failed"
    assert isinstance(entries[fut.task_id]["exception"], DeserializationError)
