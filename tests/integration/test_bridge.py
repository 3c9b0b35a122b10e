"""A site broker bridged to a core broker on loopback (two real mosquittos, the bridge section
of ``broker/bridge.py``): what goes up, what comes down, what stays at the site."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from broker.address import BrokerAddress
from broker.bridge import bridge_lines, site_bridge
from broker.mosquitto import MosquittoBroker
from broker.secure import generate
from broker.topics import Topics
from tests.conftest import process_alive
from tests.mqtt_helpers import Recorder

pytestmark = pytest.mark.timeout(40)


def connected(site_port: int, t: Topics, site: str = "s0") -> Recorder:
    """A recorder on the site broker, returned once the site's bridge says it is up."""
    rec = Recorder(BrokerAddress(port=site_port), t.bridge_state(site), t.model, t.global_model)
    rec.wait(lambda: rec.on(t.bridge_state(site))[-1:] == [b"1"], 15, "the bridge to connect")
    return rec


def test_updates_go_up_the_model_comes_down_readings_stay(core_broker, site_brokers, prefix):
    t = Topics(prefix)
    site = site_brokers(core_broker.port)
    core = Recorder(BrokerAddress(port=core_broker.port), f"{prefix}/#")
    at_site = connected(site.port, t)
    try:
        at_site.publish(t.reading("s0", "s0-d0001"), b"reading")
        at_site.publish(t.metrics("gw-0"), b"metrics")
        at_site.publish(t.deadletter("gw-0"), b"dead letter")
        at_site.publish(t.node_status("gw-0"), b"online", retain=True)
        at_site.publish(t.update("gw-0"), b"update")  # last: the bridge keeps the order
        core.wait(lambda: core.on(t.update("gw-0")), what="the update at the core")
        assert core.on(t.metrics("gw-0")) == [b"metrics"]
        assert core.on(t.deadletter("gw-0")) == [b"dead letter"]
        assert core.on(t.node_status("gw-0")) == [b"online"]
        assert not core.on("/reading"), "a reading crossed the bridge unasked"

        core.publish(t.model, b"model v1", retain=True)
        at_site.wait(lambda: at_site.on(t.model), what="the model at the site")
        assert at_site.on(t.model) == [b"model v1"]
        assert not core.on(t.bridge_state("s0")), "the bridge's own state went up"
    finally:
        core.close()
        at_site.close()
    # retained at the site: a node that comes later gets it at once
    late = Recorder(BrokerAddress(port=site.port), t.model)
    try:
        late.wait(lambda: late.on(t.model) == [b"model v1"], what="the retained model")
    finally:
        late.close()


def test_forwarded_readings_are_the_sites_own(core_broker, site_brokers, prefix):
    t = Topics(prefix)
    site = site_brokers(core_broker.port, "s1", forward_readings=True)
    core = Recorder(BrokerAddress(port=core_broker.port), t.readings_filter(), t.updates_filter)
    at_site = connected(site.port, t, "s1")
    try:
        at_site.publish(t.reading("s2", "s2-d0001"), b"another site's")
        at_site.publish(t.reading("s1", "s1-d0001"), b"ours")
        at_site.publish(t.update("gw-0"), b"update")
        core.wait(lambda: core.on(t.update("gw-0")), what="the update at the core")
        assert [p for _, p in core.messages if _.endswith("/reading")] == [b"ours"]
    finally:
        core.close()
        at_site.close()


def test_hierarchical_site_sends_only_its_aggregate_and_gets_the_global_model(
        core_broker, site_brokers, prefix):
    t = Topics(prefix)
    site = site_brokers(core_broker.port, "s0", hierarchical=True)
    core = Recorder(BrokerAddress(port=core_broker.port), t.updates_filter)
    at_site = connected(site.port, t)
    try:
        at_site.publish(t.update("gw-0"), b"a gateway's")
        at_site.publish(t.update("site-s0"), b"the site's")
        core.wait(lambda: core.on(t.update("site-s0")), what="the site update at the core")
        assert [p for _, p in core.messages] == [b"the site's"]
        core.publish(t.model, b"global v3", retain=True)
        at_site.wait(lambda: at_site.on(t.global_model), what="the global model at the site")
        assert at_site.on(t.global_model) == [b"global v3"]
        assert not [tp for tp, _ in at_site.messages if tp == t.model], \
            "the global model landed on the site model's topic"
    finally:
        core.close()
        at_site.close()


