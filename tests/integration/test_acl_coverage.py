"""The ACL lets every node do all it really does: the services run in-process on a plain
broker, every node's subscriptions, last will and publishes are recorded, and each is checked
against the generated ACL under the node's user name. A missing rule would silently break a
node on the secured broker; this finds it."""

from __future__ import annotations

import pytest

from broker.acl import parse_acl, permits, render_acl, roster
from broker.client import Node
from broker.messages import Reading
from broker.reading_codec import encode_reading
from broker.topics import Topics
from devices.fleet import Fleet, FleetConfig
from devices.simulator import FleetSimulator
from fleetlearn.deploy.monitor import Monitor
from fleetlearn.deploy.state import DeploymentState
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

#: Companion connections log in as their node: gw-0-control and gw-0-presence are gw-0.
SUFFIXES = ("-control", "-presence")


def user_of(client_id: str) -> str:
    for suffix in SUFFIXES:
        if client_id.endswith(suffix):
            return client_id.removesuffix(suffix)
    return client_id


@pytest.fixture
def uses(monkeypatch) -> set[tuple[str, str, str]]:
    """(user, "read" or "write", topic or filter) of every node made while the test runs."""
    seen: set[tuple[str, str, str]] = set()
    init, publish = Node.__init__, Node.publish

    def spy_init(self, node_id, broker, **kwargs):
        init(self, node_id, broker, **kwargs)
        seen.update((user_of(node_id), "read", f) for f, _ in self.subscriptions)
        if self.status_topic is not None:  # the last will
            seen.add((user_of(node_id), "write", self.status_topic))

    def spy_publish(self, topic, *args, **kwargs):
        seen.add((user_of(self.node_id), "write", topic))
        return publish(self, topic, *args, **kwargs)

    monkeypatch.setattr(Node, "__init__", spy_init)
    monkeypatch.setattr(Node, "publish", spy_publish)
    return seen


def test_every_topic_a_node_uses_is_allowed_for_its_user(address, prefix, uses):
    t = Topics(prefix)
    sim = FleetSimulator(4, 2)
    spec = FeatureSpec(sim.truth.features, sim.truth.target)
    aggregator = Aggregator(AggregatorConfig(
        federation=FederationConfig(SyncRounds(round_timeout=30), quorum=1),
        metrics_interval=0.2), t, address)
    gateway = Gateway(GatewayConfig("gw-0", spec, sync_every=20, metrics_interval=0.2), t,
                      address)
    predictor = Predictor(PredictorConfig(metrics_interval=0.2), t, address)
    fleet = Fleet(FleetConfig(devices=4, sites=2, rate=400, metrics_interval=0.2), t, address)
    monitor = Monitor(t, address, DeploymentState())
    monitor.connect()
    intruder = Recorder(address)  # a reading of a device the deployment does not have
    dead = [("gw-0", "write", t.deadletter("gw-0"))]
    with (ServiceThread(aggregator), ServiceThread(gateway), ServiceThread(predictor),
          ServiceThread(fleet)):
        intruder.publish(t.reading("s0", "s0-d0001"), encode_reading(
            Reading("s0-d9999", 1, 0.0, {"x": 1.0})))
        assert monitor.wait_for(lambda: monitor.state.last_model is not None and all(
            d in uses for d in dead) and any(
            u == "predictor" and "/prediction" in topic for u, _, topic in uses), 30), (
            sorted(uses))
    intruder.close()
    monitor.node.close()
    uses = {u for u in uses if u[0] != "test-recorder"}
    assert {user for user, _, _ in uses} == {"aggregator", "gw-0", "predictor", "fleet",
                                              "monitor"}
    assert all(d in uses for d in dead) and ("aggregator", "write", t.model) in uses
    assert ("fleet", "write", t.device_status("s0", "s0-d0000")) in uses
    acl = parse_acl(render_acl(t, roster(1, [d.device for d in sim.devices])))
    denied = sorted(u for u in uses if not permits(acl, *u))
    assert denied == []
