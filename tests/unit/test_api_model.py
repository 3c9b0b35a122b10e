"""fleetlearn.Model: a model message predicts as the predictor does (the gateway's features,
the link), names what is missing, fills as asked, and takes only signed models with a trust
file."""

import math
from datetime import UTC, datetime

import numpy as np
import pytest

import fleetlearn
from broker.keyring import write_trust
from broker.messages import LinearParams, Scaler
from broker.messages import Model as Message
from broker.model_codec import encode_model
from broker.signing import PrivateKey, TrustedKey, sign
from gateway.features import FeatureBuilder, FeatureSpec

pytestmark = pytest.mark.timeout(60)

FEATURES = ("temp", "hour_sin", "hour_cos", "doy_cos", "lag1_temp", "site_jfk")


def message(version=3, kind="regression", features=FEATURES, target="humid"):
    n = len(features)
    params = LinearParams(features, np.linspace(0.5, 3.0, n), -4.0)
    return Message(version, 0.0, 10, ("gw-0",), target, params,
                   Scaler(10, np.arange(n + 1, dtype=float), np.ones(n + 1)), kind=kind)


def test_a_prediction_is_the_gateway_features_times_the_weights():
    msg = message()
    model = fleetlearn.Model.from_message(encode_model(msg))
    build = FeatureBuilder(FeatureSpec(FEATURES, "humid"))
    readings = [({"temp": 20.0 + i, "humid": 50.0}, 1_357_020_000.0 + 3600 * i) for i in range(4)]
    got, want = [], []
    for i, (values, ts) in enumerate(readings):
        site = "jfk" if i % 2 else "ewr"
        try:
            x, _ = build(dict(values), ts, "d1", site)
            want.append(float(x @ msg.params.weights + msg.params.intercept))
        except Exception:
            want.append(None)
        try:
            got.append(model.predict_one({"temp": values["temp"]}, ts=ts, device="d1",
                                         site=site))
        except fleetlearn.MissingInput:
            got.append(None)
    assert got[0] is None and want[0] is None  # the first reading has no lag
    assert got[1:] == pytest.approx(want[1:]) and len(set(got[1:])) == 3


def test_a_datetime_is_its_utc_time():
    model = fleetlearn.Model.from_message(encode_model(message(features=("temp", "hour_cos"))))
    naive = model.predict_one({"temp": 1.0}, ts=datetime(2013, 1, 1, 6))
    aware = model.predict_one({"temp": 1.0}, ts=datetime(2013, 1, 1, 6, tzinfo=UTC))
    assert naive == aware == model.predict_one({"temp": 1.0}, ts=1_357_020_000.0)


def test_a_binary_model_gives_a_probability():
    model = fleetlearn.Model.from_message(encode_model(message(kind="binary",
                                                               features=("temp",))))
    p = model.predict_one({"temp": 2.0})  # score 0.5 * 2 - 4 = -3
    assert p == pytest.approx(1 / (1 + math.exp(3.0)))


def test_every_missing_input_is_named_with_what_to_pass():
    model = fleetlearn.Model.from_message(encode_model(message(features=(
        "temp", "dewp", "hour_sin", "lag1_temp", "site_jfk"))))
    with pytest.raises(fleetlearn.MissingInput) as err:
        model.predict_one({"dewp": math.nan})
    text = str(err.value)
    assert err.value.missing[:2] == ["temp", "dewp"]
    assert "ts=" in text and "device=" in text and "site=" in text and "fill=" in text
    with pytest.raises(fleetlearn.MissingInput, match="lag1_temp needs an earlier reading of d"):
        model.predict_one({"temp": 1.0, "dewp": 2.0}, ts=0.0, device="d", site="x")


def test_fill_last_uses_the_device_s_last_value_else_the_fleet_mean():
    msg = message(features=("temp", "dewp"))  # means 0.0, 1.0; weights 0.5, 3.0
    model = fleetlearn.Model.from_message(encode_model(msg), fill="last")
    assert model.predict_one({"temp": 2.0}, device="a") == pytest.approx(-4 + 1 + 3 * 1.0)
    model.predict_one({"temp": 2.0, "dewp": 5.0}, device="a")
    assert model.predict_one({"temp": 2.0}, device="a") == pytest.approx(-4 + 1 + 3 * 5.0)
    assert model.predict_one({"temp": 2.0}, device="b") == pytest.approx(-4 + 1 + 3 * 1.0)
    with pytest.raises(ValueError, match="fill must be one of"):
        fleetlearn.Model.from_message(encode_model(msg), fill="zero")


def test_with_a_trust_file_only_an_aggregator_s_signature_is_taken(tmp_path):
    agg, other = PrivateKey.generate(), PrivateKey.generate()
    trust = tmp_path / "trust.toml"
    write_trust(trust, [TrustedKey(agg.kid, "aggregator", "aggregator", agg.public),
                        TrustedKey(other.kid, "gw-0", "gateway", other.public)])
    body = encode_model(message())
    assert fleetlearn.Model.from_message(sign(body, agg, "model"), trust=trust).version == 3
    for payload, reason in ((body, "model_unsigned"),
                            (sign(body, other, "model"), "model_wrong_signer"),
                            (sign(body, PrivateKey.generate(), "model"), "model_unknown_key")):
        with pytest.raises(fleetlearn.ModelRefused) as err:
            fleetlearn.Model.from_message(payload, trust=trust)
        assert err.value.reason == reason


def test_a_malformed_or_out_of_range_model_is_refused():
    with pytest.raises(fleetlearn.ModelRefused, match="model_"):
        fleetlearn.Model.from_message(b'{"version": 1}')
    huge = message(features=("temp",))
    huge.params.weights[:] = 1e12
    with pytest.raises(fleetlearn.ModelRefused, match="model_out_of_range"):
        fleetlearn.Model.from_message(encode_model(huge))


def test_import_fleetlearn_loads_neither_numba_nor_river_nor_paho():
    import subprocess
    import sys
    code = ("import sys, fleetlearn; fleetlearn.Model; "
            "print(sorted(m for m in ('numba', 'river', 'paho') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_readme_shows_the_example_script_as_it_is_and_it_is_15_lines():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    script = (root / "docs" / "examples" / "predict_weather.py").read_text()
    code = script.split('"""', 2)[2].strip("\n")  # without the docstring
    assert f"```python\n{code}\n```" in (root / "README.md").read_text()
    assert len([line for line in code.splitlines() if line.strip()]) <= 15
    assert "import fleetlearn" in code and "from broker" not in code and "gateway" not in code


def test_a_lag_of_the_target_needs_the_target_in_the_device_s_previous_call():
    model = fleetlearn.Model.from_message(encode_model(message(features=("temp", "lag1_humid"))))
    for call in ({"temp": 1.0}, {"temp": 1.0}):  # no humid given: no lag to be had
        with pytest.raises(fleetlearn.MissingInput, match="lag1_humid"):
            model.predict_one(call, device="d")
    with pytest.raises(fleetlearn.MissingInput, match="earlier reading of e"):
        model.predict_one({"temp": 1.0, "humid": 40.0}, device="e")
    assert model.predict_one({"temp": 1.0}, device="e") == pytest.approx(-4 + 0.5 + 3 * 40.0)
