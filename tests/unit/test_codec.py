"""The wire codec: round trips, and typed rejections of bad payloads."""

import numpy as np
import orjson
import pytest

from broker.codec import (
    BadId,
    DuplicateKey,
    LinearParams,
    MalformedPayload,
    Model,
    NonFiniteValue,
    PayloadTooLarge,
    Reading,
    Scaler,
    SchemaError,
    Update,
    decode_model,
    decode_reading_items,
    decode_readings,
    decode_update,
    encode_model,
    encode_readings,
    encode_update,
)

PARAMS = LinearParams(("a", "b"), np.array([1.5, -2.0]), 0.25)
SCALER = Scaler(7, np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, 2.0]))


def test_batch_round_trip():
    batch = [Reading("s0-d1", i, 100.0 + i, {"a": float(i), "b": 2.0}) for i in range(5)]
    assert decode_readings(encode_readings(batch)) == batch


def test_update_round_trip():
    update = Update("gw-0", 3, 7, 120, "y", PARAMS, 1.0, SCALER, "binary", {"mae": 0.5})
    back = decode_update(encode_update(update))
    assert (back.learner, back.seq, back.base_version, back.n, back.target, back.kind) == (
        "gw-0", 3, 7, 120, "y", "binary")
    assert back.scaler.count == 7 and np.array_equal(back.scaler.m2, SCALER.m2)
    assert np.array_equal(back.params.weights, PARAMS.weights)
    assert back.params.intercept == PARAMS.intercept and back.metrics == {"mae": 0.5}


def test_model_round_trip():
    model = Model(4, 2.0, 1000, ("gw-0", "gw-1"), "y", PARAMS, SCALER, notes={"drift": True})
    back = decode_model(encode_model(model))
    assert back.version == 4 and back.contributors == ("gw-0", "gw-1")
    assert back.kind == "regression" and back.notes == {"drift": True}
    assert np.array_equal(back.scaler.mean, SCALER.mean)
    assert back.params.features == ("a", "b")


def test_null_channel_is_missing():
    [r] = decode_readings(b'{"device":"d","seq":1,"ts":1.0,"values":{"a":null,"b":2}}')
    assert r.values == {"b": 2.0}


@pytest.mark.parametrize(("payload", "error"), [
    (b"{not json", MalformedPayload),
    (b"\xff\xfe", MalformedPayload),
    (b'"a string"', SchemaError),
    (b"[]", SchemaError),
    (b'{"device":"d","seq":1,"ts":1.0}', SchemaError),
    (b'{"device":"d","seq":"1","ts":1.0,"values":{}}', SchemaError),
    (b'{"device":"d","seq":true,"ts":1.0,"values":{}}', SchemaError),
    (b'{"device":"d","seq":-1,"ts":1.0,"values":{}}', SchemaError),
    (b'{"device":"a/b","seq":1,"ts":1.0,"values":{}}', SchemaError),
    (b'{"device":"d","seq":1,"ts":1.0,"values":{"a":"21.5"}}', SchemaError),
    (b'{"device":"d","seq":1,"ts":1.0,"values":{"a":true}}', SchemaError),
    (b'{"device":"d","seq":1,"ts":1.0,"values":{"a":1e999}}', NonFiniteValue),
    (b'{"device":"d","seq":1,"ts":1.0,"values":{"a":NaN}}', NonFiniteValue),
    (b'{"device":"d","seq":1,"ts":1.0,"values":{"a":-Infinity}}', NonFiniteValue),
    (b'{"device":"d","seq":1,"ts":1.0,"values":{"a":1,"a":2}}', DuplicateKey),
    (b'{"device":"d","device":"e","seq":1,"ts":1.0,"values":{}}', DuplicateKey),
    (b'{"device":"d e","seq":1,"ts":1.0,"values":{}}', BadId),
])
def test_bad_readings_raise_typed_errors(payload, error):
    with pytest.raises(error):
        decode_readings(payload)


def test_a_key_like_string_is_not_a_duplicate_key():
    payload = b'{"device":"d","seq":1,"ts":1.0,"values":{"a":1},"note":"x\\":  y"}'
    [reading] = decode_readings(payload)
    assert reading.values == {"a": 1.0}


def test_oversized_payload_is_refused_before_decoding():
    with pytest.raises(PayloadTooLarge) as info:
        decode_readings(b"[" + b" " * 100 + b"]", max_bytes=50)
    assert info.value.reason == "too_large"


def test_mixed_batch_keeps_the_good_items():
    payload = orjson.dumps([
        {"device": "d", "seq": 1, "ts": 1.0, "values": {"a": 1.0}},
        {"device": "d", "seq": 2, "ts": 1.0, "values": {"a": "x"}},
    ])
    good, bad = decode_reading_items(payload)
    assert isinstance(good, Reading) and isinstance(bad, SchemaError)


@pytest.mark.parametrize(("change", "reason"), [
    ({"weights": [1.0]}, "wrong_shape"),                       # wrong length
    ({"weights": [1.0, "2"]}, "schema"),                       # not a number
    ({"n": 1.5}, "schema"),                                    # not a count
    ({"features": ["a", "a"]}, "schema"),                      # repeated name
    ({"learner": "x/y"}, "bad_id"),                            # not an id
    ({"kind": "ternary"}, "schema"),                           # no such model
    ({"drift": "yes"}, "schema"),                              # not a count
    ({"scaler": {"count": 1, "mean": [0, 0], "m2": [0, 0]}}, "wrong_shape"),
    ({"scaler": {"count": 1, "mean": [0, 0, 0], "m2": [0, -1, 0]}}, "schema"),  # negative M2
])
def test_bad_updates_are_refused_with_their_reason(change, reason):
    obj = orjson.loads(encode_update(Update("gw-0", 1, 0, 5, "y", PARAMS, 1.0, SCALER)))
    obj.update(change)
    with pytest.raises(SchemaError) as refused:
        decode_update(orjson.dumps(obj))
    assert refused.value.reason == reason


def test_counts_are_left_to_the_aggregator_to_judge():
    obj = orjson.loads(encode_update(Update("gw-0", 1, 0, 5, "y", PARAMS, 1.0, SCALER)))
    obj["n"] = -3
    assert decode_update(orjson.dumps(obj)).n == -3


def test_non_finite_weights_never_decode():
    obj = orjson.loads(encode_update(Update("gw-0", 1, 0, 5, "y", PARAMS, 1.0, SCALER)))
    obj["weights"] = [12345.0, 12345.0]
    text = orjson.dumps(obj).replace(b"12345.0", b"1e999")
    assert b"1e999" in text
    with pytest.raises((NonFiniteValue, MalformedPayload)):
        decode_update(text)
