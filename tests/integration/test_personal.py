"""Personalised federated learning on a real mosquitto (#15.1): a simulated fleet whose sites
follow different truths (``--heterogeneity``), learned by ``fleetlearn up`` with personal
parts per site; the retained parts then serve a predictor and the Python API."""

import json
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Reading
from broker.model_codec import decode_model
from broker.personal_codec import PersonalPart, decode_personal, encode_personal
from broker.reading_codec import encode_reading
from broker.topics import Topics
from devices.truth import GroundTruth, weight_error
from fleetlearn.api.follow import follow
from gateway.config import PredictorConfig
from gateway.predictor import Predictor
from learners.personal import combine
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(180)]

FEATURES = ("temperature", "humidity", "pressure")
SEED, H = 0, 0.3


@pytest.fixture
def learned(mosquitto, address, prefix, tmp_path):
    """A short `up` of 2 sites (8 devices) into 2 gateways, each site its own truth; what
    stays retained afterwards: the last model and every personal part."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "fleetlearn", "up", "--quiet", "--devices", "8", "--sites", "2",
         "--gateways", "2", "--rate", "4000", "--batch", "10", "--duration", "12",
         "--seed", str(SEED),  # the default learner: issue 15's goals hold at defaults
         "--heterogeneity", str(H), "--personalize", "site",
         "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
         "--report", str(report), "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    topics = Topics(prefix)
    recorder = Recorder(address, topics.model, *topics.personal_filters)
    recorder.wait(lambda: recorder.on("/learn/model") and len(recorder.on("/personal/")) >= 2,
                  what="the retained model and a part per site")
    model = decode_model(recorder.on("/learn/model")[-1])
    parts = [decode_personal(p) for p in recorder.on("/personal/")]
    yield model, parts, recorder, json.loads(report.read_text())
    recorder.close()


def test_personal_parts_learn_each_sites_truth_and_serve_predictor_and_api(learned, address,
                                                                          prefix):
    """One `up` run (its minute of CPU) for both halves."""
    sites_within_5_percent_of_their_own_truth(learned)
    predictor_and_api_serve_the_personalised_prediction(learned, address, prefix)


def sites_within_5_percent_of_their_own_truth(learned):
    model, parts, _, report = learned
    # `up` gives each gateway one site here: one part per site, each from its gateway
    assert sorted((p.gateway, p.site) for p in parts) == [("gw-0", "s0"), ("gw-1", "s1")]
    truth = GroundTruth.from_seed(SEED)
    sites = {f"s{i}": truth.for_site(i, H, SEED) for i in range(2)}
    for part in parts:
        own_truth = sites[part.site]
        personalised = combine(model.params, part.params, part.alpha)
        # the goal: measured 4.4 % and 4.0 % at s0 (two runs), 0.7-3.2 % at durations
        # of 6-20 s, with two own models per part (one own model: 5.2-5.9 % at s0)
        error = weight_error(personalised.weights, own_truth, FEATURES)
        print(f"site {part.site}: weight error {error:.4f}")  # -s shows the margin
        assert error <= 0.05, (part, model.n, error)
        # the one global model cannot be near both sites' truths
        assert weight_error(model.params.weights, own_truth, FEATURES) > 0.2
        assert all(d.startswith(part.site + "-") for d in part.devices)
    assert report["readings"]["unaccounted"] == 0
    # the gateways' prequential figures are the personalised predictions'
    r2 = {gw: p["r2"] for gw, p in report["prequential"].items()}
    assert all(v > 0.9 for v in r2.values()), r2  # the global alone: R² < 0 here (docs)


def predictor_and_api_serve_the_personalised_prediction(learned, address, prefix):
    model, parts, recorder, _ = learned
    topics = Topics(prefix)
    part = next(p for p in parts if p.site == "s1")
    device = part.devices[0]
    x = {"temperature": 21.0, "humidity": 48.0, "pressure": 1010.0}
    vector = np.array([x[f] for f in FEATURES])
    mixed = combine(model.params, part.params, part.alpha)
    expected = float(vector @ mixed.weights + mixed.intercept)
    plain = float(vector @ model.params.weights + model.params.intercept)
    assert abs(expected - plain) > 1.0  # the site's own truth is far from the fleet's

    # a part beyond the bounds, retained: refused with its reason, the good ones still serve
    bad = PersonalPart("gw-9", "s1", "x-d9", ("x-d9",), 1, 0.0, 5, model.target, 1.0,
                       LinearParams(FEATURES, np.array([1e12, 0.0, 0.0]), 0.0))
    recorder.publish(topics.personal("gw-9", "s1", "x-d9"), encode_personal(bad), retain=True)
    predictor = Predictor(PredictorConfig(node_id="pred-p"), topics, address)
    watch = Recorder(address, topics.predictions_filter)
    with ServiceThread(predictor):
        recorder.wait(lambda: predictor.model is not None and predictor.personal.taken >= 2
                      and predictor.refused["personal_magnitude"] == 1,
                      what="the predictor's model and parts")
        reading = Reading(device, 0, time.time(), {**x, "power": 0.0}, boot=1)
        recorder.publish(topics.reading("s1", device), encode_reading(reading))
        watch.wait(lambda: watch.on(f"/{device}/prediction"), what="the prediction")
    watch.close()
    said = orjson.loads(watch.on(f"/{device}/prediction")[-1])
    assert said["prediction"] == pytest.approx(expected, rel=1e-9)

    with follow(f"127.0.0.1:{address.port}", prefix=prefix) as models:
        current = models.wait()
        recorder.wait(lambda: models.personal.taken >= 2, what="the API's parts")
        assert current.predict_one(x, site="s1", device=device) == pytest.approx(expected)
        assert current.predict_one(x) == pytest.approx(plain)  # no site: the global model
    recorder.publish(topics.personal("gw-9", "s1", "x-d9"), b"", retain=True)  # clear it
