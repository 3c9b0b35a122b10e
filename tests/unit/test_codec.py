"""The wire codec: round trips, and typed rejections of bad payloads."""

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.messages import LinearParams, Model, Reading, Scaler, Update
from broker.model_codec import decode_model, decode_update, encode_model, encode_update
from broker.reading_codec import (
    decode_reading_items,
    decode_readings,
    encode_reading,
    encode_reading_columns,
    encode_readings,
)
from broker.wire import (
    BadId,
    DuplicateKey,
    MalformedPayload,
    NonFiniteValue,
    PayloadTooLarge,
    SchemaError,
)
from gateway.intake import fast_columns

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


# ---------------------------------------------------------------- the columns layout


def test_columns_round_trip_with_missing_channels():
    batch = [Reading("s0-d1", 7, 100.0, {"a": 1.0, "b": 2.0}),
             Reading("s0-d1", 8, 101.0, {"b": 2.5}),
             Reading("s0-d1", 9, 102.0, {"c": -1.0, "a": 0.5}),
             Reading("s0-d1", 10, 103.0, {})]
    payload = encode_reading_columns(batch)
    data = orjson.loads(payload)
    assert list(data["values"]) == ["a", "b", "c"]  # the union, in first-seen order
    assert data["values"]["a"] == [1.0, None, 0.5, None]
    assert decode_reading_items(payload) == batch
    assert len(payload) < len(encode_readings(batch))


@pytest.mark.parametrize("batch", [
    [],
    [Reading("s0-d1", 1, 1.0, {}), Reading("s0-d2", 1, 1.0, {})],
], ids=["empty", "two-devices"])
def test_columns_need_readings_of_one_device(batch):
    with pytest.raises(ValueError):
        encode_reading_columns(batch)


CHANNELS = ("temperature", "humidity", "power", "a")
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def one_device_readings(draw) -> list[Reading]:
    device = draw(st.sampled_from(["s0-d0001", "d1", "gw_x.y-z"]))
    n = draw(st.integers(1, 12))
    boot = draw(st.sampled_from([0, 1, 1795627787300, 2**63 - 1]))  # one per batch
    return [Reading(device, draw(st.integers(0, 2**63 - 1)), draw(finite),
                    draw(st.dictionaries(st.sampled_from(CHANNELS), finite, max_size=4)), boot)
            for _ in range(n)]


def reasons(items) -> list:
    return [i if isinstance(i, Reading) else (type(i), i.reason) for i in items]


@settings(max_examples=200, deadline=None)
@given(one_device_readings())
def test_columns_and_rows_decode_to_the_same_items(batch):
    columns = decode_reading_items(encode_reading_columns(batch))
    assert columns == decode_reading_items(encode_readings(batch)) == batch


#: Stands for 1e400 (which orjson cannot write): a number that overflows a float.
OVERFLOW = "<1e400>"


def rows_and_columns(rows: list[dict]) -> tuple[bytes, bytes]:
    """The same rows (dicts, any values) in both layouts, the columns written by hand.

    A row's channels are put in the columns' order (first seen) in the rows layout too: with
    two bad values in a row, the first one checked names the reason.
    """
    channels = list(dict.fromkeys(ch for r in rows for ch in r["values"]))
    rows = [{**r, "values": {ch: r["values"][ch] for ch in channels if ch in r["values"]}}
            for r in rows]
    columns = {"device": rows[0]["device"], "seq": [r["seq"] for r in rows],
               "ts": [r["ts"] for r in rows],
               "values": {ch: [r["values"].get(ch) for r in rows] for ch in channels}}
    return tuple(orjson.dumps(p).replace(b'"<1e400>"', b"1e400") for p in (rows, columns))


def good_rows(n: int = 4) -> list[dict]:
    return [{"device": "s0-d1", "seq": i, "ts": 100.0 + i, "values": {"a": 1.0 * i, "b": 2.0}}
            for i in range(n)]


