"""Kept sessions through a real mosquitto: what was queued for an absent node comes when it is
back, the retained model outlives a kill -9 of the broker, one live process per node id."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from broker.address import BrokerAddress
from broker.messages import Reading
from broker.mosquitto import MosquittoBroker, find_mosquitto, free_port, port_accepts
from broker.presence import Claim, NodeConflict, check_free
from broker.reading_codec import encode_reading
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from tests.mqtt_helpers import Recorder, ServiceThread, wait_until

pytestmark = [pytest.mark.integration]


def gateway_config(node_id: str = "gw-0") -> GatewayConfig:
    return GatewayConfig(node_id, FeatureSpec(("a", "b"), "y"), sync_every=10_000)


def send_readings(sender: Recorder, topics: Topics, seqs: range) -> None:
    """QoS 1 readings of device s0-d1, acknowledged by the broker when this returns."""
    for seq in seqs:
        reading = Reading("s0-d1", seq, time.time(), {"a": float(seq % 7), "b": 1.0,
                                                      "y": 2.0 * (seq % 7)})
        sender.publish(topics.reading("s0", "s0-d1"), encode_reading(reading), qos=1)
        if seq % 200 == 0:
            sender.node.poll(0)
    assert sender.node.flush(30)


def idle() -> None:
    time.sleep(0.02)


@pytest.mark.timeout(120)
def test_a_gateway_that_comes_back_learns_what_the_broker_queued_while_it_was_away(
        address, prefix):
    topics = Topics(prefix)
    sender = Recorder(address)
    n = 1000
    with ServiceThread(Gateway(gateway_config(), topics, address)) as first:
        send_readings(sender, topics, range(n // 2))
        wait_until(lambda: first.learned == n // 2, 30, idle, "the first half learned")
    # the gateway is gone: the broker queues the second half on its session
    send_readings(sender, topics, range(n // 2, n))
    with ServiceThread(Gateway(gateway_config(), topics, address)) as back:
        wait_until(lambda: back.pipeline.accounting.total == n // 2
                   and back.learned == back.pipeline.accounting.admitted, 30, idle,
                   "the queued half accounted for")
        assert back.learned == n // 2
        assert dict(back.pipeline.accounting.rejected) == {}
        assert back.pipeline.gaps == 0
    assert first.learned + back.learned == n
    sender.close()


@pytest.mark.timeout(60)
def test_the_retained_model_survives_a_kill_9_of_the_broker(tmp_path, prefix):
    topics = Topics(prefix)
    data_dir = tmp_path / "broker"
    broker = MosquittoBroker(data_dir=data_dir).start()
    address = BrokerAddress(port=broker.port)
    model = f'{{"version": 7, "token": "{uuid.uuid4().hex}"}}'.encode()
    publisher = Recorder(address)
    publisher.publish(topics.model, model, qos=1, retain=True)
    assert publisher.node.flush(10)
    db = data_dir / "mosquitto.db"
    # the broker's autosave has written the model to disk
    wait_until(lambda: db.exists() and model in db.read_bytes(), 10, idle, "an autosave")
    publisher.node.stop()
    broker.process.kill()
    broker.stop()
    again = MosquittoBroker(port=address.port, data_dir=data_dir).start()
    try:
        reader = Recorder(address, topics.model)
        reader.wait(lambda: reader.on(topics.model) == [model], 5, "the retained model")
        reader.close()
    finally:
        again.stop()


@pytest.mark.timeout(120)
def test_a_second_gateway_with_the_same_id_is_refused_and_the_first_keeps_working(
        address, prefix):
    topics = Topics(prefix)
    sender = Recorder(address)
    with ServiceThread(Gateway(gateway_config(), topics, address)) as first:
        second = Gateway(gateway_config(), topics, address)
        with pytest.raises(NodeConflict, match=r"^another node is connected as gw-0$"):
            second.connect()
        send_readings(sender, topics, range(100))
        wait_until(lambda: first.learned == 100, 30, idle, "the first gateway learning")
        assert first.node.connected and first.node.connections == 1
        assert not first.conflict
    sender.close()


@pytest.mark.timeout(120)
def test_the_command_started_second_exits_1_naming_the_id(address, prefix):
    topics = Topics(prefix)
    with ServiceThread(Gateway(gateway_config(), topics, address)) as first:
        done = subprocess.run(
            [sys.executable, "-m", "fleetlearn", "gateway", "--id", "gw-0", "--features", "a,b",
             "--target", "y", "--broker", f"127.0.0.1:{address.port}", "--prefix", prefix],
            capture_output=True, text=True, timeout=90,
            env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5"})
        assert done.returncode == 1, done.stderr
        assert "another node is connected as gw-0" in done.stderr
        assert first.node.connected and first.node.connections == 1


@pytest.mark.timeout(60)
def test_a_running_node_that_sees_a_newer_claim_stops_without_saying_offline(address, prefix):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.node_status("gw-0"))
    gateway = Gateway(gateway_config(), topics, address)
    gateway.connect()
    raised: list[BaseException] = []

    def loop() -> None:
        try:
            gateway.loop()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    newer = Claim(gateway.claim.ns + 1, "newcomer")
    watcher.publish(topics.claim("gw-0"), newer.encode(), qos=1, retain=True)
    watcher.wait(lambda: not thread.is_alive(), 10, "the gateway to stop")
    assert isinstance(raised[0], NodeConflict) and "gw-0" in str(raised[0])
    assert b"offline" not in watcher.on(topics.node_status("gw-0"))
    watcher.close()


@pytest.mark.timeout(60)
def test_a_stale_online_status_is_taken_over_after_the_wait(address, prefix):
    topics = Topics(prefix)
    stale = Recorder(address)
    stale.publish(topics.node_status("gw-9"), b"online", qos=1, retain=True)
    assert stale.node.flush(5)
    claim = Claim.new()
    check_free("gw-9", topics, address, claim, wait=0.5)  # no one answers: the id is ours
    reader = Recorder(address, topics.claim("gw-9"))
    reader.wait(lambda: reader.on("claim") == [claim.encode()], 5, "our retained claim")
    reader.close()
    stale.close()


@pytest.fixture
def plain_mosquitto(tmp_path):
    """A mosquitto with nothing but a listener: its defaults, as someone else's broker has."""
    port = free_port()
    conf = tmp_path / "plain.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_accepts("127.0.0.1", port), 10, idle, "the plain broker")
        yield BrokerAddress(port=port)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.timeout(60)
