"""Overload said out loud, against a real mosquitto: a fleet whose broker stops answering
counts what its send buffer cannot hold, and an `up` whose readings are not all taken in by the
drain deadline says so and exits with code 3."""

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from broker.reading_codec import decode_readings
from broker.topics import Topics
from devices.fleet import Fleet, FleetConfig
from tests.mqtt_helpers import Recorder, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(120)]


def test_a_fleet_whose_broker_stops_answering_counts_what_its_send_buffer_cannot_hold(
        mosquitto, address, prefix):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.readings_filter())
    fleet = Fleet(FleetConfig(devices=4, sites=1, rate=2000.0, send_buffer=20,
                              metrics_interval=60.0), topics, address)
    fleet.connect()
    wait_until(lambda: fleet.published > 0, 10, lambda: fleet.node.poll(0.01),
               "the first acknowledged reading")
    os.kill(mosquitto.process.pid, signal.SIGSTOP)  # the broker takes nothing, acks nothing
    try:
        # acknowledgements the broker wrote before it stopped may still come in: wait until
        # the buffer is full now, and has overflowed
        wait_until(lambda: fleet.send_buffer_full > 0 and fleet.node.unacked >= 20, 10,
                   lambda: fleet.node.poll(0.01), "the send buffer to overflow")
        assert fleet.published < fleet.sent
    finally:
        os.kill(mosquitto.process.pid, signal.SIGCONT)
    assert fleet.node.flush(10)  # network only: no more readings are made
    fleet.node.close()
    # every reading sent is acknowledged now, and none was made for the overflow
    assert fleet.published == fleet.sent == fleet.sim.published
    assert fleet.counters()["send_buffer_full"] == fleet.send_buffer_full > 0

    def received() -> int:
        return sum(len(decode_readings(p)) for p in recorder.on("/reading"))

    recorder.wait(lambda: received() >= fleet.published, what="every published reading")
    assert received() == fleet.published
    seqs: dict[str, list[int]] = defaultdict(list)
    for payload in recorder.on("/reading"):
        for reading in decode_readings(payload):
            seqs[reading.device].append(reading.seq)
    assert all(s == list(range(len(s))) for s in seqs.values()), "no gap for the overflow"
    recorder.close()


def child_pid(parent: int, *words: str) -> int | None:
    """The pid of a child of ``parent`` whose command line holds ``words`` in order."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        wanted = [w.encode() for w in words]
        if ppid == parent and any(argv[i:i + len(wanted)] == wanted for i in range(len(argv))):
            return int(entry.name)
    return None


def test_up_whose_readings_are_not_taken_in_by_the_drain_deadline_exits_3(
        mosquitto, address, prefix, tmp_path):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.metrics("fleet"))
    report_path = tmp_path / "report.json"
    up = subprocess.Popen([
        sys.executable, "-m", "fleetlearn", "up", "--broker", f"127.0.0.1:{mosquitto.port}",
        "--prefix", prefix, "--devices", "4", "--sites", "2", "--gateways", "2",
        "--rate", "500", "--duration", "3", "--drain-timeout", "0.5", "--quiet",
        "--report", str(report_path), "--log-dir", str(tmp_path / "logs"),
    ], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = None
    try:
        def fleet_publishing() -> bool:
            metrics = [orjson.loads(p) for p in recorder.on("/metrics/fleet")]
            return bool(metrics) and metrics[-1]["published"] > 0

        recorder.wait(fleet_publishing, timeout=60, what="the fleet to publish")
        stopped = child_pid(up.pid, "--id", "gw-0")
        assert stopped is not None
        os.kill(stopped, signal.SIGSTOP)  # gw-0 takes in nothing more; `up` ends it later
        recorder.wait(lambda: up.poll() is not None, timeout=90, what="up to end")
        out, err = up.communicate(timeout=10)
    finally:
        if up.poll() is None:
            up.kill()
        if stopped is not None and child_pid(up.pid, "--id", "gw-0") == stopped:
            os.kill(stopped, signal.SIGKILL)
        recorder.close()
    assert up.returncode == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not accounted for" in lines[0] and str(report_path) in lines[0]
    assert "NOT accounted for" in out  # the summary is printed all the same
    report = json.loads(report_path.read_text())
    r = report["readings"]
    assert report["accounted"] is False and r["not_taken_in"] > 0
    assert r["unaccounted"] == r["not_taken_in"]
    assert r["published"] == (r["learned"] + sum(r["rejected"].values()) + r["lost"]
                              + r["not_taken_in"] - r["surplus"])
