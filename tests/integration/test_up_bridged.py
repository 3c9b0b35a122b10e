"""`fleetlearn up --topology bridged`: a core broker, a bridged broker per site and each site's
nodes on it, run end to end (processes, real mosquittos on loopback)."""

from __future__ import annotations

import orjson
import pytest

from broker.address import BrokerAddress
from fleetlearn.deploy.bridged import BridgedDeployment
from fleetlearn.deploy.settings import UpSettings
from tests.conftest import process_alive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_two_bridged_sites_learn_every_reading_and_the_core_merges_their_sites(tmp_path):
    dep = BridgedDeployment(UpSettings(topology="bridged", sites=2, gateways=2, duration=6.0,
                                       log_dir=tmp_path / "logs", dashboard=0))
    result = dep.run()
    # the live page (up --dashboard) showed the core's view, and closed with the run
    last = orjson.loads(dep.dashboard.server._latest)
    assert dep.dashboard.closed and last["model"]["version"] >= 1, last.get("model")
    r = result["readings"]
    assert result["accounted"] and r["published"] > 0 and r["unaccounted"] == 0
    assert r["learned"] == r["published"]
    # the fleet's share of each site: its own devices only (10 of 20 each)
    assert [dep.state.nodes[f"fleet-{s}"]["devices"] for s in ("s0", "s1")] == [10, 10]
    # the core's models are merged from the two sites' updates, and versions only go up
    assert dep.state.last_model is not None and dep.state.last_model.version >= 1
    assert set(dep.state.last_model.contributors) <= {"site-s0", "site-s1"}
    assert result["predictions"] > 0
    # no strategy given: the core merges as updates come, with room for what a cut queued
    assert result["settings"]["strategy"] == "fedasync", result["settings"]
    assert result["topology"]["sites"] == ["s0", "s1"]
    assert all(p["exit_code"] == 0 for p in result["processes"]), result["processes"]
    brokers = [dep.own_broker, *dep.site_brokers.values()]
    assert not any(process_alive(b._stopped_pid) for b in brokers)
    assert not any(process_alive(p["pid"]) for p in result["processes"])


@pytest.mark.timeout(180)
def test_bridged_secured_logs_every_node_in_and_signs_across_the_bridges(tmp_path):
    """Every broker secured with one deployment's files: each bridge logs in to the core as
    bridge-sK over TLS, every node as itself at its own broker, and the core takes the site
    aggregators' signed updates (refusing none for a signature)."""
    logs = tmp_path / "logs"
    # long enough for the fleets to start (TLS, on a loaded machine) and send for a while
    dep = BridgedDeployment(UpSettings(topology="bridged", sites=2, gateways=2, duration=15.0,
                                       log_dir=logs, secure=True,
                                       secure_dir=tmp_path / "secure"))
    result = dep.run()
    r = result["readings"]
    assert result["secure"] is True
    assert result["accounted"] and r["published"] > 0 and r["learned"] == r["published"]
    assert dep.state.last_model is not None and dep.state.last_model.version >= 1
    assert set(dep.state.last_model.contributors) <= {"site-s0", "site-s1"}
    assert result["predictions"] > 0
    # no update or model was refused for its signature, anywhere
    signature = {"unsigned", "bad_signature", "unknown_key", "revoked_key", "wrong_signer"}
    for node in ("aggregator", "site-s0", "site-s1", "gw-0", "gw-1"):
        counts = dep.state.nodes[node]
        reasons = {*counts.get("refused", {}), *counts.get("other_rejected", {})}
        assert not {r for r in reasons if r.removeprefix("global_").removeprefix("model_")
                    in signature}, (node, reasons)
    assert dep.state.nodes["aggregator"]["accepted"] > 0
    core_log = (logs / "broker" / "mosquitto.log").read_text()
    for user in ("aggregator", "monitor", "bridge-s0", "bridge-s1"):
        assert f"u'{user}'" in core_log, user
    for i, site in enumerate(("s0", "s1")):
        site_log = (logs / f"broker-{site}" / "mosquitto.log").read_text()
        for user in (f"site-{site}", f"gw-{i}", f"predictor-{site}", f"fleet-{site}"):
            assert f"u'{user}'" in site_log, user
    assert all(p["exit_code"] == 0 for p in result["processes"]), result["processes"]


def test_bridged_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="gateway per site"):
        UpSettings(topology="bridged", sites=3, gateways=2)
    with pytest.raises(ValueError, match="not with --broker or a replay"):
        UpSettings(topology="bridged", broker=BrokerAddress(port=1884))
    with pytest.raises(ValueError, match="flat or bridged"):
        UpSettings(topology="mesh")
