"""Every model the aggregator broadcasts in a real run fits the committed JSON Schema, and a
model in a newer major format is refused by a gateway as ``model_format``."""

import json
import time
from pathlib import Path

import jsonschema
import orjson
import pytest

from broker.keyring import Keyring, write_private
from broker.messages import Reading
from broker.model_codec import FORMAT, decode_model
from broker.reading_codec import encode_readings
from broker.signing import PrivateKey
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.partition import Partition
from gateway.service import Gateway
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "model.schema.json")
                    .read_text(encoding="utf-8"))
# every kind of feature the docs describe: a channel, the cyclic ones, a lag, a site
SPEC = FeatureSpec(("a", "hour_sin", "hour_cos", "doy_sin", "doy_cos", "lag1_a", "site_s0"), "y")


def readings(site: str, start: int, count: int) -> bytes:
    now = time.time()
    return encode_readings([
        Reading(f"{site}-d1", seq, now, {"a": float(seq % 7), "y": 2.0 * (seq % 7) + 1.0})
        for seq in range(start, start + count)])


@pytest.mark.parametrize("signed", [False, True])
def test_every_model_the_aggregator_broadcasts_fits_the_schema(address, prefix, tmp_path,
                                                               signed):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model)
    keyring = None
    if signed:  # the aggregator signs its models (the gateways take them as they are)
        write_private(tmp_path / "aggregator.key", PrivateKey.generate().to_pem())
        keyring = Keyring(tmp_path / "aggregator.key")
    aggregator = Aggregator(AggregatorConfig(
        federation=FederationConfig(SyncRounds(round_timeout=30), quorum=2), keyring=keyring),
        topics, address)
    gateways = [Gateway(GatewayConfig(f"gw-{i}", SPEC, partition=Partition(sites=(site,)),
                                      sync_every=10, sync_interval=60), topics, address)
                for i, site in enumerate(("s0", "s1"))]
    with ServiceThread(aggregator), ServiceThread(gateways[0]), ServiceThread(gateways[1]):
        seq = 0
        deadline = time.monotonic() + 30
        while len(watcher.on("/learn/model")) < 4 and time.monotonic() < deadline:
            for site in ("s0", "s1"):  # bounded: 20 readings a site per turn, for 30 s at most
                watcher.publish(topics.reading(site, f"{site}-d1"), readings(site, seq, 20))
            seq += 20
            watcher.wait(lambda s=seq: all(g.learned >= s - 1 for g in gateways),
                         what="both gateways learned the batch")
    payloads = watcher.on("/learn/model")
    assert len(payloads) >= 4, f"{len(payloads)} models in 30 s"
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for payload in payloads:
        validator.validate(orjson.loads(payload))
    models = [decode_model(p) for p in payloads]
    assert [m.version for m in models] == list(range(1, len(models) + 1))
    assert all(m.params.features == SPEC.features for m in models)
    assert all(orjson.loads(p)["format"] == FORMAT for p in payloads)
    assert all(("sig" in orjson.loads(p)) is signed for p in payloads)
    watcher.close()


def test_a_gateway_refuses_a_newer_major_format_as_model_format(address, prefix):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.deadletter_filter)
    model = {"format": "2.0", "version": 3, "ts": 1.0, "n": 10, "contributors": ["gw-9"],
             "target": "y", "kind": "regression", "features": ["a"], "weights": [1.0],
             "intercept": 0.0, "scaler": {"count": 10, "mean": [0.0, 0.0], "m2": [1.0, 1.0]}}
    config = GatewayConfig("gw-0", FeatureSpec(("a",), "y"), sync_interval=60)
    with ServiceThread(Gateway(config, topics, address)) as gateway:
        watcher.publish(topics.model, orjson.dumps(model))
        watcher.wait(lambda: watcher.on("/deadletter/"), what="the model dead-lettered")
        assert gateway.other_rejected["model_format"] == 1
        assert gateway.local.base_version == 0
    letter = orjson.loads(watcher.on("/deadletter/")[0])
    assert letter["reason"] == "model_format"
    assert "newer than this reader's 1.x" in letter["detail"]
    watcher.close()
