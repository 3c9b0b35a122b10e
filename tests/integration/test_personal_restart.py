"""A gateway process stopped and started again keeps its personal parts (its state dir): the
parts it publishes after the restart carry on from what it had learned, through a real
mosquitto, as an operator restarting a gateway would do it."""

import os
import signal
import subprocess
import sys

import orjson
import pytest

from broker.personal_codec import decode_personal
from broker.topics import Topics
from learners.checkpoint import CheckpointStore
from tests.mqtt_helpers import Recorder, run_fleetlearn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def start_gateway(address, prefix, state_dir, log):
    with open(log, "w") as err:  # the child has its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "fleetlearn", "--log-level", "INFO", "gateway", "--id",
             "gw-0", "--state-dir", str(state_dir), "--metrics-interval", "0.2",
             "--broker", str(address), "--prefix", prefix],
            stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5"})


def simulate(recorder, mosquitto, prefix):
    """One second of 4 devices on 2 sites that follow different truths."""
    run_fleetlearn(recorder, "devices", "simulate", "--devices", "4", "--sites", "2",
                   "--rate", "1000", "--duration", "1", "--heterogeneity", "0.3",
                   "--metrics-interval", "0.2", "--broker", f"127.0.0.1:{mosquitto.port}",
                   "--prefix", prefix)
    return orjson.loads(recorder.on("/metrics/fleet")[-1])["published"]


def run_once(recorder, mosquitto, address, prefix, tmp_path, n):
    """Start the gateway, simulate, wait until it learned all, stop it with SIGTERM."""
    log = tmp_path / f"gw-{n}.err"
    gw = start_gateway(address, prefix, tmp_path / "state", log)
    try:
        recorder.wait(lambda: b"online" in recorder.on("/status/gw-0") or gw.poll() is not None,
                      60, "the gateway online")
        assert gw.poll() is None, log.read_text()
        recorder.messages.clear()
        published = simulate(recorder, mosquitto, prefix)
        recorder.wait(lambda: any(orjson.loads(p).get("learned") == published
                                  for p in recorder.on("/metrics/gw-0")), 30,
                      "the gateway to learn every reading")
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(20) == 0, log.read_text()
    finally:
        if gw.poll() is None:
            gw.kill()
            gw.wait()
    return published, log.read_text()


def latest_parts(recorder) -> dict[str, int]:
    """Per site, the samples of the newest part published."""
    return {p.site: p.n for p in map(decode_personal, recorder.on("/personal/"))}


def test_a_restarted_gateway_carries_on_with_its_personal_parts(mosquitto, address, prefix,
                                                                tmp_path):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.metrics("fleet"), topics.metrics("gw-0"),
                        topics.node_status("gw-0"), *topics.personal_filters)
    try:
        first, log = run_once(recorder, mosquitto, address, prefix, tmp_path, 1)
        assert "resumed" not in log
        assert CheckpointStore(tmp_path / "state").files(), "no checkpoint at the stop"
        # the parts it published at its stop: every reading learned
        recorder.wait(lambda: sum(latest_parts(recorder).values()) == first, 10,
                      "the parts published at the stop")
        before = latest_parts(recorder)
        assert sorted(before) == ["s0", "s1"]

        recorder.messages.clear()
        second, log = run_once(recorder, mosquitto, address, prefix, tmp_path, 2)
        assert "resumed 2 personal parts" in log, log
        # each part counts on from what it had learned before the restart (from scratch, the
        # sum would be the second run's alone)
        recorder.wait(lambda: sum(latest_parts(recorder).values()) == first + second, 10,
                      "the parts to count both runs")
        after = latest_parts(recorder)
        assert all(after[site] > before[site] for site in before), (before, after)
    finally:
        recorder.close()
