"""Local time over a real mosquitto: a gateway computes hour features in the zones of its
sites and devices; a predictor told no task takes the zones from the model message and serves
every reading from the gateway's own feature vector."""

import time

import numpy as np
import pytest

from broker.messages import LinearParams, Model, Scaler
from broker.model_codec import encode_model
from broker.reading_codec import encode_reading
from broker.topics import Topics
from devices.simulator import FleetSimulator
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.local_time import LocalTime
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from tests.integration.test_predictor_parity import cleaning, record_learned, record_served
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration]

ZONES = LocalTime("America/New_York", {"s1": "Asia/Kolkata", "s0-d0002": "+05:45"})
SPEC = FeatureSpec(("temperature", "hour_sin", "hour_cos", "doy_sin", "device_s0-d0002",
                    "site_s1"), "power", ZONES)
WEIGHTS, INTERCEPT = np.array([0.3, 2.0, -1.0, 0.5, 4.0, -3.0]), 1.5


@pytest.mark.timeout(120)
def test_the_predictor_takes_the_zones_from_the_model_and_serves_the_gateways_features(
        address, prefix):
    topics = Topics(prefix)
    sim = FleetSimulator(4, 2, seed=5)
    devices = [d.device for d in sim.devices]
    t0 = time.time()
    readings = [(sim.devices[i], sim.reading(i, ts=t0 + r * 0.05)) for r in range(100)
                for i in range(len(devices))]
    model = Model(1, time.time(), 1, (), "power", LinearParams(SPEC.features, WEIGHTS,
                                                                INTERCEPT),
                  Scaler.empty(len(SPEC.features) + 1), local_time=ZONES.as_dict())
    watcher = Recorder(address, topics.predictions_filter)
    watcher.publish(topics.model, encode_model(model), retain=True)
    watcher.node.flush(5)
    gateway = Gateway(GatewayConfig("gw-0", SPEC, sync_every=10**6, sync_interval=600,
                                    cleaning=cleaning(devices)), topics, address)
    predictor = Predictor(PredictorConfig(cleaning=cleaning(devices)), topics, address)
    learned: dict = {}
    served: list = []
    record_learned(gateway, learned)
    record_served(predictor, served)
    with ServiceThread(gateway) as gw, ServiceThread(predictor) as pr:
        watcher.wait(lambda: gw.local.base_version == 1 and pr.model is not None,
                     what="both on the model")
        for device, reading in readings:
            watcher.publish(topics.reading(device.site, device.device), encode_reading(reading))
        watcher.wait(lambda: gw.pipeline.accounting.total == len(readings)
                     == pr.serving.pipeline.accounting.total, timeout=60,
                     what="every reading judged by both")
    assert pr.serving.pipeline.spec.local_time == ZONES
    assert len(served) == len(learned) == len(readings)
    for key, x in served:
        np.testing.assert_array_equal(x, learned[key])
    # the zones made a difference: three different local hours at the same instant
    hours = {round(float(np.arctan2(x[1], x[2])), 6) for (device, seq, _), x in served
             if seq == 0}
    assert len(hours) == 3
    assert {x[4] for x in learned.values()} == {0.0, 1.0}
    watcher.close()
