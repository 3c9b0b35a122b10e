"""The model message as a documented format: its version field, its committed JSON Schema."""

from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Model, Scaler, Update
from broker.model_codec import (
    FORMAT,
    FormatError,
    decode_model,
    decode_update,
    encode_model,
    encode_update,
)
from broker.model_schema import ModelMessage, ScalerMoments, main, model_schema, schema_text
from broker.signing import PrivateKey, sign

pytestmark = pytest.mark.timeout(30)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "model.schema.json"
PARAMS = LinearParams(("a", "hour_sin", "lag1_a", "site_s0"), np.array([1.5, -2.0, 0.5, 3.0]),
                      0.25)
SCALER = Scaler(7, np.array([1.0, 0.0, 1.0, 0.5, 3.0]), np.array([0.5, 3.5, 0.4, 1.75, 2.0]))
LOCAL = {"default": "America/New_York", "zones": {"s1": "+05:30"}}
MODEL = Model(4, 1.7e9, 1000, ("gw-0", "gw-1"), "y", PARAMS, SCALER, notes={"drift": True},
              local_time=LOCAL)
UPDATE = Update("gw-0", 3, 7, 120, "y", PARAMS, 1.0, SCALER)
VALIDATOR = jsonschema.Draft202012Validator(model_schema())


def with_members(payload: bytes, **members) -> bytes:
    obj = orjson.loads(payload)
    obj.update(members)
    return orjson.dumps({k: v for k, v in obj.items() if v is not None})


