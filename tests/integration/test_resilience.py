"""Aggregation that survives real fleets: nodes killed with SIGKILL, an aggregator restarted
from its checkpoint, all against a real mosquitto."""

import itertools
import signal
import subprocess

import numpy as np
import pytest

from broker.model_codec import decode_model
from fleetlearn.deploy.up import LocalDeployment, UpSettings
from learners.checkpoint import CheckpointStore
from tests.mqtt_helpers import Recorder
from tests.mqtt_helpers import model_version as version
from tests.mqtt_helpers import wait_deployment as wait

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def deployment(address, prefix, tmp_path, **settings) -> LocalDeployment:
    """A running local deployment on the test's broker: aggregator, gateways, predictor, fleet."""
    dep = LocalDeployment(UpSettings(broker=address, prefix=prefix, duration=None, seed=5,
                                     log_dir=tmp_path / "logs", **settings))
    dep.start()
    return dep


def child(dep: LocalDeployment, name: str):
    return next(c for c in dep.children if c.name == name)




def test_killing_a_gateway_keeps_versions_coming_and_the_model_converging(
        address, prefix, tmp_path):
    # Prepare: 3 gateways, one site each
    dep = deployment(address, prefix, tmp_path, devices=24, sites=3, gateways=3)
    try:
        assert dep.monitor.wait_for(lambda: version(dep) >= 5, timeout=30)
        # Execute: SIGKILL one gateway mid-run
        victim = child(dep, "gw-2").process
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        at_kill = version(dep)
        # Assert: its last will reaches the aggregator, whose quorum shrinks; versions go on
        assert dep.monitor.wait_for(
            lambda: dep.state.nodes.get("aggregator", {}).get("offline") == ["gw-2"], timeout=15)
        assert dep.state.nodes["aggregator"]["quorum"] == 2
        assert dep.monitor.wait_for(lambda: version(dep) >= at_kill + 15, timeout=30)
        after = [m for m in dep.state.models if m.version > at_kill + 2]
        assert all("gw-2" not in m.contributors for m in after)
        assert all(a.version < b.version for a, b in itertools.pairwise(dep.state.models))
        assert dep.monitor.wait_for(lambda: dep.state.models[-1].weight_error < 0.05, timeout=30)
        # a gateway that comes back says online, adopts the current model, and counts again
        gateway = child(dep, "gw-2")
        with open(gateway.log_path, "ab") as log:
            gateway.process = subprocess.Popen(gateway.argv, stdout=log,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        back_at = version(dep)
        assert dep.monitor.wait_for(
            lambda: dep.state.nodes.get("aggregator", {}).get("quorum") == 3
            and dep.state.nodes.get("gw-2", {}).get("model_version", 0) >= back_at, timeout=30)
        assert dep.monitor.wait_for(
            lambda: any("gw-2" in m.contributors for m in dep.state.models
                        if m.version > back_at), timeout=30)
    finally:
        dep.stop_all()


def test_a_restarted_aggregator_goes_on_upward_from_its_checkpoint(address, prefix, tmp_path):
    # Prepare: record every model broadcast from the start
    watcher = Recorder(address, f"{prefix}/learn/model")
    dep = deployment(address, prefix, tmp_path, devices=20, sites=2, gateways=2)
    store = CheckpointStore(dep.log_dir / "aggregator-state")
    try:
        assert wait(dep, lambda: version(dep) >= 8, 30, watcher)
        # Execute: SIGKILL the aggregator, then start it again as it was started
        aggregator = child(dep, "aggregator")
        aggregator.process.send_signal(signal.SIGKILL)
        aggregator.process.wait(5)
        killed_at = version(dep)
        checkpointed = store.latest()["version"]
        with open(aggregator.log_path, "ab") as log:
            aggregator.process = subprocess.Popen(aggregator.argv, stdout=log,
                                                  stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL)
        assert wait(dep, lambda: version(dep) >= killed_at + 10, 40, watcher)
    finally:
        dep.stop_all()
    for _ in range(20):
        watcher.poll()
    # Assert: the retained model was never older than the checkpoint
    assert 0 < checkpointed <= killed_at
    late = Recorder(address, f"{prefix}/learn/model")
    late.wait(lambda: late.messages, timeout=5, what="the retained model")
    retained = decode_model(late.messages[0][1])
    assert retained.version >= store.latest()["version"]
    # versions continue upward, and no version number ever went out with two sets of weights
    seen: dict[int, list[float]] = {}
    for payload in watcher.on("/learn/model"):
        model = decode_model(payload)
        weights = [*model.params.weights.tolist(), model.params.intercept]
        assert seen.setdefault(model.version, weights) == weights, model.version
    assert max(seen) >= killed_at + 10 and retained.version == max(seen)
    assert all(np.isfinite(w).all() for w in seen.values())
    watcher.close()
    late.close()
