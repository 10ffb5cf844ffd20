"""Our serializer and Batch against the reference globus-compute-sdk in the same process.

Endpoints and the hosted service run the reference code, so every string we write must read
back with it (and the other way round), and wherever the output is deterministic it must be the
same string.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

sdk_serialize = pytest.importorskip("globus_compute_sdk.serialize")
sdk_batch = pytest.importorskip("globus_compute_sdk.sdk.batch")
sdk_errors = pytest.importorskip("globus_compute_sdk.errors")

import globus_compute.serialize as ours  # noqa: E402
from globus_compute.client.batch import Batch, user_runtime  # noqa: E402
from globus_compute.errors import SerializationError  # noqa: E402

pytestmark = pytest.mark.interop

DATA_STRATEGIES = ["DillDataBase64", "JSONData", "AllDataStrategies"]
CODE_STRATEGIES = [
    "DillCode",
    "PureSourceTextInspect",
    "PureSourceDill",
    "AllCodeStrategies",
    "DillCodeSource",
    "DillCodeTextInspect",
    "CombinedCode",
]

VALUES: list[Any] = [
    0,
    -(2**70),
    7.25,
    "plain",
    "non-ASCII: héllo ✓ 日本語 🎉",
    b"\x00\xff",
    None,
    True,
    (1, ("two", [3.0, {"four": None}])),
    {"k": ["v", {"nested": ("t", 1)}], "ü": "ß"},
    {1, 2, 3},
    1 + 2j,
    ["shared"] * 3,
]


def _pair(name: str, *, code: bool) -> tuple[Any, Any]:
    kw = "strategy_code" if code else "strategy_data"
    return (
        ours.ComputeSerializer(**{kw: f"globus_compute.serialize.{name}"}),
        sdk_serialize.ComputeSerializer(**{kw: getattr(sdk_serialize, name)()}),
    )


def _same_or_json_equal(value: Any, got: Any) -> bool:
    """Equal, or equal after the JSON round trip (tuples read back as lists)."""
    try:
        return got == value or got == json.loads(json.dumps(value))
    except TypeError:
        return got == value


@pytest.mark.parametrize("strategy", DATA_STRATEGIES)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_data_same_string_and_readable_both_ways(strategy, value):
    mine, theirs = _pair(strategy, code=False)
    try:
        expected = theirs.serialize(value)
    except sdk_errors.SerializationError:
        with pytest.raises(SerializationError, match=f"Data serialization strategy {strategy}"):
            mine.serialize(value)
        return
    payload = mine.serialize(value)
    assert payload == expected
    assert _same_or_json_equal(value, theirs.deserialize(payload))
    assert _same_or_json_equal(value, mine.deserialize(expected))


def double_it(x, *, times=2):
    """A function defined here, so source strategies can find its text."""
    return x * times


@pytest.mark.parametrize("strategy", CODE_STRATEGIES)
def test_code_same_string_and_callable_both_ways(strategy):
    mine, theirs = _pair(strategy, code=True)
    payload = mine.serialize(double_it)
    # Same file, same process: even dill's bytecode payload is identical.
    assert payload == theirs.serialize(double_it)
    assert theirs.deserialize(payload)(3, times=4) == 12
    assert mine.deserialize(theirs.serialize(double_it))("ab") == "abab"


def test_lambda_with_all_code_strategies_both_ways():
    square = lambda x: x**2  # noqa: E731
    mine, theirs = _pair("AllCodeStrategies", code=True)
    assert theirs.deserialize(mine.serialize(square))(7) == 49
    assert mine.deserialize(theirs.serialize(square))(8) == 64


def test_closure_with_default_code_strategy_both_ways():
    offset = 10

    def add_offset(x):
        return x + offset

    mine, theirs = ours.ComputeSerializer(), sdk_serialize.ComputeSerializer()
    assert mine.serialize(add_offset) == theirs.serialize(add_offset)
    assert theirs.deserialize(mine.serialize(add_offset))(1) == 11


@pytest.mark.parametrize(
    "code, data", [("DillCode", "DillDataBase64"), ("AllCodeStrategies", "JSONData")]
)
def test_task_buffers_both_ways(code, data):
    mine = ours.ComputeSerializer(
        f"globus_compute.serialize.{code}", f"globus_compute.serialize.{data}"
    )
    theirs = sdk_serialize.ComputeSerializer(
        getattr(sdk_serialize, code), getattr(sdk_serialize, data)
    )
    args, kwargs = (["héllo", 2],), {"times": 3}
    packed = mine.pack_buffers(
        [mine.serialize(double_it), mine.serialize(args), mine.serialize(kwargs)]
    )
    fn, a, k = theirs.unpack_and_deserialize(packed)
    assert fn(*a, **k) == ["héllo", 2] * 3
    packed_ref = theirs.pack_buffers(
        [theirs.serialize(double_it), theirs.serialize(args), theirs.serialize(kwargs)]
    )
    assert packed == packed_ref
    fn, a, k = mine.unpack_and_deserialize(packed_ref)
    assert fn(*a, **k) == ["héllo", 2] * 3


def test_identifiers_match_the_reference():
    for name in DATA_STRATEGIES + CODE_STRATEGIES:
        assert getattr(ours, name).identifier == getattr(sdk_serialize, name).identifier
    assert ours.PickleCode.identifier == sdk_serialize.concretes.PickleCode.identifier


def test_reference_strategy_objects_are_accepted():
    serde = ours.ComputeSerializer(sdk_serialize.PureSourceDill(), sdk_serialize.JSONData)
    assert type(serde.code_serializer) is ours.PureSourceDill
    assert type(serde.data_serializer) is ours.JSONData


def test_reference_import_paths_resolve_in_the_reference():
    for name in DATA_STRATEGIES + CODE_STRATEGIES:
        path = ours.reference_import_path(getattr(ours, name))
        validated = sdk_serialize.facade.validate_strategylike(path)
        assert validated.type_ is getattr(sdk_serialize, name)


def test_reference_allowlist_wildcards_read_our_output():
    theirs = sdk_serialize.ComputeSerializer(
        allowed_deserializer_types=["globus_compute_sdk.*Code", "globus_compute_sdk.*Data"]
    )
    assert theirs.deserialize(ours.ComputeSerializer().serialize({"a": (1,)})) == {"a": (1,)}


def test_serialize_from_list_matches_reference():
    strategies = [
        "globus_compute_sdk.serialize.JSONData",
        "globus_compute_sdk.serialize.DillDataBase64",
    ]
    for value in ({1, 2}, [1, "x"], double_it):
        assert ours.ComputeSerializer.serialize_from_list(
            value, strategies + ["globus_compute_sdk.serialize.DillCode"]
        ) == sdk_serialize.ComputeSerializer.serialize_from_list(
            value, strategies + ["globus_compute_sdk.serialize.DillCode"]
        )


def _adds(batch: Any) -> None:
    batch.add("22222222-2222-2222-2222-222222222222", (3,), {"y": "a"})
    batch.add(uuid.UUID("22222222-2222-2222-2222-222222222222"))
    batch.add("33333333-3333-3333-3333-333333333333", [1, "ü", {"n": (2.5, None)}])
    batch.add("33333333-3333-3333-3333-333333333333", (), {"big": 2**80, "raw": b"\x01"})


@pytest.mark.parametrize("request_queue", [False, True])
def test_batch_prepare_equals_reference(request_queue):
    settings = dict(
        resource_specification={"num_nodes": 2, "ranks_per_node": 2},
        user_endpoint_config={"worker_init": "module load x"},
        request_queue=request_queue,
        result_serializers=[
            "globus_compute_sdk.serialize.JSONData",
            "globus_compute_sdk.serialize.DillDataBase64",
        ],
    )
    mine = Batch("11111111-1111-1111-1111-111111111111", **settings)
    theirs = sdk_batch.Batch("11111111-1111-1111-1111-111111111111", **settings)
    _adds(mine)
    _adds(theirs)
    assert mine.prepare() == theirs.prepare()
    assert list(mine.prepare()) == list(theirs.prepare())


def test_batch_prepare_without_task_group_equals_reference():
    mine, theirs = Batch(None), sdk_batch.Batch(None)
    _adds(mine)
    _adds(theirs)
    assert mine.prepare() == theirs.prepare()


def test_user_runtime_equals_reference():
    assert user_runtime() == dataclasses.asdict(sdk_batch.create_user_runtime())
