"""Every recorded reference vector (tests/data/serialization.json) against our serializer."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from typing import Any

import pytest

from globus_compute.client.batch import Batch, pack_task_payload
from globus_compute.errors import SerializationError
from globus_compute.serialize import (
    ComputeSerializer,
    PureSourceDill,
    PureSourceTextInspect,
    pack_buffers,
    resolve_strategy,
    unpack_buffers,
)
from globus_compute.version import REFERENCE_SDK_VERSION

VECTORS = json.loads(
    (pathlib.Path(__file__).parent.parent / "data" / "serialization.json").read_text("utf-8")
)
SERDE = ComputeSerializer()


def _vid(vector: dict[str, Any]) -> str:
    return f"{vector.get('expr') or vector.get('function')}-{vector.get('strategy')}"


DATA_OK = [v for v in VECTORS["data"] if v["serialized"] is not None]
DATA_FAIL = [v for v in VECTORS["data"] if v["serialized"] is None]
CODE_OK = [v for v in VECTORS["code"] if v["serialized"] is not None]


def _json_normalized(value: Any) -> Any:
    """What a value looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value))


def _json_wins(serialized: str) -> bool:
    """True if reading this payload goes through JSON (directly, or first in a combo)."""
    if serialized.startswith("13\n"):
        serialized = unpack_buffers(serialized[3:])[0]
    return serialized.startswith("11\n")


@pytest.mark.parametrize("vector", DATA_OK, ids=_vid)
def test_data_vector_serializes_identically(vector):
    serde = ComputeSerializer(strategy_data=f"globus_compute.serialize.{vector['strategy']}")
    assert serde.serialize(eval(vector["expr"])) == vector["serialized"]


@pytest.mark.parametrize("vector", DATA_OK, ids=_vid)
def test_data_vector_deserializes_to_value(vector):
    expected = eval(vector["expr"])
    got = SERDE.deserialize(vector["serialized"])
    if _json_wins(vector["serialized"]):
        expected = _json_normalized(expected)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("vector", DATA_FAIL, ids=_vid)
def test_data_vector_recorded_as_unserializable_fails_here_too(vector):
    serde = ComputeSerializer(strategy_data=f"globus_compute.serialize.{vector['strategy']}")
    with pytest.raises(
        SerializationError, match=f"Data serialization strategy {vector['strategy']}"
    ):
        serde.serialize(eval(vector["expr"]))


@pytest.mark.parametrize("vector", VECTORS["code"], ids=_vid)
def test_code_vector_deserializes_to_working_function(vector, tmp_path):
    payload = vector["serialized"]
    if payload is None:
        # Nothing was recorded; our own serialization of the source must still round-trip.
        fn = _function_from_file(tmp_path, vector["function"], vector["source"])
        serde = ComputeSerializer(strategy_code=f"globus_compute.serialize.{vector['strategy']}")
        payload = serde.serialize(fn)
    fn2 = SERDE.deserialize(payload)
    assert payload.startswith(vector["identifier"])
    for args, kwargs, result in vector["calls"]:
        if vector["function"] == "platform_func":
            import platform

            result = platform.system()
        assert fn2(*args, **kwargs) == result


def _function_from_file(tmp_path: pathlib.Path, name: str, source: str) -> Any:
    path = tmp_path / f"vec_{name}.py"
    path.write_text(source, "utf-8")
    spec = importlib.util.spec_from_file_location(f"vec_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


SOURCE_VECTORS = [
    v
    for v in CODE_OK
    if v["strategy"]
    in ("PureSourceTextInspect", "PureSourceDill", "DillCodeSource", "DillCodeTextInspect")
]


@pytest.mark.parametrize("vector", SOURCE_VECTORS, ids=_vid)
def test_source_vector_serializes_identically(vector, tmp_path):
    fn = _function_from_file(tmp_path, vector["function"], vector["source"])
    strategy = resolve_strategy(f"globus_compute.serialize.{vector['strategy']}", for_code=True)
    assert strategy.serialize(fn) == vector["serialized"]


@pytest.mark.parametrize(
    "vector", [v for v in CODE_OK if v["strategy"] == "AllCodeStrategies"], ids=_vid
)
def test_all_code_strategies_vector_source_parts_identical(vector, tmp_path):
    fn = _function_from_file(tmp_path, vector["function"], vector["source"])
    # The DillCode part embeds the defining file's path, so only the source parts can match.
    recorded = unpack_buffers(vector["serialized"][3:])
    assert recorded[0] == PureSourceTextInspect().serialize(fn)
    assert recorded[1] == PureSourceDill().serialize(fn)
    assert recorded[2].startswith("01\n")


@pytest.mark.parametrize("vector", VECTORS["packed"], ids=lambda v: repr(v["packed"][:20]))
def test_packed_vector(vector):
    assert pack_buffers(vector["buffers"]) == vector["packed"]
    assert unpack_buffers(vector["packed"]) == vector["buffers"]


@pytest.mark.parametrize("vector", VECTORS["task_payloads"], ids=lambda v: v["args"])
def test_task_payload_vector(vector):
    payload = pack_task_payload(SERDE, eval(vector["args"]), eval(vector["kwargs"]))
    assert payload == vector["payload"]
    args, kwargs = (SERDE.deserialize(b) for b in unpack_buffers(payload))
    assert args == eval(vector["args"])
    assert kwargs == eval(vector["kwargs"])


@pytest.mark.parametrize("vector", VECTORS["results"], ids=lambda v: v["expr"])
def test_result_vector(vector):
    value = eval(vector["expr"])
    assert SERDE.deserialize(vector["serialized"]) == value
    assert ComputeSerializer.serialize_from_list(value, []) == vector["serialized"]


def test_batch_prepare_vector():
    recorded = VECTORS["batch_prepare"]
    batch = Batch(
        recorded["task_group_id"],
        recorded["resource_specification"],
        recorded["user_endpoint_config"],
    )
    for function_id, args, kwargs in recorded["calls"]:
        batch.add(function_id, eval(args), eval(kwargs))
    prepared = batch.prepare()
    assert prepared == recorded["prepared_without_user_runtime"]
    assert list(prepared) == list(recorded["prepared_without_user_runtime"])


def test_vectors_were_recorded_with_our_pinned_versions():
    import dill

    assert VECTORS["generator"]["dill"] == dill.__version__
    assert VECTORS["generator"]["globus_compute_sdk"] == REFERENCE_SDK_VERSION
