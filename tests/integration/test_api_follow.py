"""fleetlearn.follow against a real mosquitto: the retained model is followed, a newer one
replaces it, a forged one is refused (counted, dead-lettered) under a trust file, and leaving
the context stops the thread and disconnects."""

import numpy as np
import orjson
import pytest

import fleetlearn
from broker.keyring import write_trust
from broker.messages import LinearParams, Model, Scaler
from broker.model_codec import encode_model
from broker.signing import PrivateKey, TrustedKey, sign
from broker.topics import Topics
from tests.mqtt_helpers import Recorder, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def payload(version: int, weight: float, **extra) -> bytes:
    params = LinearParams(("temp", "hour_cos"), np.array([weight, 1.0]), 0.0)
    return encode_model(Model(version, 0.0, 5, ("gw-0",), "humid", params,
                              Scaler(5, np.zeros(3), np.ones(3)), **extra))


def test_follow_keeps_the_latest_model_and_stops_on_exit(address, prefix):
    topics = Topics(prefix)
    peer = Recorder(address)
    try:
        peer.publish(topics.model, payload(1, 2.0), retain=True)
        peer.node.flush(5)
        with fleetlearn.follow(address, prefix=prefix) as models:
            assert models.wait(timeout=10).version == 1  # the retained one, at once
            assert models.predict_one({"temp": 3.0}, ts=0.0) == pytest.approx(7.0)
            peer.publish(topics.model, payload(2, 5.0), retain=True)
            wait_until(lambda: models.model.version == 2, 10, peer.poll, "model v2")
            assert models.predict_one({"temp": 3.0}, ts=0.0) == pytest.approx(16.0)
            # the fleet restarted with another local time (or task): followed afresh (before,
            # the swap raised in the client's thread and the follower stayed on v2)
            zone = {"default": "+05:00", "zones": {}}
            peer.publish(topics.model, payload(3, 5.0, local_time=zone), retain=True)
            wait_until(lambda: models.model.version == 3, 10, peer.poll, "model v3")
            assert models.predict_one({"temp": 3.0}, ts=0.0) == pytest.approx(
                15.0 + np.cos(2 * np.pi * 5 / 24))  # hour_cos of 05:00, no longer of 00:00
            assert models.running and models.node.connected and models.taken == 3
        assert not models.running and not models.node.connected
    finally:
        peer.close()


def test_without_a_model_predict_says_so(address, prefix):
    with fleetlearn.follow(address, prefix=prefix) as models:
        with pytest.raises(fleetlearn.NoModelYet, match="wait"):
            models.predict_one({"temp": 1.0}, ts=0.0)
        with pytest.raises(TimeoutError, match="no model above v0"):
            models.wait(timeout=0.3)


def test_with_a_trust_file_a_forged_or_replayed_model_is_not_taken(address, prefix, tmp_path):
    topics = Topics(prefix)
    agg, forger = PrivateKey.generate(), PrivateKey.generate()
    trust = tmp_path / "trust.toml"
    write_trust(trust, [TrustedKey(agg.kid, "aggregator", "aggregator", agg.public)])
    peer = Recorder(address, topics.deadletter_filter)
    try:
        peer.publish(topics.model, sign(payload(2, 2.0), agg, "model"), retain=True)
        peer.node.flush(5)
        with fleetlearn.follow(address, prefix=prefix, trust=trust) as models:
            assert models.wait(timeout=10).version == 2
            # an older genuine model sent again: refused, though v2 is only provisional (before,
            # as in the gateway and predictor it was not, it replaced v2)
            peer.publish(topics.model, sign(payload(1, 1e6), agg, "model"))
            peer.publish(topics.model, sign(payload(3, 1e6), forger, "model"))
            peer.publish(topics.model, payload(4, 1e6))  # unsigned
            peer.publish(topics.model, sign(payload(5, 5.0), agg, "model"))
            wait_until(lambda: models.model.version == 5, 10, peer.poll, "model v5")
            assert models.taken == 2  # v2 and v5, never the replayed, forged or unsigned
            assert dict(models.refused) == {"model_replayed": 1, "model_unknown_key": 1,
                                            "model_unsigned": 1}
            peer.wait(lambda: len(peer.on("deadletter")) == 3, what="three dead letters")
            reasons = sorted(orjson.loads(p)["reason"] for p in peer.on("deadletter"))
            assert reasons == ["model_replayed", "model_unknown_key", "model_unsigned"]
    finally:
        peer.close()
