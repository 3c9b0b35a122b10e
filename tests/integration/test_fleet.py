"""The simulated fleet's command against a real mosquitto: batches in either layout."""

from collections import defaultdict

import orjson
import pytest

from broker.reading_codec import decode_readings
from broker.topics import Topics
from tests.mqtt_helpers import Recorder, run_fleetlearn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_fleet_sends_whole_batches_of_one_device_in_the_layout_asked(mosquitto, address, prefix,
                                                                     layout):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.readings_filter(), topics.metrics("fleet"))
    run_fleetlearn(
        recorder, "devices", "simulate", "--devices", "3", "--sites", "1", "--rate", "300",
        "--batch", "5", "--layout", layout, "--duration", "1", "--metrics-interval", "0.2",
        "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix)

    def published() -> int:
        metrics = [orjson.loads(p) for p in recorder.on("/metrics/fleet")]
        return metrics[-1]["published"] if metrics else -1

    def readings() -> int:
        return sum(len(decode_readings(p)) for p in recorder.on("/reading"))

    recorder.wait(lambda: readings() == published() > 0, what="every published reading")
    seqs: dict[str, list[int]] = defaultdict(list)
    for topic, payload in recorder.messages:
        if not topic.endswith("/reading"):
            continue
        data = orjson.loads(payload)
        assert isinstance(data, dict if layout == "columns" else list)
        batch = decode_readings(payload)
        assert len(batch) == 5 and {r.device for r in batch} == {topic.split("/")[-2]}
        seqs[batch[0].device] += [r.seq for r in batch]
    assert len(seqs) == 3
    assert all(s == list(range(len(s))) for s in seqs.values()), seqs
    recorder.close()
