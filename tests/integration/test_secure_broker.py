"""The secured broker (``broker/secure.py``'s files) against the real Mosquitto, spoken to with
Mosquitto's own clients: who gets in, and what each role may read and write.

A refused publish is proven absent by order: one connection's messages, and messages each
routed before the next is published (``mosquitto_pub -q 1`` exits after the PUBACK, which the
broker sends once it has routed the message), reach a subscriber in order; so a permitted
message published after the forbidden one arriving first means the forbidden one was dropped.
"""

from __future__ import annotations

import pytest

from broker import pki
from broker.secure import SecureDir
from broker.topics import Topics
from tests.cli_clients import Subscriber, login, publish

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def files(tmp_path, secure_mosquitto) -> SecureDir:
    return SecureDir(tmp_path / "secure")


def refused(result) -> bool:
    """The broker refused the connection as not authorised (MQTT 5's CONNACK reason)."""
    return result.returncode != 0 and "Connection error: Not authorized" in result.stderr


def test_anonymous_and_wrong_password_are_refused(secure_mosquitto, files, prefix):
    topic = Topics(prefix).model
    assert refused(publish(login(secure_mosquitto, files, None), topic, "x"))
    assert refused(publish(login(secure_mosquitto, files, "aggregator", "wrong"), topic, "x"))
    assert refused(publish(login(secure_mosquitto, files, "nobody", "x"), topic, "x"))
    ok = publish(login(secure_mosquitto, files, "aggregator"), topic, "x")
    assert ok.returncode == 0 and "not authori" not in ok.stderr.lower(), ok.stderr


def test_a_client_without_the_ca_cannot_connect(secure_mosquitto, files, prefix, tmp_path):
    topic = Topics(prefix).model
    other = tmp_path / "other-ca.crt"
    pki.save(pki.make_ca("someone else"), tmp_path / "other-ca.key", other)
    plain = publish(login(secure_mosquitto, files, "aggregator", cafile=False), topic, "x")
    assert plain.returncode != 0
    wrong_ca = publish(login(secure_mosquitto, files, "aggregator", cafile=other), topic, "x")
    assert wrong_ca.returncode != 0
    assert "TLS error" in wrong_ca.stderr
    assert publish(login(secure_mosquitto, files, "aggregator"), topic, "x").returncode == 0


def test_the_monitor_sees_the_model_the_aggregator_retained(secure_mosquitto, files, prefix):
    t = Topics(prefix)
    assert publish(login(secure_mosquitto, files, "aggregator"), t.model, "v1",
                   retain=True).returncode == 0
    monitor = Subscriber(login(secure_mosquitto, files, "monitor"), t.model)
    try:
        monitor.wait(lambda: monitor.messages, "the retained model")
        assert monitor.messages == [f"{t.model} v1"]
    finally:
        monitor.close()


def test_a_device_writes_its_own_reading_only(secure_mosquitto, files, prefix):
    t = Topics(prefix)
    watcher = Subscriber(login(secure_mosquitto, files, "predictor"), t.model,
                         t.readings_filter())
    device = login(secure_mosquitto, files, "s0-d0001")
    try:
        watcher.wait_subscribed()
        forged_model = publish(device, t.model, "forged")
        assert "not authorized" in forged_model.stderr.lower()
        publish(device, t.reading("s0", "s0-d0002"), "forged")
        publish(device, t.reading("s1", "s0-d0002"), "forged")
        own = t.reading("s0", "s0-d0001")
        assert publish(device, own, "mine").returncode == 0
        watcher.wait(lambda: watcher.messages, "the device's own reading")
        assert watcher.messages == [f"{own} mine"]
    finally:
        watcher.close()


def test_a_gateway_cannot_write_the_model(secure_mosquitto, files, prefix):
    t = Topics(prefix)
    monitor = Subscriber(login(secure_mosquitto, files, "monitor"), t.model,
                         t.node_status_filter)
    gateway = login(secure_mosquitto, files, "gw-0")
    try:
        monitor.wait_subscribed()
        publish(gateway, t.model, "forged")
        publish(gateway, t.node_status("gw-1"), "forged")  # another gateway's status
        assert publish(gateway, t.node_status("gw-0"), "online").returncode == 0
        monitor.wait(lambda: monitor.messages, "the gateway's own status")
        assert monitor.messages == [f"{t.node_status('gw-0')} online"]
    finally:
        monitor.close()


