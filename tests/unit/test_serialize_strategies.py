"""Single strategies, the C-pickle fast path, and ComputeSerializer behaviour on bad input."""

from __future__ import annotations

import base64
import collections
import pickle
import socket
from typing import Any

import dill
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from globus_compute.errors import DeserializationError, SerdeError, SerializationError
from globus_compute.serialize import (
    AllCodeStrategies,
    AllDataStrategies,
    CombinedCode,
    ComputeSerializer,
    DillCode,
    DillDataBase64,
    JSONData,
    PickleCode,
    PureSourceDill,
    PureSourceTextInspect,
    SerializationStrategy,
    pack_buffers,
    unpack_buffers,
)
from globus_compute.serialize.data import (
    b64decode_mime,
    b64encode_mime,
    dill_loads,
    is_plain_data,
)


def _reference_00(value: Any) -> str:
    """What the reference DillDataBase64 writes: dill's own pickler, MIME base64."""
    return "00\n" + base64.encodebytes(dill.dumps(value)).decode()


def triple(x):
    return x * 3


# -- the fast path is byte-identical -----------------------------------------------------------

plain_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
plain_values = st.recursive(
    plain_scalars,
    lambda children: (
        st.lists(children)
        | st.lists(children).map(tuple)
        # A "__name__" key is not plain data (dill pickles namespaces specially): see below.
        | st.dictionaries(st.text().filter(lambda k: k != "__name__") | st.integers(), children)
        | st.sets(st.integers() | st.text())
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_c_pickle_equals_dill_for_plain_data(value):
    assert is_plain_data(value)
    assert pickle.dumps(value, protocol=4) == dill.dumps(value)
    assert DillDataBase64().serialize(value) == _reference_00(value)


def test_dict_with_a_name_key_is_not_plain_data_and_still_matches_the_reference():
    # Regression: hypothesis generated {"__name__": None}, which the fast path rightly refuses.
    value = {"__name__": None}
    assert not is_plain_data(value)
    assert DillDataBase64().serialize(value) == _reference_00(value)


@pytest.mark.parametrize(
    "value",
    [
        "x" * 200_000,  # larger than a pickle frame: written outside the frame by both picklers
        b"\x00" * 300_000,
        [b"y" * 70_000, "z" * 70_000, list(range(5_000))],
        float("nan"),
        -0.0,
        "\ud800 lone surrogate",
        {"k": {1, 2, 3}, (1, "a"): (None, True)},
    ],
    ids=["big-str", "big-bytes", "big-mixed", "nan", "neg-zero", "surrogate", "mixed-keys"],
)
def test_fast_path_identical_on_edge_values(value):
    assert is_plain_data(value)
    assert DillDataBase64().serialize(value) == _reference_00(value)


shared = [1, 2]
cyclic: list[Any] = [1]
cyclic.append(cyclic)
inner: list[Any] = []
recursive_tuple = (inner,)
inner.append(recursive_tuple)
self_dict: dict[str, Any] = {}
self_dict["me"] = self_dict


@pytest.mark.parametrize(
    "value",
    [(shared, shared, [shared]), cyclic, [recursive_tuple, inner], self_dict, [(), (), ((),)]],
    ids=["shared", "cyclic-list", "recursive-tuple", "cyclic-dict", "empty-tuples"],
)
def test_fast_path_identical_with_shared_and_cyclic_references(value):
    assert is_plain_data(value)
    assert DillDataBase64().serialize(value) == _reference_00(value)


@pytest.mark.parametrize(
    "value",
    [
        1 + 2j,
        frozenset({"x"}),
        collections.OrderedDict(a=1),
        True.__class__.__mro__,  # a tuple of types
        {"__name__": "looks like a module namespace"},
        [1, 2, triple],
    ],
    ids=["complex", "frozenset", "ordereddict", "types", "namespace", "fn"],
)
def test_values_outside_fast_path_still_match_dill(value):
    assert not is_plain_data(value)
    assert DillDataBase64().serialize(value) == _reference_00(value)


def test_int_and_str_subclasses_are_not_plain():
    class MyInt(int):
        pass

    assert not is_plain_data(MyInt(3))
    assert not is_plain_data((1, MyInt(3)))


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 114, 115, 100_000])
def test_mime_base64_matches_encodebytes(size):
    raw = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert b64encode_mime(raw) == base64.encodebytes(raw).decode()
    assert b64decode_mime(b64encode_mime(raw)) == raw


# -- reading 00 ---------------------------------------------------------------------------------


def test_deserialize_uses_dill_where_pickle_cannot():
    # dill's unpickler alone knows __builtin__.NoneType; plain pickle raises and we fall back.
    raw = b"\x80\x04c__builtin__\nNoneType\n."
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(raw)
    payload = "00\n" + base64.encodebytes(raw).decode()
    assert DillDataBase64().deserialize(payload) is type(None)


def test_deserialize_dill_only_types():
    serde = ComputeSerializer()
    assert serde.deserialize(serde.serialize(1 + 2j)) == 1 + 2j
    assert dill_loads(dill.dumps(collections.OrderedDict(a=1))) == {"a": 1}


# -- code strategies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy",
    [DillCode, PureSourceTextInspect, PureSourceDill, AllCodeStrategies, CombinedCode],
)
def test_code_strategies_round_trip_module_function(strategy):
    serde = ComputeSerializer(strategy_code=strategy)
    payload = serde.serialize(triple)
    assert payload.startswith(strategy.identifier)
    assert serde.deserialize(payload)(4) == 12


