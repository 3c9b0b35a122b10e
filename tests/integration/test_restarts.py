"""Devices that restart their sequence numbers, through a real mosquitto into a gateway: a new
boot id is learned at once, an old boot's message is refused as old_boot and dead-lettered."""

import time

import orjson
import pytest

from broker.messages import Reading
from broker.reading_codec import encode_batch, encode_reading
from broker.topics import Topics
from devices.simulator import FleetSimulator
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.service import Gateway
from tests.mqtt_helpers import Recorder, ServiceThread, run_fleetlearn, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SPEC = FeatureSpec(("a", "b"), "y")


def reading(boot: int, seq: int) -> Reading:
    return Reading("s0-d1", seq, time.time(), {"a": float(seq % 7), "b": 1.0,
                                               "y": 2.0 * (seq % 7)}, boot)


def test_a_device_that_restarts_is_learned_at_once_and_an_old_boot_refused(address, prefix):
    topics = Topics(prefix)
    sender = Recorder(address, topics.deadletter_filter)
    topic = topics.reading("s0", "s0-d1")
    config = GatewayConfig("gw-0", SPEC, sync_every=100000)
    first, second = 500, 300  # the second boot's numbers stay far below the first's mark
    with ServiceThread(Gateway(config, topics, address)) as gw:
        for seq in range(first):
            sender.publish(topic, encode_reading(reading(1_000, seq)))
        for start in range(0, second, 10):  # the new boot in batches, both layouts
            batch = [reading(1_001, seq) for seq in range(start, start + 10)]
            sender.publish(topic, encode_batch(batch, "rows" if start % 20 else "columns"))
        sender.publish(topic, encode_reading(reading(1_000, first)))  # the old boot, again
        sender.publish(topic, encode_reading(reading(1_001, 5)))  # the new boot's, replayed
        assert sender.node.flush(30)
        wait_until(lambda: gw.pipeline.accounting.total == first + second + 2
                   and gw.learned == gw.pipeline.accounting.admitted, 30, sender.poll,
                   "the gateway to account for every reading")
        assert gw.learned == first + second  # every reading after the restart learned
        assert dict(gw.pipeline.accounting.rejected) == {"old_boot": 1, "replay": 1}
        assert gw.pipeline.restarts == 1 and gw.pipeline.gaps == 0
        sender.wait(lambda: len(sender.on("/deadletter/gw-0")) == 2, what="2 dead letters")
    letters = {orjson.loads(p)["reason"]: orjson.loads(p) for p in sender.on("/deadletter/")}
    assert set(letters) == {"old_boot", "replay"}
    assert "boot 1000" in letters["old_boot"]["detail"]
    sender.close()


def test_a_restarted_simulator_is_learned_not_refused_as_replay(mosquitto, address, prefix):
    """The simulated fleet run twice against one gateway: the second run numbers its readings
    from 0 again, under a larger boot id (its start time in ms)."""
    topics = Topics(prefix)
    truth = FleetSimulator(1).truth
    recorder = Recorder(address, topics.metrics("fleet"))
    config = GatewayConfig("gw-0", FeatureSpec(truth.features, truth.target), sync_every=100000)
    with ServiceThread(Gateway(config, topics, address)) as gw:
        published = 0
        for _ in range(2):
            recorder.messages.clear()
            run_fleetlearn(recorder, "devices", "simulate", "--devices", "2", "--sites", "1",
                           "--rate", "400", "--duration", "1", "--metrics-interval", "0.2",
                           "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix)
            published += orjson.loads(recorder.on("/metrics/fleet")[-1])["published"]
        wait_until(lambda: gw.pipeline.accounting.total == published, 30, recorder.poll,
                   "the gateway to account for both runs")
        assert published > 400 and gw.pipeline.accounting.admitted == published
        assert not gw.pipeline.accounting.rejected and gw.pipeline.restarts == 2
    recorder.close()