def test_subscribing_to_everything_gives_only_what_the_role_may_read(secure_mosquitto, files,
                                                                      prefix):
    """Mosquitto 2.0 accepts any subscription and checks every message it would deliver: a
    device's ``#`` receives nothing, a gateway's ``#`` only readings and the model."""
    t = Topics(prefix)
    aggregator = login(secure_mosquitto, files, "aggregator")
    assert publish(aggregator, t.model, "v1", retain=True).returncode == 0
    with (Subscriber(login(secure_mosquitto, files, "s0-d0001"), "#", keepalive=5) as device,
          Subscriber(login(secure_mosquitto, files, "gw-0"), "#") as gateway):
        device.wait_subscribed()
        gateway.wait_subscribed()
        publish(login(secure_mosquitto, files, "gw-1"), t.metrics("gw-1"), "{}")
        publish(login(secure_mosquitto, files, "predictor"), t.prediction("s0", "s0-d0001"), "p")
        publish(login(secure_mosquitto, files, "fleet"), t.reading("s0", "s0-d0001"), "r")
        assert publish(aggregator, t.model, "v2", retain=True).returncode == 0
        gateway.wait(lambda: len(gateway.messages) >= 3, "the model, the reading, the model")
        assert gateway.messages == [f"{t.model} v1", f"{t.reading('s0', 's0-d0001')} r",
                                    f"{t.model} v2"]
        # the device's connection: the answer to a ping it sends from now on comes after
        # anything the broker routed to it before (one connection's packets stay in order)
        sent = device.count("sending PINGREQ")
        device.wait(lambda: device.count("received PINGRESP") > sent, "a ping after the publishes")
        assert device.messages == []


def test_the_predictor_reads_readings_and_the_model(secure_mosquitto, files, prefix):
    t = Topics(prefix)
    predictor = Subscriber(login(secure_mosquitto, files, "predictor"), t.model,
                           t.readings_filter())
    try:
        predictor.wait_subscribed()
        publish(login(secure_mosquitto, files, "s0-d0002"), t.reading("s0", "s0-d0002"), "r")
        publish(login(secure_mosquitto, files, "aggregator"), t.model, "v3", retain=True)
        predictor.wait(lambda: len(predictor.messages) >= 2, "a reading and the model")
        assert predictor.messages == [f"{t.reading('s0', 's0-d0002')} r", f"{t.model} v3"]
    finally:
        predictor.close()


def test_the_broker_command_secured_says_how_to_connect_and_refuses_strangers(tmp_path):
    """``fleetlearn broker --secure``: files made, one TLS listener, the monitor's password
    works, a made-up one does not; SIGTERM stops its mosquitto."""
    import re
    import signal
    import subprocess
    import sys

    from tests.conftest import process_alive
    from tests.mqtt_helpers import wait_until

    where = tmp_path / "secure"
    proc = subprocess.Popen([sys.executable, "-m", "fleetlearn", "broker", "--secure", "--port",
                             "0", "--data-dir", str(tmp_path / "data"), "--secure-dir",
                             str(where), "--prefix", "sec", "--devices", "3"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        port = int(re.search(r"127\.0\.0\.1:(\d+)", lines[0]).group(1))
        assert f"--broker mqtts://127.0.0.1:{port} --tls-ca {where / 'ca.crt'}" in lines[2]
        assert lines[3].startswith("nodes: aggregator") and "devices: 3" in lines[3]
        files = SecureDir(where)
        assert set(files.users()) >= {"gw-0", "gw-1", "monitor", "s0-d0000", "s1-d0001"}
        running = port
        topic = Topics("sec").model
        assert publish(login(running, files, "aggregator"), topic, "v1",
                       retain=True).returncode == 0
        assert refused(publish(login(running, files, "monitor", "guess"), topic, "x"))
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            mosquitto_pid = int(f.read().split()[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        wait_until(lambda: not process_alive(mosquitto_pid), 5, lambda: proc.wait(0.05),
                   "mosquitto to exit")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_with_client_certificates_a_password_alone_is_not_enough(tmp_path, prefix):
    """Mutual TLS (``broker --secure --client-certs``): the broker asks for a certificate the
    CA signed, and still for the password."""
    from broker.mosquitto import MosquittoBroker
    from broker.secure import generate
    from tests.conftest import process_alive

    files = generate(tmp_path / "secure", Topics(prefix), gateways=1, client_certs=True)
    broker = MosquittoBroker(data_dir=tmp_path / "broker", secure=files,
                             require_certificate=True).start()
    pid = broker.process.pid
    topic = Topics(prefix).update("gw-0")
    cert = ["--cert", str(files.client_cert("gw-0")), "--key", str(files.client_key("gw-0"))]
    try:
        assert publish(login(broker, files, "gw-0") + cert, topic, "u").returncode == 0
        without = publish(login(broker, files, "gw-0"), topic, "u")
        assert without.returncode != 0
        assert "peer did not return a certificate" in broker.log_path.read_text()
        assert refused(publish(login(broker, files, "gw-0", "wrong") + cert, topic, "u"))
    finally:
        broker.stop()
        assert not process_alive(pid)