def test_source_payload_is_name_colon_source():
    assert PureSourceTextInspect().serialize(triple) == (
        "st\ntriple:def triple(x):\n    return x * 3\n"
    )


def test_source_split_uses_first_colon():
    fn = PureSourceTextInspect().deserialize("st\nf:def f():\n    return {'a': 'b:c'}\n")
    assert fn() == {"a": "b:c"}


def test_all_code_strategies_lambda_skips_nothing_it_can_do():
    square = lambda x: x * x  # noqa: E731
    payload = ComputeSerializer(strategy_code=AllCodeStrategies).serialize(square)
    headers = [b[:3] for b in unpack_buffers(payload[3:])]
    assert "01\n" in headers
    assert ComputeSerializer().deserialize(payload)(5) == 25


def test_combined_code_variation_selects_one_variant():
    payload = CombinedCode().serialize(triple)
    assert CombinedCode().deserialize(payload, variation=2)(2) == 6  # the DillCode variant


def test_pickle_code_is_read_only():
    import os.path

    payload = "02\n" + base64.encodebytes(pickle.dumps(os.path.join)).decode()
    assert ComputeSerializer().deserialize(payload) is os.path.join
    with pytest.raises(SerializationError, match="no longer supported"):
        PickleCode().serialize(triple)
    with pytest.raises(SerdeError, match="PickleCode is not a known serialization strategy"):
        ComputeSerializer(strategy_code=PickleCode)


# -- errors ---------------------------------------------------------------------------------------


def test_unknown_header_names_it():
    with pytest.raises(DeserializationError) as info:
        ComputeSerializer().deserialize("zz\nwhatever")
    assert info.value.reason == "Invalid header: zz\n in data payload"


def test_strategy_rejects_foreign_header():
    with pytest.raises(DeserializationError, match="Buffer does not start with identifier:11"):
        JSONData().deserialize("00\ngARLAy4=\n")


def _generator():
    yield 1


@pytest.mark.parametrize("value", [_generator(), socket.socket()], ids=["generator", "socket"])
def test_unpicklable_data_raises_serialization_error_naming_strategy(value):
    try:
        with pytest.raises(SerializationError) as info:
            ComputeSerializer().serialize(value)
    finally:
        if isinstance(value, socket.socket):
            value.close()
    assert info.value.reason == "Data serialization strategy DillDataBase64 failed"
    assert isinstance(info.value.__cause__, TypeError)
    assert isinstance(info.value, ValueError)


def test_code_strategy_failure_is_chained():
    with pytest.raises(SerializationError) as info:
        ComputeSerializer(strategy_code=PureSourceTextInspect).serialize(len)
    assert info.value.reason == "Code serialization strategy PureSourceTextInspect failed"
    assert info.value.__cause__ is not None


def test_all_data_strategies_with_nothing_working():
    with pytest.raises(SerializationError, match="strategy AllDataStrategies failed") as info:
        ComputeSerializer(strategy_data=AllDataStrategies).serialize(_generator())
    cause = str(info.value.__cause__)
    assert "* JSONData: Object of type generator" in cause
    assert "* DillDataBase64: cannot pickle 'generator' object" in cause


def test_unpack_and_deserialize_needs_three_buffers():
    serde = ComputeSerializer()
    fn, args, kwargs = serde.unpack_and_deserialize(
        pack_buffers([serde.serialize(triple), serde.serialize((2,)), serde.serialize({})])
    )
    assert fn(*args, **kwargs) == 6
    with pytest.raises(DeserializationError, match="expects 3 buffers, got 2"):
        serde.unpack_and_deserialize(pack_buffers([serde.serialize(triple), serde.serialize(())]))


def test_serialize_from_list_first_working_strategy_wins():
    assert ComputeSerializer.serialize_from_list({1}, [JSONData, DillDataBase64]).startswith("00\n")
    assert ComputeSerializer.serialize_from_list([1], [JSONData, DillDataBase64]) == "11\n[1]"
    # a code strategy cannot serialize data: skipped like a failure
    assert ComputeSerializer.serialize_from_list(3, [DillCode, JSONData]) == "11\n3"
    assert ComputeSerializer.serialize_from_list(triple, []).startswith("01\n")


def test_serialize_from_list_all_failing():
    with pytest.raises(SerializationError, match="All strategies failed.") as info:
        ComputeSerializer.serialize_from_list({1}, ["globus_compute_sdk.serialize.JSONData"])
    group = info.value.__cause__
    assert type(group).__name__ == "ExceptionGroup"  # the builtin on 3.11+, the backport on 3.10
    assert isinstance(group.exceptions[0], TypeError)


def test_check_strategies_round_trips_a_call():
    fn, args, kwargs = ComputeSerializer().check_strategies(triple, 5)
    assert (fn(*args, **kwargs), args, kwargs) == (15, (5,), {})
    with pytest.raises(SerializationError, match="check_strategies failed to serialize"):
        ComputeSerializer().check_strategies(triple, _generator())


# -- the registry -------------------------------------------------------------------------------


def test_duplicate_or_malformed_identifiers_are_rejected():
    with pytest.raises(ValueError, match="already used by JSONData"):

        class Clash(SerializationStrategy):
            identifier = "11\n"
            for_code = False

            def serialize(self, data):
                return ""

            def deserialize(self, payload):
                return None

    with pytest.raises(ValueError, match="two characters and a newline"):

        class Malformed(SerializationStrategy):
            identifier = "abc"
            for_code = False

            def serialize(self, data):
                return ""

            def deserialize(self, payload):
                return None