@pytest.mark.parametrize(("row", "reason"), [
    ({"seq": "2"}, "schema"),
    ({"seq": -1}, "schema"),
    ({"seq": True}, "schema"),
    ({"seq": 2.0}, "schema"),
    ({"ts": "now"}, "schema"),
    ({"ts": None}, "schema"),
    ({"values": {"a": True, "b": 2.0}}, "schema"),
    ({"values": {"a": "1.5", "b": 2.0}}, "schema"),
    ({"values": {"a": [1.0], "b": 2.0}}, "schema"),
    ({"values": {"a": OVERFLOW, "b": 2.0}}, "non_finite"),
    ({"ts": OVERFLOW}, "non_finite"),
], ids=["str-seq", "negative-seq", "bool-seq", "float-seq", "str-ts", "null-ts", "bool-value",
        "str-value", "list-value", "overflow-value", "overflow-ts"])
def test_a_bad_row_rejects_only_itself_with_the_reason_of_the_rows_layout(row, reason):
    rows = good_rows()
    rows[2] = {**rows[2], **row}
    by_rows, by_columns = rows_and_columns(rows)
    items = decode_reading_items(by_columns)
    assert [isinstance(i, Reading) for i in items] == [True, True, False, True]
    assert items[2].reason == reason
    assert reasons(items) == reasons(decode_reading_items(by_rows))


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**63), finite,
                        st.just(OVERFLOW), st.text(max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "device": st.just("s0-d1"), "seq": json_scalar, "ts": json_scalar,
    "values": st.dictionaries(st.sampled_from(CHANNELS), json_scalar, max_size=4),
}), min_size=1, max_size=6))
def test_any_rows_get_the_same_items_in_either_layout(rows):
    by_rows, by_columns = rows_and_columns(rows)
    assert reasons(decode_reading_items(by_columns)) == reasons(decode_reading_items(by_rows))


def test_an_overflowing_number_in_a_row_is_non_finite():
    payload = (b'{"device":"s0-d1","seq":[1,2,3],"ts":[1.0,2.0,3.0],'
               b'"values":{"a":[1.0,1e400,null]}}')
    items = decode_reading_items(payload)
    assert isinstance(items[0], Reading) and isinstance(items[2], Reading)
    assert isinstance(items[1], NonFiniteValue) and items[1].reason == "non_finite"
    assert items[2].values == {}


def test_null_in_a_column_is_a_missing_channel_and_extra_keys_are_ignored():
    payload = (b'{"device":"s0-d1","seq":[1,2],"ts":[1,2.5],"fw":"1.2",'
               b'"values":{"a":[null,2],"b":[3.0,null]}}')
    assert decode_reading_items(payload) == [Reading("s0-d1", 1, 1.0, {"b": 3.0}),
                                             Reading("s0-d1", 2, 2.5, {"a": 2.0})]


@pytest.mark.parametrize(("change", "error", "words"), [
    ({"seq": []}, SchemaError, "'seq'"),
    ({"ts": [1.0, 2.0]}, SchemaError, "'ts' has 2 entries, but 'seq' has 3"),
    ({"ts": 1.0}, SchemaError, "'ts' must be a list"),
    ({"ts": None}, SchemaError, "'ts' must be a list"),
    ({"values": {"a": [1.0, 2.0, 3.0, 4.0]}}, SchemaError,
     "'a' has 4 entries, but 'seq' has 3"),
    ({"values": {"a": 1.0}}, SchemaError, "'a' must be a list"),
    ({"values": [[1.0, 2.0, 3.0]]}, SchemaError, "'values' must be an object"),
    ({"device": "a/b"}, BadId, "not a valid id"),
    ({"device": 7}, BadId, "not a valid id"),
], ids=["empty-seq", "short-ts", "scalar-ts", "null-ts", "long-channel", "scalar-channel",
        "values-list", "bad-device", "number-device"])
def test_a_bad_shape_rejects_the_whole_payload(change, error, words):
    obj = {"device": "s0-d1", "seq": [1, 2, 3], "ts": [1.0, 2.0, 3.0],
           "values": {"a": [1.0, None, 3.0]}}
    obj.update(change)
    with pytest.raises(error) as refused:
        decode_reading_items(orjson.dumps(obj))
    assert type(refused.value) is error and words in str(refused.value)


@pytest.mark.parametrize(("missing", "error"), [
    ("device", SchemaError), ("ts", SchemaError), ("values", SchemaError)])
def test_a_missing_column_rejects_the_whole_payload(missing, error):
    obj = {"device": "s0-d1", "seq": [1], "ts": [1.0], "values": {}}
    del obj[missing]
    with pytest.raises(error, match=f"no '{missing}'"):
        decode_reading_items(orjson.dumps(obj))


