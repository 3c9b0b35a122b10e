"""What the nodes tell an operator, and an aggregator that resumed another deployment's task,
against a real mosquitto."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from broker.messages import LinearParams, Model, Reading, Scaler, Update
from broker.model_codec import encode_model, encode_update
from broker.reading_codec import encode_reading
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.service import Gateway
from learners.aggregator import Aggregator, AggregatorConfig
from learners.checkpoint import CheckpointStore
from learners.federation import Federation, FederationConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def update(learner: str, seq: int, features: tuple[str, ...], target: str, n: int = 10
           ) -> bytes:
    params = LinearParams(features, np.ones(len(features)), 0.0)
    size = len(features) + 1
    return encode_update(Update(learner, seq, 0, n, target, params, time.time(),
                                Scaler(n, np.ones(size), np.ones(size))))


def messages(caplog, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == logger and r.levelno == logging.INFO]


def test_a_gateway_and_the_aggregator_say_what_happens_at_info(address, prefix, caplog):
    # Prepare: a gateway that syncs every 5 samples, an aggregator that merges each update
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model)
    spec = FeatureSpec(("a", "b"), "y")
    gateway = Gateway(GatewayConfig("gw-0", spec, sync_every=5, sync_interval=60), topics,
                      address)
    agg = Aggregator(AggregatorConfig(federation=FederationConfig(SyncRounds(round_timeout=30),
                                                                  quorum=1)), topics, address)
    caplog.set_level(logging.INFO)
    with ServiceThread(agg), ServiceThread(gateway) as gw:
        # Execute: five readings make an update, the update a model; then a stranger's update
        for seq in range(5):
            watcher.publish(topics.reading("s0", "s0-d1"), encode_reading(
                Reading("s0-d1", seq, time.time(), {"a": float(seq), "b": 1.0, "y": 2.0})))
        watcher.wait(lambda: gw.models_adopted >= 1, timeout=30, what="model v1 adopted")
        watcher.publish(topics.update("gw-9"), update("gw-9", 1, ("c",), "y"))
        watcher.wait(lambda: agg.refused["wrong_features"] == 1, what="the update refused")
    watcher.close()
    # Assert: connected (with the broker and subscriptions), broadcast, adopted, refused
    connected = messages(caplog, "broker.client")
    assert f"aggregator: connected to {address}; subscribing to " \
           f"['{prefix}/learn/update/+', '{prefix}/learn/model', " \
           f"'{prefix}/learn/status/+', '{prefix}/learn/probe/aggregator', " \
           f"'{prefix}/learn/ping/aggregator', '{prefix}/learn/claim/aggregator']" in connected
    assert f"gw-0-control: connected to {address}; subscribing to ['{prefix}/learn/model']" \
        in connected
    assert any(m.startswith(f"gw-0: connected to {address}") for m in connected)
    assert "aggregator: model v1 broadcast: 5 samples from gw-0" in messages(
        caplog, "learners.aggregator")
    assert "gw-0: model v1 adopted (5 samples, from gw-0)" in messages(caplog, "gateway.service")
    refused = [m for m in messages(caplog, "learners.aggregator") if "refused" in m]
    assert refused == [f"aggregator: refused {topics.update('gw-9')}: wrong_features (update "
                       "has ['c'], the model ['a', 'b'])"]
    assert all(r.exc_info is None for r in caplog.records)


def other_task_checkpoint(directory) -> None:
    """A checkpoint of another deployment: features [temp, hum], target power."""
    fed = Federation(FederationConfig(quorum=1))
    fed.offer(Update("gw-0", 1, 0, 10, "power",
                     LinearParams(("temp", "hum"), np.array([1.0, 2.0]), 0.5), 0.0,
                     Scaler(10, np.ones(3), np.ones(3))), "gw-0", now=0.0)
    fed.step(now=0.0, ts=0.0)
    CheckpointStore(directory).save(1, fed.to_state())


def test_an_aggregator_on_another_tasks_checkpoint_stops_with_one_line(address, prefix,
                                                                          tmp_path):
    # Prepare: another task's checkpoint where this deployment's default state dir is: under
    # its broker and its prefix
    state = tmp_path / "fleetlearn" / f"127.0.0.1_{address.port}" / prefix / "aggregator"
    other_task_checkpoint(state)
    watcher = Recorder(address, f"{prefix}/learn/model", f"{prefix}/learn/status/+")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "FLEETLEARN_CONNECT_TIMEOUT": "5"}
    env.pop("FLEETLEARN_LOG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetlearn", "aggregator", "--broker", str(address),
         "--prefix", prefix], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    try:
        watcher.wait(lambda: (f"{prefix}/learn/status/aggregator", b"online")
                     in watcher.messages or proc.poll() is not None, timeout=30,
                     what="the aggregator online")
        # Execute: this fleet's gateway sends its first update
        watcher.publish(f"{prefix}/learn/update/gw-0", update("gw-0", 1, ("a", "b"), "y"))
        watcher.wait(lambda: proc.poll() is not None, timeout=30, what="the aggregator to stop")
        _, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for _ in range(10):
        watcher.poll()
    watcher.close()
    # Assert: exit 1, one line that names the checkpoint, both tasks and the way out
    assert proc.returncode == 1
    assert err.splitlines() == [
        f"fleetlearn: error: checkpoint {state / 'ckpt-000000000001.json'} is for features "
        "['temp', 'hum'] target power (regression, local time UTC); this fleet learns features "
        "['a', 'b'] target y (regression, local time UTC): move it away or use --state-dir / "
        "--no-checkpoints"]
    # and the other task's model never reached this deployment's broker
    assert not [p for t, p in watcher.messages if t.endswith("/learn/model")]


def test_a_retained_model_of_another_task_is_refused_not_adopted(address, prefix):
    """An earlier deployment's (or a forger's) retained model is not this aggregator's own: it
    is refused, and this fleet's task is learned from its first update (issue #13)."""
    # Prepare: another task's model retained on this prefix, from an earlier deployment
    topics = Topics(prefix)
    watcher = Recorder(address, topics.deadletter_filter)
    old = Model(3, 0.0, 10, ("gw-0",), "power", LinearParams(("temp",), np.ones(1), 0.0),
                Scaler(10, np.ones(2), np.ones(2)))
    watcher.publish(topics.model, encode_model(old), retain=True)
    agg = Aggregator(AggregatorConfig(), topics, address)
    with ServiceThread(agg):
        watcher.wait(lambda: agg.resumed, what="the retained model read")
        # Execute: this fleet's first update
        watcher.publish(topics.update("gw-0"), update("gw-0", 1, ("a", "b"), "y"))
        watcher.wait(lambda: agg.federation.version == 1, what="the first model")
    watcher.wait(lambda: watcher.messages, what="the dead letter")
    watcher.close()
    # Assert: refused as not its own, counted and dead-lettered; the fleet's task learned
    assert agg.failure is None and agg.refused == {"model_not_ours": 1}
    assert agg.federation.ledger.features == ("a", "b")
