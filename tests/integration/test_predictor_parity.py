"""The predictor predicts from the features the gateway learns from, over a real mosquitto; it
answers a batch with one columnar batch; predictors split the readings, each predicted once."""

import time

import numpy as np
import orjson
import pytest

from broker.address import BrokerAddress
from broker.client import BURST
from broker.messages import LinearParams, Model, Scaler
from broker.model_codec import encode_model
from broker.node_status import details, is_online
from broker.reading_codec import encode_reading, encode_reading_columns
from broker.topics import Topics
from devices.faults import FaultInjector, FaultRates
from devices.simulator import FleetSimulator
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.outcomes import ADMITTED
from gateway.partition import Partition
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from tests.mqtt_helpers import Recorder, ServiceThread, wait_until

pytestmark = [pytest.mark.integration]

SPEC = FeatureSpec(("temperature", "humidity", "pressure", "lag1_power", "hour_sin"), "power")
WEIGHTS, INTERCEPT = np.array([0.3, -0.2, 0.01, 0.5, 2.0]), 1.5
MODEL = Model(1, time.time(), 1, (), "power", LinearParams(SPEC.features, WEIGHTS, INTERCEPT),
              Scaler.empty(len(SPEC.features) + 1))


def cleaning(devices: list[str]) -> CleaningConfig:
    return CleaningConfig(allowlist=frozenset(devices),
                          policy=ChannelPolicy(impute="last", smooth=0.5))


def record_learned(gateway: Gateway, sink: dict) -> None:
    """Keep every feature row the gateway's pipeline admits (what it learns from), by (device,
    seq, ts): a restarted device numbers again from 0, with another ts."""
    pipeline = gateway.pipeline
    flush = pipeline.flush

    def flushed(*args, **kwargs):
        block = flush(*args, **kwargs)
        rows = block.rows
        if rows is not None:
            for i in np.flatnonzero(rows.code == ADMITTED).tolist():
                key = (pipeline.devices_table.names[rows.dev[i]], int(rows.seq[i]),
                       float(rows.ts[i]))
                sink[key] = rows.X[i].copy()
        return block

    pipeline.flush = flushed


def record_served(predictor: Predictor, sink: list) -> None:
    """Keep every feature row a prediction the predictor sends was made from."""
    publish = predictor.publish

    def published(served, stale=False):
        for k, (seq, ts) in enumerate(zip(served.seq, served.ts, strict=True)):
            sink.append(((served.ref[1], seq, ts), served.features[k].copy()))
        publish(served, stale)

    predictor.publish = published