def test_a_seq_that_is_not_a_list_makes_a_single_reading():
    [item] = decode_reading_items(b'{"device":"s0-d1","seq":"7","ts":[1.0],"values":{}}')
    assert isinstance(item, SchemaError)  # checked as one reading: its seq is no integer


@pytest.mark.parametrize("payload", [
    b'{"device":"s0-d1","seq":[1],"ts":[1.0],"values":{"a":[1.0],"a":[2.0]}}',
    b'{"device":"s0-d1","seq":[1],"seq":[2],"ts":[1.0],"values":{}}',
])
def test_columns_refuse_duplicate_keys(payload):
    with pytest.raises(DuplicateKey):
        decode_reading_items(payload)


def test_columns_are_capped_like_any_payload():
    batch = [Reading("s0-d1", i, 1.0, {"a": 1.0}) for i in range(100)]
    with pytest.raises(PayloadTooLarge):
        decode_reading_items(encode_reading_columns(batch), max_bytes=100)


def test_an_overflowing_number_rejects_only_its_reading_in_the_rows_layout_too():
    payload = (b'[{"device":"d","seq":1,"ts":1.0,"values":{"a":1e400}},'
               b'{"device":"d","seq":2,"ts":1.0,"values":{"a":1.0}}]')
    bad, good = decode_reading_items(payload)
    assert isinstance(bad, NonFiniteValue) and good == Reading("d", 2, 1.0, {"a": 1.0})


@pytest.mark.parametrize("payload", [
    b'{"device":"d","seq":[1,2],"ts":[1.0,2.0],"values":{"a":[NaN,1.0]}}',
    b'[{"device":"d","seq":1,"ts":1.0,"values":{"a":Infinity}},'
    b'{"device":"d","seq":2,"ts":1.0,"values":{"a":1e400}}]',
])
def test_nan_and_infinity_literals_are_not_json_and_refuse_the_whole_payload(payload):
    with pytest.raises(NonFiniteValue):
        decode_reading_items(payload)


def test_overflow_with_broken_json_is_malformed():
    with pytest.raises(MalformedPayload):
        decode_reading_items(b'[{"device":"d","seq":1,"ts":1e400,"values":{}}')


def test_a_reading_without_a_boot_is_boot_0_and_boot_0_is_not_written():
    plain = b'{"device":"d1","seq":1,"ts":1.0,"values":{}}'
    assert decode_readings(plain)[0].boot == 0
    assert encode_reading(Reading("d1", 1, 1.0, {})) == plain
    assert b'"boot":9' in encode_reading(Reading("d1", 1, 1.0, {}, boot=9))


@pytest.mark.parametrize("boot", [-1, True, 1.5, "3", None, [1], 2**63])
def test_a_bad_boot_refuses_its_readings_in_every_layout(boot):
    rows = [{**row, "boot": boot} for row in good_rows(3)]
    single = orjson.dumps(rows[0]) if boot != 2**63 else None
    payloads = [orjson.dumps(rows), encode_batch_with_boot(rows, boot)]
    if single is not None:
        payloads.append(single)
    for payload in payloads:
        items = decode_reading_items(payload)
        assert items and all(isinstance(i, SchemaError) and "boot" in str(i) for i in items)
        assert fast_columns(payload, "s0-d1", ("a", "b")) is None  # the careful path explains


def encode_batch_with_boot(rows: list[dict], boot) -> bytes:
    columns = {"device": rows[0]["device"], "boot": boot, "seq": [r["seq"] for r in rows],
               "ts": [r["ts"] for r in rows],
               "values": {"a": [r["values"]["a"] for r in rows]}}
    return orjson.dumps(columns)


@settings(max_examples=100, deadline=None)
@given(one_device_readings())
def test_the_fast_path_reads_the_boot_as_the_careful_path_does(batch):
    batch = [Reading("d1", r.seq % 2**63, r.ts, r.values, r.boot) for r in batch]
    for payload in (encode_reading_columns(batch), encode_readings(batch),
                    encode_reading(batch[0])):
        fast = fast_columns(payload, "d1", CHANNELS)
        assert fast is not None
        assert list(fast[0]) == [r.seq for r in decode_readings(payload)]
        assert list(fast[3]) == [r.boot for r in decode_readings(payload)]
