"""Unit tests of what a worker does with one task (globus_compute.endpoint.execution)."""

from __future__ import annotations

import platform

import dill
import pytest

from globus_compute.endpoint.execution import RESULT_SIZE_LIMIT, TaskRunner
from globus_compute.errors import SerdeError
from globus_compute.serialize import ComputeSerializer

SER = ComputeSerializer()
EP_ID = "55555555-5555-5555-5555-555555555555"


def make_task(fn, *args, result_serializers=None, **kwargs) -> dict:
    buffer = SER.pack_buffers([SER.serialize(fn)]) + SER.pack_buffers(
        [SER.serialize(args), SER.serialize(kwargs)]
    )
    return {
        "task_id": "44444444-4444-4444-4444-444444444444",
        "function_id": "f",
        "task_buffer": buffer,
        "result_serializers": result_serializers,
        "resource_specification": None,
        "user_endpoint_config": None,
        "attempt": 1,
    }


def double(x):
    return x * 2


def explode():
    raise ValueError("boom")


def big_result():
    return "x" * (RESULT_SIZE_LIMIT + 10)


def test_success_returns_serialized_result_and_details():
    result = TaskRunner(EP_ID).run(make_task(double, 3))
    assert result["status"] == "success"
    assert SER.deserialize(result["result"]) == 6
    assert float(result["completion_t"]) > 0 and isinstance(result["completion_t"], str)
    details = result["details"]
    assert details["endpoint_id"] == EP_ID
    assert details["python_version"] == platform.python_version()
    assert details["dill_version"] == dill.__version__
    assert details["globus_compute_sdk_version"] == "4.19.0"
    assert details["os"] == platform.system()
    transitions = details["task_transitions"]
    assert transitions["execution-start"] <= transitions["execution-end"]


def test_kwargs_reach_the_function():
    result = TaskRunner(EP_ID).run(make_task(lambda a, b=0: a - b, 10, b=4))
    assert SER.deserialize(result["result"]) == 6


def test_exception_becomes_traceback_text_with_user_frames_only():
    result = TaskRunner(EP_ID).run(make_task(explode))
    assert result["status"] == "failed"
    text = result["exception"]
    assert text.startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in text
    assert "in explode" in text
    assert "endpoint/execution.py" not in text


def test_result_over_limit_fails_with_max_result_size_exceeded():
    result = TaskRunner(EP_ID).run(make_task(big_result))
    assert result["status"] == "failed"
    assert result["exception"].startswith("MaxResultSizeExceeded(")
    assert f", {RESULT_SIZE_LIMIT})" in result["exception"]


def test_result_serializers_json_reference_path():
    path = "globus_compute_sdk.serialize.concretes.JSONData"
    result = TaskRunner(EP_ID).run(make_task(double, 3, result_serializers=[path]))
    assert result["result"] == "11\n6"


@pytest.mark.parametrize(
    "buffer",
    ["", "not a packed buffer", "3\nabc", "5\n00\nxx" + "1\nx" + "1\ny"],
)
def test_malformed_buffer_fails_only_its_task_with_clear_message(buffer):
    task = make_task(double, 1)
    task["task_buffer"] = buffer
    result = TaskRunner(EP_ID).run(task)
    assert result["status"] == "failed"
    assert "could not be unpacked and deserialized" in result["exception"]
    assert task["task_id"] in result["exception"]


def test_function_is_deserialized_once_per_worker(monkeypatch):
    runner = TaskRunner(EP_ID)
    calls = []
    original = runner.serializer.deserialize

    def counting(payload, **kwargs):
        calls.append(payload[:2])
        return original(payload, **kwargs)

    monkeypatch.setattr(runner.serializer, "deserialize", counting)
    for i in range(5):
        assert SER.deserialize(runner.run(make_task(double, i))["result"]) == 2 * i
    assert calls.count("01") == 1


# -- the endpoint's deserializer allow-list (issue 15) ------------------------------------------

JSON_ARGS_ONLY = ("globus_compute_sdk.*Code", "globus_compute_sdk.serialize.JSONData")
#: Set by ``Crafted`` when a worker unpickles it.
CRAFTED_RAN: list[str] = []


class Crafted:
    """An "argument" whose unpickling runs code on the endpoint."""

    def __reduce__(self):
        return (CRAFTED_RAN.append, ("pwned",))


def _task_with_buffers(function_buffer: str, args_buffer: str, kwargs_buffer: str) -> dict:
    task = make_task(double, 0)
    task["task_buffer"] = SER.pack_buffers([function_buffer]) + SER.pack_buffers(
        [args_buffer, kwargs_buffer]
    )
    return task


def test_json_only_arguments_run_and_pickled_arguments_fail_without_being_loaded():
    """Regression (issue 15): nothing restricted an endpoint's deserializers, so a crafted
    argument pickle to an allowed function ran arbitrary code on the endpoint."""
    runner = TaskRunner(EP_ID, allowed_serializers=JSON_ARGS_ONLY)
    json_ser = ComputeSerializer(strategy_data="globus_compute_sdk.serialize.JSONData")
    ok = _task_with_buffers(SER.serialize(double), json_ser.serialize([21]), json_ser.serialize({}))
    assert SER.deserialize(runner.run(ok)["result"]) == 42
    CRAFTED_RAN.clear()
    for args_buffer in (
        SER.serialize((Crafted(),)),  # dill data, 00
        "01\n" + SER.serialize((Crafted(),))[3:],  # the same pickle under a code header
    ):
        result = runner.run(_task_with_buffers(SER.serialize(double), args_buffer, "11\n{}"))
        assert result["status"] == "failed"
        assert "could not be started" in result["exception"]
        assert "DeserializationError" in result["exception"]
    assert CRAFTED_RAN == []


def test_arguments_under_a_code_header_are_refused_even_without_an_allow_list():
    CRAFTED_RAN.clear()
    crafted = "01\n" + SER.serialize((Crafted(),))[3:]
    result = TaskRunner(EP_ID).run(_task_with_buffers(SER.serialize(double), crafted, "11\n{}"))
    assert result["status"] == "failed"
    assert (
        "arguments buffer is serialized with DillCode, which is not a data serializer"
        in (result["exception"])
    )
    assert CRAFTED_RAN == []


def test_a_bad_allow_list_fails_when_the_runner_is_built():
    with pytest.raises(SerdeError):
        TaskRunner(EP_ID, allowed_serializers=["globus_compute_sdk.serialize.JSONData"])


def test_a_user_endpoint_config_fails_the_task_before_anything_is_loaded():
    task = make_task(explode)
    task["user_endpoint_config"] = {"account": "abc123"}
    task["task_buffer"] = "not a task buffer"  # never read: the refusal comes first
    result = TaskRunner(EP_ID).run(task)
    assert result["status"] == "failed"
    assert result["exception"].startswith(f"ValueError: Task {task['task_id']} carries a ")
    assert "user_endpoint_config" in result["exception"] and "single-user" in result["exception"]


def test_an_empty_user_endpoint_config_is_no_config():
    task = make_task(double, 4)
    task["user_endpoint_config"] = {}
    assert SER.deserialize(TaskRunner(EP_ID).run(task)["result"]) == 8
