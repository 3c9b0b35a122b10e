"""The live page's data: the state a monitor keeps, turned into the JSON snapshot the page
draws (pure, no broker, no server)."""

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Model, Scaler
from devices.truth import GroundTruth
from fleetlearn.dashboard.rates import Rates
from fleetlearn.dashboard.snapshot import CURVE_POINTS, LETTERS, snapshot, thin, totals
from fleetlearn.deploy.state import DeploymentState

pytestmark = pytest.mark.timeout(30)

KNOWN = {"aggregator": "aggregator", "gw-0": "gateway", "gw-1": "gateway",
         "predictor": "predictor", "fleet": "fleet"}


def model(version: int, ts: float, w: float = 1.0) -> Model:
    return Model(version, ts, 10 * version, ("gw-0", "gw-1"), "y",
                 LinearParams(("a",), np.array([w]), 0.0), Scaler.empty(2))


def running_state() -> DeploymentState:
    state = DeploymentState(truth=GroundTruth({"a": 1.0}, 0.0, 0.1), known=KNOWN)
    for node in ("aggregator", "gw-0", "gw-1", "predictor"):
        state.on_status(node, b"online")
    state.on_metrics({"node": "fleet", "kind": "fleet", "ts": 50.0, "published": 300}, "fleet",
                     2.0)
    for i, (learned, mae, r2) in enumerate([(150, 0.5, 0.7), (120, 0.6, 0.6)]):
        state.on_metrics({"node": f"gw-{i}", "kind": "gateway", "ts": 49.0, "learned": learned,
                          "rejected": {"schema": 10 + i}, "model_version": 4,
                          "prequential": {"n": learned, "mae": mae, "rmse": 1.0, "r2": r2}},
                         f"gw-{i}", 2.0)
    state.on_metrics({"node": "aggregator", "kind": "aggregator", "ts": 49.5,
                      "federated": {"n": 270, "mae": 0.55, "r2": 0.65}}, "aggregator", 2.5)
    state.on_metrics({"node": "predictor", "kind": "predictor", "ts": 49.8, "predictions": 77},
                     "predictor", 2.5)
    for version in (3, 4):
        state.on_model(model(version, ts=45.0 + version), at=float(version))
    return state


def test_the_model_card_shows_version_age_samples_and_error_against_the_truth():
    snap = snapshot(running_state(), now=52.0)
    m = snap["model"]
    assert (m["version"], m["age"], m["samples"]) == (4, 3.0, 40)
    assert m["contributors"] == ["gw-0", "gw-1"] and m["weight_error"] == 0.0
    assert m["versions"] == [[3.0, 3], [4.0, 4]]


def test_before_any_model_the_card_is_empty_not_an_error():
    snap = snapshot(DeploymentState(), now=1.0)
    assert snap["model"] == {"version": None, "age": None, "samples": None,
                             "contributors": [], "weight_error": None, "versions": []}
    assert snap["curves"] == {} and snap["nodes"] == [] and snap["deadletters"]["recent"] == []


def test_curves_per_gateway_and_federated_pair_the_error_with_the_quality():
    snap = snapshot(running_state(), now=52.0)
    assert snap["metrics"]["error"] == "mae" and snap["metrics"]["quality"] == "r2"
    assert snap["curves"] == {"gw-0": [[2.0, 0.5, 0.7]], "gw-1": [[2.0, 0.6, 0.6]],
                              "federated": [[2.5, 0.55, 0.65]]}


def test_a_binary_task_draws_log_loss_and_accuracy():
    state = DeploymentState()
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 5,
                      "prequential": {"n": 5, "accuracy": 0.8, "log_loss": 0.4}}, "gw-0", 1.0)
    snap = snapshot(state, now=0.0)
    assert snap["metrics"]["error"] == "log_loss" and snap["metrics"]["quality"] == "accuracy"
    assert snap["curves"]["gw-0"] == [[1.0, 0.4, 0.8]]


