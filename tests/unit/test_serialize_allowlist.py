"""Naming strategies (instances, classes, import paths) and deserializer allow-lists."""

from __future__ import annotations

import pytest

from globus_compute.errors import DeserializationError, SerdeError
from globus_compute.serialize import (
    SELECTABLE_STRATEGIES,
    AllCodeStrategies,
    AllowlistWildcard,
    ComputeSerializer,
    DillCode,
    DillDataBase64,
    JSONData,
    PureSourceDill,
    PureSourceTextInspect,
    parse_allowlist,
    reference_import_path,
    resolve_strategy,
)


@pytest.mark.parametrize(
    "spelling",
    [
        JSONData,
        JSONData(),
        "globus_compute.serialize.JSONData",
        "globus_compute.serialize.data.JSONData",
        "globus_compute.JSONData",
        "globus_compute_sdk.serialize.JSONData",
        "globus_compute_sdk.serialize.concretes.JSONData",
    ],
    ids=repr,
)
def test_every_spelling_resolves_to_the_shared_instance(spelling):
    strategy = resolve_strategy(spelling, for_code=False)
    assert type(strategy) is JSONData
    assert strategy is resolve_strategy(JSONData)


def test_serializer_accepts_reference_paths():
    serde = ComputeSerializer(
        "globus_compute_sdk.serialize.PureSourceTextInspect",
        "globus_compute_sdk.serialize.concretes.JSONData",
    )
    assert serde.serialize([1]) == "11\n[1]"
    assert type(serde.code_serializer) is PureSourceTextInspect
    assert serde.serialize(_half) == "st\n_half:def _half(x):\n    return x / 2\n"


def _half(x):
    return x / 2


def test_defaults():
    serde = ComputeSerializer()
    assert type(serde.code_serializer) is DillCode
    assert type(serde.data_serializer) is DillDataBase64
    assert serde.allowed_deserializer_types == frozenset()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy_code": JSONData}, "JSONData is a data serialization strategy, expected a code"),
        ({"strategy_data": DillCode}, "DillCode is a code serialization strategy, expected a data"),
        ({"strategy_data": "no.such.module.Thing"}, "Invalid strategy-like 'no.such.module.Thing'"),
        ({"strategy_data": 42}, "Invalid strategy-like '42'"),
        ({"strategy_data": "globus_compute.serialize.Nope"}, "Invalid strategy-like"),
    ],
)
def test_bad_strategies_raise_serde_error(kwargs, message):
    with pytest.raises(SerdeError, match=message):
        ComputeSerializer(**kwargs)


def test_reference_import_path_names_the_reference_module():
    assert reference_import_path(JSONData) == "globus_compute_sdk.serialize.concretes.JSONData"
    assert (
        reference_import_path("globus_compute.serialize.AllCodeStrategies")
        == "globus_compute_sdk.serialize.concretes.AllCodeStrategies"
    )
    assert reference_import_path(DillDataBase64()).endswith(".concretes.DillDataBase64")


def test_selectable_strategies_are_the_reference_set():
    names = {cls.__name__ for cls in SELECTABLE_STRATEGIES}
    assert names == {
        "DillDataBase64",
        "JSONData",
        "AllDataStrategies",
        "DillCode",
        "PureSourceTextInspect",
        "PureSourceDill",
        "AllCodeStrategies",
        "DillCodeSource",
        "DillCodeTextInspect",
        "CombinedCode",
    }


# -- allow-lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code_wildcard, data_wildcard",
    [
        (AllowlistWildcard.CODE, AllowlistWildcard.DATA),
        ("globus_compute_sdk.*Code", "globus_compute_sdk.*Data"),
        ("globus_compute.*Code", "globus_compute.*Data"),
    ],
)
def test_wildcards_expand_to_every_selectable_strategy(code_wildcard, data_wildcard):
    assert parse_allowlist([code_wildcard, data_wildcard]) == frozenset(SELECTABLE_STRATEGIES)


def test_wildcard_plus_specific_other_kind():
    allowed = parse_allowlist([AllowlistWildcard.CODE, "globus_compute_sdk.serialize.JSONData"])
    assert JSONData in allowed and DillDataBase64 not in allowed and DillCode in allowed


def test_wildcard_cannot_mix_with_same_kind():
    with pytest.raises(SerdeError, match="Cannot mix 'globus_compute_sdk.\\*Code'"):
        parse_allowlist([AllowlistWildcard.CODE, DillCode, JSONData])


@pytest.mark.parametrize("entries", [[JSONData], [DillCode, PureSourceDill]])
def test_allowlist_needs_code_and_data(entries):
    with pytest.raises(SerdeError, match="at least one code and one data"):
        ComputeSerializer(allowed_deserializer_types=entries)


def test_disallowed_strategy_is_refused_with_allowed_names():
    serde = ComputeSerializer(
        allowed_deserializer_types=[PureSourceTextInspect, AllCodeStrategies, JSONData]
    )
    assert serde.deserialize("11\n[1]") == [1]
    with pytest.raises(DeserializationError) as info:
        serde.deserialize(ComputeSerializer().serialize(3))
    assert "Data serializer DillDataBase64 disabled" in info.value.reason
    with pytest.raises(DeserializationError) as info:
        serde.deserialize(ComputeSerializer().serialize(len))
    assert "Code serializer DillCode disabled" in info.value.reason
    assert "AllCodeStrategies, JSONData, PureSourceTextInspect" in info.value.reason


def test_allowlist_refusal_is_not_cached_as_allowed():
    serde = ComputeSerializer(allowed_deserializer_types=[DillCode, JSONData])
    for _ in range(2):
        with pytest.raises(DeserializationError):
            serde.deserialize("00\ngARLAy4=\n")
    assert serde.deserialize("11\n3") == 3
