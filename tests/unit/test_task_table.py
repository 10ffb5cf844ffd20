"""TaskTable: parsing task documents, in particular results that cannot be read back."""

from __future__ import annotations

import threading

import pytest

from globus_compute.client.task_table import TaskTable
from globus_compute.errors import DeserializationError

TID = "aaaaaaaa-0000-0000-0000-000000000001"


class Raising:
    """A deserializer whose unpickling raises ``exc`` (as a hostile ``__reduce__`` would)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def deserialize(self, payload: str) -> object:
        raise self.exc


def success_doc(result: str = "00\nx") -> dict:
    return {"task_id": TID, "status": "success", "result": result, "completion_t": "1"}


@pytest.mark.parametrize("exc", [ValueError("bad pickle"), SystemExit(3), GeneratorExit()])
def test_unreadable_result_is_a_failed_outcome_with_deserialization_error_naming_the_task(exc):
    """Regression (issue 13 item 4): the entry said "success", and a SystemExit from
    unpickling escaped, killing the Executor's poller with every future it owned."""
    table = TaskTable(Raising(exc))
    outcome = table.update(TID, success_doc())
    assert not outcome.pending and not outcome.succeeded
    assert outcome.status == "failed"
    assert isinstance(outcome.exception, DeserializationError)
    assert TID in str(outcome.exception) and type(exc).__name__ in str(outcome.exception)
    assert outcome.exception.__cause__ is exc
    assert outcome.as_entry()["status"] == "failed" and "result" not in outcome.as_entry()
    assert table.get(TID) is None  # not cached: a retry may succeed


def test_keyboard_interrupt_from_unpickling_is_data_off_the_main_thread():
    table = TaskTable(Raising(KeyboardInterrupt()))
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(table.update(TID, success_doc())))
    worker.start()
    worker.join(10)
    assert isinstance(outcomes[0].exception, DeserializationError)


def test_keyboard_interrupt_on_the_main_thread_propagates():
    # It may be the user's Ctrl-C: never swallowed there.
    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(KeyboardInterrupt):
        TaskTable(Raising(KeyboardInterrupt())).update(TID, success_doc())