@pytest.mark.timeout(120)
def test_every_prediction_uses_the_features_the_gateway_learned_from(address, prefix):
    """A dirty stream (every fault at 5 %), imputation and smoothing on: for each reading, the
    predictor's feature vector is the gateway's, and the prediction sent is the model's on it."""
    topics = Topics(prefix)
    sim = FleetSimulator(6, 2, seed=3)
    devices = [d.device for d in sim.devices]
    injector = FaultInjector(sim, FaultRates.parse("all=0.05"), seed=3)
    t0 = time.time()
    stream = [m for r in range(200) for i in range(len(devices))
              for m in injector.next(i, ts=t0 + r * 0.05)] + injector.drain()
    raw = {}
    for m in stream:
        try:
            obj = orjson.loads(m.payload)
            raw[(obj["device"], obj["seq"], obj["ts"])] = obj["values"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            pass
    watcher = Recorder(address, topics.predictions_filter)
    watcher.publish(topics.model, encode_model(MODEL), retain=True)
    watcher.node.flush(5)
    gateway = Gateway(GatewayConfig("gw-0", SPEC, sync_every=10**6, sync_interval=600,
                                    cleaning=cleaning(devices)), topics, address)
    predictor = Predictor(PredictorConfig(spec=SPEC, kind="regression",
                                          cleaning=cleaning(devices)), topics, address)
    learned: dict = {}
    served: list = []
    record_learned(gateway, learned)
    record_served(predictor, served)
    with ServiceThread(gateway) as gw, ServiceThread(predictor) as pr:
        watcher.wait(lambda: gw.local.base_version == 1 and pr.model is not None,
                     what="both on the model")
        for m in stream:
            watcher.publish(topics.reading(m.site, m.device), m.payload)
        total = sum(injector.expected.values())
        watcher.wait(lambda: gw.pipeline.accounting.total == total
                     == pr.serving.pipeline.accounting.total, timeout=60,
                     what="every message judged by both")
    # stopped (each has flushed what it sent): every prediction sent has arrived
    watcher.wait(lambda: len(watcher.on("/prediction")) == pr.predictions, timeout=20,
                 what="every prediction arrived")
    assert pr.serving.pipeline.accounting.rejected == gw.pipeline.accounting.rejected
    keys = [key for key, _ in served]
    assert len(keys) == len(set(keys)) == len(learned) > 1000
    for key, x in served:
        np.testing.assert_array_equal(x, learned[key])
    # the cleaning did change what the model sees: imputed values, smoothed ones
    assert sum(q["imputed"] for q in gw.pipeline.quality().values()) > 0
    smoothed = [x[0] != raw[key]["temperature"] for key, x in served
                if raw.get(key, {}).get("temperature") is not None]
    assert sum(smoothed) > 100
    sent = {}
    for payload in watcher.on("/prediction"):
        p = orjson.loads(payload)
        sent[(p["device"], p["seq"], p["ts"])] = p["prediction"]
    assert len(sent) == len(learned)
    for key, x in learned.items():
        assert sent[key] == pytest.approx(float(x @ WEIGHTS + INTERCEPT), rel=1e-12)
    watcher.close()


@pytest.mark.timeout(120)
def test_two_predictors_split_batches_and_predict_each_reading_once(address, prefix):
    """Columnar batches of 20 in: each answered by one columnar batch; two predictors over
    buckets 0/2 and 1/2 together predict each reading the gateway learned, exactly once."""
    topics = Topics(prefix)
    sim = FleetSimulator(8, 2, seed=4)
    devices = [d.device for d in sim.devices]
    t0 = time.time()
    watcher = Recorder(address, topics.predictions_filter)
    watcher.publish(topics.model, encode_model(MODEL), retain=True)
    watcher.node.flush(5)
    gateway = Gateway(GatewayConfig("gw-0", SPEC, sync_every=10**6, sync_interval=600,
                                    cleaning=cleaning(devices)), topics, address)
    learned: dict = {}
    record_learned(gateway, learned)
    predictors = [Predictor(PredictorConfig(f"predictor-{i}", Partition(bucket=i, buckets=2),
                                            spec=SPEC, cleaning=cleaning(devices), qos=q),
                            topics, address) for i, q in ((0, 1), (1, 0))]
    batches = 0
    with (ServiceThread(gateway) as gw, ServiceThread(predictors[0]) as p0,
          ServiceThread(predictors[1]) as p1):
        watcher.wait(lambda: gw.local.base_version == 1 and p0.model and p1.model,
                     what="all on the model")
        for _ in range(10):
            for i, device in enumerate(sim.devices):
                batch = [sim.reading(i, t0 + k * 0.01) for k in range(20)]
                watcher.publish(topics.reading(device.site, device.device),
                                encode_reading_columns(batch))
                batches += 1
        watcher.wait(lambda: gw.learned == len(learned) == 8 * 10 * 20 - 8, timeout=60,
                     what="every reading learned (but each device's first: no lag)")
        watcher.wait(lambda: p0.predictions + p1.predictions == len(learned), timeout=30,
                     what="every learned reading predicted")
    watcher.wait(lambda: len(watcher.on("/prediction")) == batches, timeout=20,
                 what="one prediction message per batch")
    assert p0.predictions and p1.predictions and p0.foreign and p1.foreign
    predicted = []
    for payload in watcher.on("/prediction"):
        p = orjson.loads(payload)
        assert len(p["seq"]) == len(p["ts"]) == len(p["prediction"]) == len(p["actual"])
        assert p["model_version"] == 1 and p["target"] == "power"
        predicted += [(p["device"], s, t) for s, t in zip(p["seq"], p["ts"], strict=True)]
    assert len(predicted) == len(set(predicted)) == len(learned)
    assert set(predicted) == set(learned)
    watcher.close()


@pytest.mark.timeout(30)
def test_a_turn_that_reads_a_full_burst_says_the_predictor_is_behind():
    predictor = Predictor(PredictorConfig(spec=SPEC), Topics("p"), BrokerAddress(port=1))
    for _ in range(BURST):
        predictor.handle("p/s0/s0-d1/reading", b"{}")
    predictor.serve_pending()
    counters = predictor.counters()
    assert counters["behind"] == counters["full_turns"] == 1
    assert sum(counters["not_predicted"].values()) == counters["received"] == BURST
    assert predictor.counters()["behind"] == 0  # said for the interval that had it


@pytest.mark.timeout(120)
def test_a_predictor_behind_says_so_on_its_retained_status_and_recovers(address, prefix):
    """A flood queued at the broker before the predictor's first turn: the turn reads a full
    burst, the retained status (what a newcomer gets) says ``online behind``, which every
    reader takes for online; after a metrics interval without a full turn, plain ``online``."""
    topics = Topics(prefix)
    sim = FleetSimulator(10, 2, seed=5)
    predictor = Predictor(PredictorConfig(spec=SPEC, kind="regression", metrics_interval=600),
                          topics, address)
    predictor.take_model(MODEL, b"")
    predictor.connect()
    flood = Recorder(address)
    t0 = time.time()
    n = 5 * BURST
    for k in range(n):
        device = sim.devices[k % 10]
        flood.publish(topics.reading(device.site, device.device),
                      encode_reading(sim.reading(k % 10, t0 + k * 0.001)))
    assert flood.node.flush(30)  # acknowledged: the broker holds every one for the predictor
    books = predictor.serving.pipeline.accounting
    wait_until(lambda: predictor.full_turns > 0 or books.total == n, 60, predictor.node.poll,
               "a full turn or the whole flood")
    assert predictor.full_turns > 0
    assert predictor.node.flush(10)  # the status (QoS 1) is at the broker

    def retained_status() -> bytes:
        late = Recorder(address, topics.node_status("predictor"))
        late.wait(lambda: late.messages, what="the retained status")
        late.close()
        return late.messages[0][1]

    assert retained_status() == b"online behind"
    assert is_online(b"online behind") and details(b"online behind") == ("behind",)
    wait_until(lambda: books.total == n, 60, predictor.node.poll, "the whole flood judged")
    predictor.publish_metrics()  # the interval that had full turns: still behind
    predictor.node.poll(0.05)
    predictor.publish_metrics()  # an interval without one: caught up
    assert predictor.node.flush(10)
    assert predictor.counters()["full_turns"] == predictor.full_turns
    assert retained_status() == b"online"
    predictor.node.close(2.0)
    assert retained_status() == b"offline"
    flood.close()