def test_a_node_warns_once_about_a_broker_fleetlearn_did_not_configure(
        plain_mosquitto, address, prefix, caplog):
    caplog.set_level(logging.WARNING, logger="broker.service")
    for where in (plain_mosquitto, address):
        predictor = Predictor(PredictorConfig(), Topics(prefix), where)
        predictor.connect()
        predictor.node.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # the plain broker's, not ours
    assert "max_inflight_messages is 20" in warnings[0]
    for setting in ("max_queued_messages", "set_tcp_nodelay", "autosave_interval"):
        assert setting in warnings[0]


def accounted(gateway: Gateway) -> int:
    """Every reading the gateway has an outcome for: learned, rejected, or a gap."""
    return (gateway.learned + sum(gateway.pipeline.accounting.rejected.values())
            + gateway.pipeline.gaps)


@pytest.mark.timeout(120)
def test_a_gateway_stopped_under_traffic_and_started_again_loses_no_reading(address, prefix):
    """Readings a stopping gateway read but did not handle (its last turn, its flush) are not
    acknowledged: the broker gives them to the next run (paho's own acks lost 39 of 20,000
    here). The sender keeps going, at most ~20,000 a second, while the gateway is stopped and
    started three times, each run learning 500 at least: every stop and start is under
    traffic."""
    topics, cap = Topics(prefix), 50_000
    sender, enough, sent = Recorder(address), threading.Event(), []

    def publish() -> None:  # the sender's node is this thread's alone
        for seq in range(cap):
            reading = Reading("s0-d1", seq, time.time(), {"a": float(seq % 7), "b": 1.0,
                                                          "y": 2.0 * (seq % 7)})
            sender.publish(topics.reading("s0", "s0-d1"), encode_reading(reading), qos=1)
            sent.append(seq)
            if seq % 20 == 0:
                sender.node.pump(0)
                if enough.wait(0.001):  # the pace, and the end
                    break
        sender.node.flush(60)

    thread = threading.Thread(target=publish, daemon=True)
    runs: list[Gateway] = []
    for _ in range(3):  # each run stopped while readings keep coming
        with ServiceThread(Gateway(gateway_config(), topics, address)) as gateway:
            runs.append(gateway)
            if len(runs) == 1:
                thread.start()
            wait_until(lambda: runs[-1].learned >= 500, 30, idle, "this run learning")
    with ServiceThread(Gateway(gateway_config(), topics, address)) as last:
        runs.append(last)
        wait_until(lambda: last.learned >= 500, 30, idle, "the last run learning")
        assert len(sent) < cap, "the sender ran out while the gateways came and went"
        enough.set()
        thread.join(60)
        assert not thread.is_alive() and sender.node.delivered
        n = len(sent)  # every one acknowledged by the broker
        wait_until(lambda: sum(map(accounted, runs)) >= n, 30, idle,
                   f"all {n} readings accounted for")
    assert sum(map(accounted, runs)) == n
    assert [dict(run.pipeline.accounting.rejected) for run in runs] == [{}] * 4
    assert [run.pipeline.gaps for run in runs] == [0] * 4
    assert sum(run.learned for run in runs) == n
    sender.close()