def test_the_committed_schema_is_what_the_generator_writes_now(tmp_path):
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "docs/model.schema.json is stale: python -m broker.model_schema docs/model.schema.json")
    assert main([str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == schema_text()
    jsonschema.Draft202012Validator.check_schema(model_schema())


def test_the_schema_describes_exactly_the_members_the_codec_writes():
    written = orjson.loads(encode_model(MODEL))
    assert set(ModelMessage.__struct_fields__) == set(written) | {"kid", "sig"}
    assert set(ScalerMoments.__struct_fields__) == set(written["scaler"])
    assert written["format"] == FORMAT


def test_local_time_travels_in_models_and_updates_and_is_absent_for_utc():
    assert decode_model(encode_model(MODEL)).local_time == LOCAL
    plain = Model(4, 1.7e9, 1000, (), "y", PARAMS, SCALER)
    assert "local_time" not in orjson.loads(encode_model(plain))
    assert decode_model(encode_model(plain)).local_time == {}
    update = Update("gw-0", 3, 7, 120, "y", PARAMS, 1.0, SCALER, local_time=LOCAL)
    assert decode_update(encode_update(update)).local_time == LOCAL
    unknown = with_members(encode_model(MODEL), local_time={"default": "Mars/Olympus"})
    with pytest.raises(ValueError, match="unknown time zone"):
        decode_model(unknown)


def test_plain_and_signed_models_validate():
    signed = sign(encode_model(MODEL), PrivateKey.generate(), "model")
    for payload in (encode_model(MODEL), signed):
        VALIDATOR.validate(orjson.loads(payload))


@pytest.mark.parametrize(("change", "path"), [
    ({"format": "2.0"}, "format"),             # another major: not this schema's
    ({"kind": "ternary"}, "kind"),
    ({"version": 0}, "version"),
    ({"weights": [1.0, "2"]}, "weights"),
    ({"intercept": None}, None),                # a required member missing
    ({"scaler": {"count": 1, "mean": [0.0], "m2": [-1.0]}}, "scaler"),
    ({"sig": "short"}, "sig"),                 # decoded as is; no verifier takes it
    ({"local_time": {"default": 5}}, "local_time"),
    ({"local_time": {"zones": {"s1": 2}}}, "local_time"),
])
def test_the_schema_refuses_what_no_reader_accepts(change, path):
    errors = list(VALIDATOR.iter_errors(orjson.loads(with_members(encode_model(MODEL),
                                                                     **change))))
    assert errors
    if path is not None:
        assert any(e.absolute_path and e.absolute_path[0] == path for e in errors), errors
    if path != "sig":
        with pytest.raises(ValueError):  # the decoder refuses it too (a DecodeError is one)
            decode_model(with_members(encode_model(MODEL), **change))


def test_a_newer_minor_is_read_and_its_new_members_ignored():
    newer = with_members(encode_model(MODEL), format="1.9", calibration={"a": [1, 2]})
    VALIDATOR.validate(orjson.loads(newer))
    back = decode_model(newer)
    assert back.version == 4 and back.params.weights.tolist() == PARAMS.weights.tolist()
    assert decode_update(with_members(encode_update(UPDATE), format="1.2", extra=1)).seq == 3


def test_a_message_without_format_is_read_as_1_0():
    old = with_members(encode_model(MODEL), format=None)
    assert b"format" not in old
    VALIDATOR.validate(orjson.loads(old))
    assert decode_model(old).params.features == PARAMS.features
    assert decode_update(with_members(encode_update(UPDATE), format=None)).learner == "gw-0"


@pytest.mark.parametrize("value", ["2.0", "10.3", "0.9", "1", "1.0.0", "v1.0", "01.0", 1.0,
                                   None, "1.x"])
def test_another_major_or_a_bad_format_is_refused_as_format(value):
    for payload, decode, what in ((encode_model(MODEL), decode_model, "model"),
                                  (encode_update(UPDATE), decode_update, "update")):
        obj = orjson.loads(payload)
        obj["format"] = value
        with pytest.raises(FormatError) as refused:
            decode(orjson.dumps(obj))
        assert refused.value.reason == "format" and what in str(refused.value)


def test_a_newer_major_says_to_upgrade():
    with pytest.raises(FormatError, match=r"model format 2\.0 is newer than this reader's 1\.x"):
        decode_model(with_members(encode_model(MODEL), format="2.0"))


def doc_predict():
    """The ``predict`` function docs/model-format.md gives, run as the docs print it."""
    text = (SCHEMA_FILE.parent / "model-format.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "docs/model-format.md", "exec"), scope)
    return scope["predict"]


@pytest.mark.parametrize(("kind", "local"), [
    ("regression", {}), ("binary", {}),
    ("regression", {"default": "America/New_York", "zones": {"s1": "+05:30", "d2": "UTC-4"}})])
def test_the_documented_prediction_is_the_gateway_features_times_the_weights(kind, local):
    from gateway.features import FeatureBuilder, FeatureSpec
    from gateway.local_time import LocalTime
    from gateway.validation import Rejected
    from learners.link import output

    features = ("a", "hour_sin", "hour_cos", "doy_sin", "doy_cos", "lag1_a", "lag1_y",
                "site_s1", "device_d1")
    rng = np.random.default_rng(3)
    params = LinearParams(features, rng.normal(size=len(features)), 0.3)
    model = orjson.loads(encode_model(Model(1, 0.0, 10, (), "y", params,
                                            Scaler.empty(len(features) + 1), kind,
                                            local_time=local)))
    spec = FeatureSpec(features, "y", LocalTime(**local) if local else LocalTime())
    build, predict = FeatureBuilder(spec), doc_predict()
    compared = 0
    for i, ts in enumerate(rng.uniform(0, 2.1e9, 40)):
        device, site = f"d{i % 3}", ("s0", "s1")[i % 2]
        values = {"a": float(rng.normal()), "y": float(rng.normal())}
        if i < 3:  # each device's first reading has no lag: the gateway refuses it
            with pytest.raises(Rejected, match="no_history"):
                build(values, float(ts), device, site)
            with pytest.raises((KeyError, TypeError)):
                predict(model, values, float(ts), device, site)
            continue
        mine = predict(model, values, float(ts), device, site)
        x, _ = build(values, float(ts), device, site)
        score = float(x @ params.weights + params.intercept)
        assert mine == pytest.approx(output(kind, score), rel=1e-12, abs=1e-12)
        compared += 1
    assert compared == 37
