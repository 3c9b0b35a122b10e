"""What `up` reports: accounting, version order, time to converge."""

import numpy as np

from broker.messages import LinearParams, Model, Scaler
from devices.truth import GroundTruth
from fleetlearn.deploy.state import DeploymentState

TRUTH = GroundTruth({"a": 1.0, "b": -1.0}, 0.0, 0.1)


def model(version, w):
    return Model(version, 0.0, 10 * version, ("gw-0",), "y",
                 LinearParams(("a", "b"), np.array(w, dtype=float), 0.0), Scaler.empty(3))


def test_converged_time_is_when_it_came_within_and_stayed():
    state = DeploymentState(truth=TRUTH, within=0.05)
    state.on_model(model(1, [0.5, -0.5]), at=1.0)
    state.on_model(model(2, [1.0, -1.0]), at=2.0)
    state.on_model(model(3, [0.5, -1.0]), at=3.0)  # out again
    state.on_model(model(4, [1.01, -1.0]), at=4.0)
    state.on_model(model(4, [1.01, -1.0]), at=4.5)  # retained copy: ignored
    assert state.seconds_to_within() == 4.0
    assert [m.version for m in state.models] == [1, 2, 3, 4]
    assert state.versions_strictly_increase()


def test_versions_out_of_order_are_noticed():
    state = DeploymentState(truth=TRUTH)
    state.on_model(model(2, [1, -1]), 0.0)
    state.on_model(model(1, [1, -1]), 0.0)
    assert not state.versions_strictly_increase()


def test_unaccounted_readings_are_counted():
    state = DeploymentState()
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 100})
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 60, "rejected": {"x": 5}})
    state.on_metrics({"node": "gw-1", "kind": "gateway", "learned": 30, "rejected": {"x": 1}})
    assert state.readings()["unaccounted"] == 4
    assert state.readings()["rejected"] == {"x": 6}


def split_adds_up(r) -> bool:
    return r["published"] == (r["learned"] + sum(r["rejected"].values()) + r["lost"]
                              + r["not_taken_in"] - r["surplus"])


def test_published_splits_into_learned_rejected_lost_and_not_taken_in():
    state = DeploymentState()
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 100, "expected_gaps": 1,
                      "send_buffer_full": 40, "unacked_readings": 0, "behind": 20})
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 50,
                      "rejected": {"stale": 5}, "gaps": 2})
    state.on_metrics({"node": "gw-1", "kind": "gateway", "learned": 10, "gaps": 2})
    r = state.readings()
    assert (r["learned"], r["rejected"], r["gaps"]) == (60, {"stale": 5}, 4)
    assert r["lost"] == 3  # 4 gaps, 1 of them the fault injector's on purpose
    assert r["taken_in"] == 68 and r["not_taken_in"] == 32 and r["unaccounted"] == 32
    assert (r["send_buffer_full"], r["behind"]) == (40, 20)  # never published: not in the split
    assert split_adds_up(r)


def test_taken_in_beyond_published_is_explained_by_unacknowledged_readings():
    state = DeploymentState()
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 100,
                      "unacked_readings": 5})
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 104})
    r = state.readings()
    assert r["surplus"] == 4 and r["unaccounted"] == 0 and split_adds_up(r)
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 108})
    r = state.readings()
    assert r["surplus"] == 8 and r["unaccounted"] == 3 and split_adds_up(r)


def test_published_says_whether_it_was_acknowledged():
    state = DeploymentState()
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 1,
                      "published_means": "sent"})
    assert state.readings()["published_means"] == "sent"
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 1,
                      "published_means": "acknowledged"})
    assert state.readings()["published_means"] == "acknowledged"


def test_taken_in_beyond_published_is_explained_by_refused_copies_too():
    """A broker restart redelivers a QoS 1 message the gateway had: it refuses the copy."""
    state = DeploymentState()
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 100})
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 100,
                      "rejected": {"duplicate": 1}})
    r = state.readings()
    assert r["surplus"] == 1 and r["unaccounted"] == 0 and split_adds_up(r)
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 101,
                      "rejected": {"duplicate": 1}})
    assert state.readings()["unaccounted"] == 1  # a copy explains itself, not a learned one


def test_an_older_retained_model_seen_again_is_a_copy_not_a_model():
    """After a broker restart the monitor gets the last saved retained model, older than the
    newest it saw: the same version and time as one it has."""
    state = DeploymentState(truth=TRUTH)
    first = model(1, [1, -1])
    state.on_model(first, 0.0)
    state.on_model(Model(2, 1.0, 20, ("gw-0",), "y", first.params, Scaler.empty(3)), 1.0)
    state.on_model(first, 2.0)
    assert [m.version for m in state.models] == [1, 2]
    assert state.versions_strictly_increase()


def test_forged_metrics_are_ignored_and_counted_and_the_report_stays_true():
    """Issue #13: forged metrics messages made the report's "unaccounted" negative. Only the
    nodes `up` started count, each under its own topic, with counts that are counts."""
    state = DeploymentState(known={"fleet": "fleet", "gw-0": "gateway",
                                   "aggregator": "aggregator"})
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 100}, topic_node="fleet")
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 95,
                      "rejected": {"schema": 5}}, topic_node="gw-0")
    honest = state.readings()
    forged = [
        ({"node": "gw-7", "kind": "gateway", "learned": 10**9}, "gw-7"),         # unknown
        ({"node": "gw-0", "kind": "gateway", "learned": 10**9}, "gw-9"),         # another topic
        ({"node": "aggregator", "kind": "gateway", "learned": 10**9}, "aggregator"),  # kind
        ({"node": "fleet", "kind": "fleet", "published": -10**9}, "fleet"),      # not a count
        ({"node": "gw-0", "kind": "gateway", "learned": 1.5e9}, "gw-0"),
        ({"node": "gw-0", "kind": "gateway", "rejected": {"x": -7}}, "gw-0"),
        ({"kind": "fleet", "published": 5}, "fleet"),                              # no node
    ]
    for metrics, topic_node in forged:
        state.on_metrics(metrics, topic_node=topic_node)
    after = state.readings()
    assert after == honest and after["unaccounted"] == 0
    assert state.ignored == {"metrics_unknown_node": 1, "metrics_id_mismatch": 1,
                             "metrics_wrong_kind": 1, "metrics_bad_count": 3,
                             "metrics_malformed": 1}


def test_a_node_that_says_more_than_online_is_still_online():
    state = DeploymentState()
    state.on_status("predictor", b"online behind")
    state.on_status("gw-0", b"offline")
    assert state.online == {"predictor": True, "gw-0": False}
