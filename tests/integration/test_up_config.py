"""`up` passes its nodes only what it decides; every other setting reaches them unchanged from
the config file, against a real mosquitto."""

from pathlib import Path

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Scaler, Update
from broker.model_codec import encode_update
from broker.topics import Topics
from fleetlearn.config import load_config
from fleetlearn.deploy.up import LocalDeployment, UpSettings
from tests.mqtt_helpers import Recorder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_the_files_aggregator_settings_reach_the_aggregator_under_up(address, prefix, tmp_path):
    # Prepare: a file that sets what `up` used to override (quorum 2, round timeout 2.0)
    config = tmp_path / "fleetlearn.toml"
    config.write_text("[aggregator]\nquorum = 1\nround_timeout = 7.0\n"
                      "[learner]\nl2 = 0.001\n[sync]\nsync_every = 150\n")
    dep = LocalDeployment(UpSettings(broker=address, prefix=prefix, duration=None, gateways=2,
                                     config=config, log_dir=tmp_path / "logs",
                                     log_format="json"))
    try:
        # Execute
        dep.start()
        # Assert: the aggregator itself says it runs with the file's settings
        def reported() -> bool:
            agg = dep.state.nodes.get("aggregator", {})
            return "round_timeout" in agg and bool(agg.get("learners"))
        assert dep.monitor.wait_for(reported, timeout=30)
        agg = dep.state.nodes["aggregator"]
        assert agg["round_timeout"] == 7.0
        assert agg["quorum"] == 1  # two live learners: a default quorum would be 2
        # and nothing on any node's command line overrides the file
        for child in dep.children:
            assert not {"--quorum", "--round-timeout", "--sync-every", "--l2"} & set(child.argv)
            assert str(dep.config_path) in child.argv
        written = load_config(dep.config_path)["aggregator"]
        assert written.pop("learners") == ["gw-0", "gw-1"]  # up's roster (issue #13)
        assert written.pop("max_rate") == 4 * dep.settings.rate
        assert written == {"quorum": 1, "round_timeout": 7.0}
        assert load_config(dep.config_path)["sync"] == {"sync_every": 150}
        # and the nodes log at INFO by default, in the format up was given, each its own file
        for child in dep.children:
            assert child.argv[3:7] == ["--log-level", "INFO", "--log-format", "json"]
            lines = [orjson.loads(line) for line in child.log_path.read_bytes().splitlines()]
            connected = [line for line in lines if "connected to" in line["message"]]
            assert connected and connected[0]["level"] == "INFO", child.name
            assert connected[0]["node"] == child.name  # the process's node
    finally:
        dep.stop_all()
    assert all(not c.running for c in dep.children)


def test_settings_given_to_up_itself_go_on_top_of_the_file(tmp_path):
    config = tmp_path / "fleetlearn.toml"
    config.write_text('[aggregator]\nquorum = 1\nstrategy = "sync"\n[learner]\nlr = 0.2\n')
    dep = LocalDeployment(UpSettings(config=config, strategy="fedbuff", lr=0.05,
                                     log_dir=tmp_path / "logs"))
    written = load_config(dep.config_path)
    assert written["aggregator"] == {"quorum": 1, "strategy": "fedbuff",
                                     "learners": ["gw-0", "gw-1"], "max_rate": 4000.0}
    assert written["learner"] == {"lr": 0.05}
    assert written["fleet"]["devices"] == 20


def test_a_strategy_defined_outside_the_package_runs_by_module_and_class(address, prefix,
                                                                         tmp_path):
    # Prepare: docs/examples/custom_strategy.py, on the nodes' import path
    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    dep = LocalDeployment(UpSettings(
        broker=address, prefix=prefix, duration=None, log_dir=tmp_path / "logs",
        strategy="custom_strategy:WarmupFedAvg", extra_env={"PYTHONPATH": str(examples)}))
    try:
        # Execute
        dep.start()
        # Assert: its models say they were merged by it, and keep coming
        assert dep.monitor.wait_for(
            lambda: dep.state.last_model is not None and dep.state.last_model.version >= 3,
            timeout=30)
        assert dep.state.last_model.notes["strategy"] == "warmup-fedavg"
        assert dep.state.nodes["aggregator"]["strategy"] == "warmup-fedavg"
    finally:
        dep.stop_all()


def test_forged_metrics_and_updates_under_up_are_refused_and_counted(address, prefix, tmp_path):
    """Issue #13 under `up`: the monitor counts only the nodes up started, and the aggregator
    takes updates only from the gateways up started (its roster)."""
    topics = Topics(prefix)
    dep = LocalDeployment(UpSettings(broker=address, prefix=prefix, duration=None, gateways=2,
                                     log_dir=tmp_path / "logs"))
    attacker = Recorder(address, topics.deadletter_filter)
    try:
        dep.start()
        # Execute: forged metrics (an unknown node; gw-0's name under another topic; a
        # negative count under the fleet's own topic), and an update from a new learner id
        forged = [("gw-7", {"node": "gw-7", "kind": "gateway", "learned": 10**9}),
                  ("gw-1", {"node": "gw-0", "kind": "gateway", "learned": 10**9}),
                  ("fleet", {"node": "fleet", "kind": "fleet", "published": -10**9})]
        for node, metrics in forged:
            attacker.publish(topics.metrics(node), orjson.dumps(metrics))
        params = LinearParams(("x",), np.ones(1), 0.0)
        attacker.publish(topics.update("evil"), encode_update(Update(
            "evil", 1, 0, 1_000_000, "y", params, 0.0, Scaler(1, np.zeros(2), np.ones(2)),
            metrics={"recent_loss": 1e-9, "recent_n": 1e6})))
        assert dep.monitor.wait_for(lambda: sum(dep.state.ignored.values()) >= 3, timeout=20)
        attacker.wait(lambda: any(b'"unknown_learner"' in p for p in attacker.on("/deadletter/")),
                      20, "the refusal")
        # Assert: nothing forged reached the state the report is made of
        assert "gw-7" not in dep.state.nodes
        assert dep.state.nodes.get("gw-0", {}).get("learned", 0) < 10**9
        assert dep.state.readings()["unaccounted"] >= 0
        assert set(dep.state.ignored) == {"metrics_unknown_node", "metrics_id_mismatch",
                                          "metrics_bad_count"}
    finally:
        attacker.close()
        dep.stop_all()
