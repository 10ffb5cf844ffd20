"""Batch: task payloads, the prepare() document, and user_runtime."""

from __future__ import annotations

import sys
import uuid

import globus_sdk
import pytest

from globus_compute.client.batch import Batch, pack_task_payload, user_runtime
from globus_compute.errors import SerializationError
from globus_compute.serialize import ComputeSerializer, JSONData, unpack_buffers
from globus_compute.version import REFERENCE_SDK_VERSION

FN = "22222222-2222-2222-2222-222222222222"
TG = "11111111-1111-1111-1111-111111111111"


def test_pack_task_payload_is_two_packed_buffers():
    serde = ComputeSerializer()
    payload = pack_task_payload(serde, [1, 2], {"y": "a"})
    assert (
        payload
        == "32\n00\ngASVCQAAAAAAAABdlChLAUsCZS4=\n36\n00\ngASVDAAAAAAAAAB9lIwBeZSMAWGUcy4=\n"
    )
    args, kwargs = (serde.deserialize(b) for b in unpack_buffers(payload))
    assert args == [1, 2] and type(args) is list  # a list stays a list, as in the reference
    assert kwargs == {"y": "a"}


def test_pack_task_payload_defaults():
    assert pack_task_payload(ComputeSerializer(), None, None) == (
        "12\n00\ngAQpLg==\n12\n00\ngAR9lC4=\n"
    )


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (3, None, "args: expected `tuple`, got: int"),
        ("ab", None, "args: expected `tuple`, got: str"),
        ((), [("a", 1)], "kwargs: expected dict, got: list"),
        ((), {1: "a"}, "kwargs: expected kwargs with `str` keys, got: int"),
    ],
)
def test_pack_task_payload_type_errors(args, kwargs, message):
    with pytest.raises(TypeError) as info:
        pack_task_payload(ComputeSerializer(), args, kwargs)
    assert str(info.value) == message


def test_add_rejects_bad_function_id_without_adding():
    batch = Batch()
    with pytest.raises(ValueError, match="badly formed hexadecimal UUID string"):
        batch.add("not-a-uuid", (1,))
    assert len(batch) == 0


def test_add_unserializable_argument_raises_and_adds_nothing():
    batch = Batch()
    with pytest.raises(SerializationError):
        batch.add(FN, ((x for x in ()),))
    assert len(batch) == 0


def test_len_counts_every_task_across_functions():
    batch = Batch()
    batch.add(FN, (1,))
    batch.add(uuid.UUID(FN), (2,))
    batch.add_payload(
        "33333333-3333-3333-3333-333333333333", "12\n00\ngAQpLg==\n12\n00\ngAR9lC4=\n"
    )
    assert len(batch) == 3
    assert list(batch.prepare()["tasks"]) == [FN, "33333333-3333-3333-3333-333333333333"]


def test_add_payload_type_checks():
    with pytest.raises(TypeError, match="payload: expected `str`, got: bytes"):
        Batch().add_payload(FN, b"12\n")
    with pytest.raises(ValueError):
        Batch().add_payload("nope", "")


def test_empty_batch_cannot_be_prepared():
    with pytest.raises(ValueError, match="No tasks specified for batch run"):
        Batch(TG).prepare()


def test_prepare_minimal_has_only_required_keys():
    batch = Batch()
    batch.add(FN.upper())
    assert batch.prepare() == {
        "create_queue": False,
        "tasks": {FN: ["12\n00\ngAQpLg==\n12\n00\ngAR9lC4=\n"]},
    }


def test_prepare_full_key_order_and_values():
    runtime = user_runtime()
    batch = Batch(
        task_group_id=uuid.UUID(TG),
        resource_specification={"num_nodes": 2},
        user_endpoint_config={"worker_init": "module load x"},
        request_queue=True,
        user_runtime=runtime,
        result_serializers=[JSONData(), "globus_compute_sdk.serialize.DillDataBase64"],
    )
    batch.add(FN, (3,))
    prepared = batch.prepare()
    assert list(prepared) == [
        "create_queue",
        "tasks",
        "task_group_id",
        "resource_specification",
        "user_endpoint_config",
        "user_runtime",
        "result_serializers",
    ]
    assert prepared["create_queue"] is True
    assert prepared["task_group_id"] == TG
    assert prepared["user_runtime"] == runtime
    assert prepared["result_serializers"] == [
        "globus_compute_sdk.serialize.concretes.JSONData",
        "globus_compute_sdk.serialize.DillDataBase64",
    ]


def test_falsy_optional_fields_are_left_out():
    batch = Batch(task_group_id="", resource_specification={}, user_endpoint_config={})
    batch.add(FN)
    assert set(batch.prepare()) == {"create_queue", "tasks"}


def test_task_group_id_setter_validates():
    batch = Batch()
    batch.task_group_id = TG
    assert batch.task_group_id == uuid.UUID(TG)
    with pytest.raises(ValueError):
        batch.task_group_id = "123"


def test_custom_serializer_is_used():
    batch = Batch(serializer=ComputeSerializer(strategy_data=JSONData))
    batch.add(FN, (1,), {"a": 2})
    assert batch.prepare()["tasks"][FN] == ['6\n11\n[1]11\n11\n{"a": 2}']


def test_user_runtime_fields():
    runtime = user_runtime()
    assert list(runtime) == [
        "globus_compute_sdk_version",
        "globus_sdk_version",
        "python_version",
        "python",
        "platform",
    ]
    assert runtime["globus_compute_sdk_version"] == REFERENCE_SDK_VERSION
    assert runtime["globus_sdk_version"] == globus_sdk.__version__
    assert runtime["python_version"] == sys.version
    assert runtime["python"]["version_tuple"] == tuple(sys.version_info[:3])
    assert runtime["python"]["version_info"] == tuple(sys.version_info)
    assert list(runtime["python"]) == [
        "version",
        "version_description",
        "version_tuple",
        "version_info",
        "implementation",
        "compiler",
    ]
    assert list(runtime["platform"]) == [
        "architecture",
        "machine",
        "node",
        "platform",
        "processor",
        "release",
    ]


def test_user_runtime_returns_independent_copies():
    first = user_runtime()
    first["python"]["version"] = "changed"
    assert user_runtime()["python"]["version"] != "changed"