def test_updates_queue_while_the_core_is_gone(core_broker, site_brokers, prefix):
    """The core stops; the site keeps taking updates; the core comes back on the same port and
    data dir and gets every one (the bridge's persistent session)."""
    t = Topics(prefix)
    site = site_brokers(core_broker.port)
    at_site = connected(site.port, t)
    core_address = BrokerAddress(port=core_broker.port)
    Recorder(core_address, t.updates_filter, kept_id=f"{prefix}-core").close()  # its session
    try:
        core_broker.stop()
        at_site.wait(lambda: at_site.on(t.bridge_state("s0"))[-1:] == [b"0"], 20,
                     "the bridge to notice the core is gone")
        for i in range(20):
            at_site.publish(t.update("gw-0"), str(i).encode())
        core_broker.start()
        core = Recorder(core_address, t.updates_filter, kept_id=f"{prefix}-core")
        try:
            core.wait(lambda: len(core.on(t.update("gw-0"))) >= 20, 25, "the queued updates")
            assert core.on(t.update("gw-0")) == [str(i).encode() for i in range(20)]
        finally:
            core.close()
    finally:
        at_site.close()


def test_a_secured_bridge_speaks_tls_and_logs_in_as_the_sites_bridge(tmp_path, prefix):
    """Core and site secured with one deployment's files: the bridge logs in as bridge-s0 over
    TLS; the core's ACL lets it send updates up and bring the model down."""
    t = Topics(prefix)
    files = generate(tmp_path / "secure", t, gateways=1, sites=("s0",))
    core = MosquittoBroker(data_dir=tmp_path / "core", secure=files).start()
    spec = site_bridge("s0", f"mqtts://127.0.0.1:{core.port}", secure=files)
    site = MosquittoBroker(data_dir=tmp_path / "site", secure=files,
                           bridge=bridge_lines(t, spec)).start()

    def login(broker: MosquittoBroker, user: str) -> BrokerAddress:
        return BrokerAddress(port=broker.port, username=user, password=files.password(user),
                             tls=True, ca=str(files.ca_cert))
    at_core = at_site = None
    try:
        at_core = Recorder(login(core, "aggregator"), t.updates_filter, t.model)
        at_site = Recorder(login(site, "gw-0"), t.model)
        at_site.publish(t.update("gw-0"), b"update")
        at_core.wait(lambda: at_core.on(t.update("gw-0")) == [b"update"], 20,
                     "the update over the TLS bridge")
        at_core.publish(t.model, b"model v1", retain=True)
        at_site.wait(lambda: at_site.on(t.model) == [b"model v1"], 10, "the model at the site")
        assert "u'bridge-s0'" in (tmp_path / "core" / "mosquitto.log").read_text()
    finally:
        for rec in (at_core, at_site):
            if rec is not None:
                rec.close()
        pids = [b.process.pid for b in (site, core)]
        site.stop()
        core.stop()
        assert not any(process_alive(pid) for pid in pids)


def test_broker_command_runs_a_bridged_site_broker(tmp_path, core_broker, prefix):
    """`fleetlearn broker --site s0 --bridge-to HOST:PORT`: its bridge connects and an update
    at the site reaches the core; SIGTERM stops it."""
    t = Topics(prefix)
    proc = subprocess.Popen([sys.executable, "-m", "fleetlearn", "broker", "--port", "0",
                             "--data-dir", str(tmp_path / "site"), "--prefix", prefix,
                             "--site", "s0", "--bridge-to", f"127.0.0.1:{core_broker.port}"],
                            stdout=subprocess.PIPE, text=True)
    core = at_site = None
    try:
        port = int(proc.stdout.readline().split(" (data")[0].rsplit(":", 1)[1])
        assert proc.stdout.readline().startswith(f"bridged to 127.0.0.1:{core_broker.port}")
        core = Recorder(BrokerAddress(port=core_broker.port), t.updates_filter)
        at_site = connected(port, t)
        at_site.publish(t.update("gw-1"), b"update")
        core.wait(lambda: core.on(t.update("gw-1")) == [b"update"], what="the update at the core")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        for rec in (core, at_site):
            if rec is not None:
                rec.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_site_broker_killed_and_restarted_gets_what_the_core_queued(core_broker,
                                                                      site_brokers, prefix):
    """kill -9 of the site broker: the model published at the core meanwhile reaches the
    restarted site broker (same port and data dir) and is retained there; updates go up
    again."""
    t = Topics(prefix)
    site = site_brokers(core_broker.port)
    at_site = connected(site.port, t)
    core = Recorder(BrokerAddress(port=core_broker.port), t.updates_filter)
    try:
        at_site.close()
        site.process.kill()
        assert site.process.wait(10) == -9
        for v in (1, 2, 3):
            core.publish(t.model, f"model v{v}".encode(), retain=True)
        assert core.node.flush(5)
        site.process = None
        site.start()
        at_site = Recorder(BrokerAddress(port=site.port), t.model, t.bridge_state("s0"))
        at_site.wait(lambda: at_site.on(t.bridge_state("s0"))[-1:] == [b"1"], 15,
                     "the bridge back")
        at_site.wait(lambda: at_site.on(t.model)[-1:] == [b"model v3"], 15,
                     "the newest model at the site")
        at_site.publish(t.update("gw-0"), b"update after the restart")
        core.wait(lambda: core.on(t.update("gw-0")), 15, "the update at the core")
    finally:
        core.close()
        at_site.close()