def test_a_long_curve_is_thinned_to_a_bounded_size_keeping_its_last_point():
    state = DeploymentState()
    for i in range(1, 1500):
        state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": i,
                          "prequential": {"n": i, "mae": 1.0 / i, "r2": 0.5}}, "gw-0", float(i))
    curve = snapshot(state, now=0.0)["curves"]["gw-0"]
    assert len(curve) <= CURVE_POINTS + 1 and curve[-1][0] == 1499.0 and curve[0][0] == 1.0
    assert thin([], 5) == [] and thin(list(range(7)), 3) == [0, 3, 6]


def test_nodes_show_online_offline_or_unknown_with_their_processes():
    state = running_state()
    state.on_status("gw-1", b"offline")  # its last will, or a clean stop
    state.on_status("stranger", b"online")  # a retained status of a node up did not start
    processes = {"gw-0": {"pid": 101, "exit_code": None},
                 "gw-1": {"pid": 102, "exit_code": -9, "log": "gw-1.log"}}
    rows = {r["name"]: r for r in snapshot(state, now=52.0, processes=processes)["nodes"]}
    assert sorted(rows) == ["aggregator", "fleet", "gw-0", "gw-1", "predictor", "stranger"]
    assert rows["gw-0"]["online"] is True
    assert (rows["gw-0"]["pid"], rows["gw-0"]["exit_code"]) == (101, None)  # running
    assert rows["gw-1"]["online"] is False and rows["gw-1"]["exit_code"] == -9  # killed
    assert rows["aggregator"]["pid"] is None and "log" not in rows["gw-1"]
    assert rows["fleet"]["online"] is None  # no status came yet
    assert rows["gw-0"]["kind"] == "gateway" and rows["gw-0"]["version"] == 4
    assert rows["gw-0"]["last_report"] == 3.0 and rows["stranger"]["last_report"] is None


def test_totals_and_the_rates_measured_from_them():
    state = running_state()
    assert totals(state) == {"published": 300, "learned": 270, "rejected": 21,
                             "predictions": 77}
    rates = Rates(window=5.0)
    rates.observe(0.0, totals(state))
    state.on_metrics({"node": "predictor", "kind": "predictor", "predictions": 177},
                     "predictor", 3.0)
    rates.observe(2.0, totals(state))
    snap = snapshot(state, now=52.0, rates=rates.per_second())
    assert snap["rates"] == {"published": 0.0, "learned": 0.0, "rejected": 0.0,
                             "predictions": 50.0}
    assert snap["totals"]["predictions"] == 177


def test_the_last_dead_letters_newest_first_bounded_and_cut():
    state = DeploymentState()
    for i in range(LETTERS + 5):
        state.on_deadletter("schema", {"node": "gw-0", "reason": "schema", "ts": 10.0 + i,
                                       "detail": "x" * 1000, "topic": "p/readings/s/d",
                                       "excerpt": "not kept"})
    state.on_deadletter("monitor_undecodable")  # no message to keep: its reason alone
    state.on_deadletter("odd", {"ts": True, "node": ["a list"]})  # ts not a time
    dead = snapshot(state, now=0.0)["deadletters"]
    assert dead["total"] == LETTERS + 7
    assert dead["by_reason"] == {"schema": LETTERS + 5, "monitor_undecodable": 1, "odd": 1}
    recent = dead["recent"]
    assert len(recent) == LETTERS
    assert recent[0] == {"reason": "odd", "node": "['a list']", "ts": None}
    assert recent[1] == {"reason": "monitor_undecodable", "ts": None}
    assert recent[2]["ts"] == 10.0 + LETTERS + 4 and len(recent[2]["detail"]) == 200
    assert "excerpt" not in recent[2]


def test_the_snapshot_is_json_and_says_when_it_ended_or_lost_its_broker():
    state = running_state()
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 1,
                      "prequential": {"n": 1, "mae": float("nan"), "r2": float("inf")}},
                     "gw-0", 3.0)
    snap = snapshot(state, now=52.0, ended="the deployment has stopped", connected=False)
    assert snap["ended"] == "the deployment has stopped" and snap["broker_connected"] is False
    decoded = orjson.loads(orjson.dumps(snap))
    assert decoded["curves"]["gw-0"][-1] == [3.0, None, None]  # not a number: no point
    assert snapshot(state, now=52.0)["ended"] is None
