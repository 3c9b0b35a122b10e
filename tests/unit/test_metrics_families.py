"""The snapshot -> Prometheus families mapping (fleetlearn/metrics), without a broker: what each
node kind's metrics message becomes, that nothing malformed slips through, and that the text a
scrape gets parses back to the same numbers."""

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from broker.latency import BOUNDS, LatencyHistogram
from fleetlearn.deploy.state import DeploymentState
from fleetlearn.metrics.catalogue import METRICS, sample_names
from fleetlearn.metrics.deployment import deployment_families
from fleetlearn.metrics.exporter import SnapshotCollector
from fleetlearn.metrics.families import node_families

pytestmark = pytest.mark.timeout(30)


def histogram(*seconds: float) -> dict:
    h = LatencyHistogram()
    h.observe_many(seconds)
    return h.as_dict()


GATEWAY = {"node": "gw-0", "kind": "gateway", "ts": 100.0, "rss_bytes": 2**27, "model_ts": 99.0,
           "received": 12, "learned": 9, "rejected": {"schema": 1, "duplicate": 2}, "gaps": 3,
           "restarts": 1, "other_rejected": {"model_bad_signature": 2, "bad_topic": 1},
           "devices": 4, "model_version": 7, "updates_sent": 5, "models_adopted": 4,
           "drifts": 1, "prequential": {"n": 9, "mae": 0.5, "rmse": 0.7, "r2": 0.9},
           "sync_latency": histogram(0.002, 0.02, 0.02, 40.0), "checkpoint_errors": 2}
AGGREGATOR = {"node": "aggregator", "kind": "aggregator", "ts": 100.0, "model_version": 6,
              "model_ts": 90.0, "accepted": 11, "refused": {"stale": 2}, "pending": 1,
              "models_broadcast": 6, "rollbacks": 1, "checkpoint_errors": 0, "samples": 500,
              "offline": ["gw-1"], "federated": {"n": 20, "mae": 0.4, "r2": 0.8}}
PREDICTOR = {"node": "predictor", "kind": "predictor", "ts": 100.0, "model_version": 6,
             "model_ts": 95.0, "predictions": 40, "prediction_messages": 8,
             "not_predicted": {"schema": 1}, "skipped": {"no_model_yet": 3},
             "models_refused": {"model_too_large": 1}, "stale_predictions": 0, "behind": 0,
             "full_turns": 2, "lag": 0.01, "unacked": 0, "prediction_latency": histogram(0.003)}
FLEET = {"node": "fleet", "kind": "fleet", "ts": 100.0, "published": 30, "send_buffer_full": 2,
         "behind": 0, "unacked": 5}


def samples(families) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of some families."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families for s in f.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_a_gateways_snapshot_becomes_its_readings_by_outcome_and_reason():
    found = samples(node_families([GATEWAY], now=100.0))
    readings = "fleetlearn_readings_total"
    assert value(found, readings, gateway="gw-0", outcome="learned", reason="") == 9
    assert value(found, readings, gateway="gw-0", outcome="rejected", reason="duplicate") == 2
    assert value(found, readings, gateway="gw-0", outcome="rejected", reason="schema") == 1
    assert value(found, "fleetlearn_reading_gaps_total", gateway="gw-0") == 3
    assert value(found, "fleetlearn_updates_sent_total", gateway="gw-0") == 5
    assert value(found, "fleetlearn_models_adopted_total", gateway="gw-0") == 4
    assert value(found, "fleetlearn_models_refused_total", node="gw-0",
                 reason="model_bad_signature") == 2
    assert value(found, "fleetlearn_messages_refused_total", gateway="gw-0",
                 reason="bad_topic") == 1
    assert value(found, "fleetlearn_prequential_r2", gateway="gw-0") == 0.9
    assert value(found, "fleetlearn_prequential_samples", gateway="gw-0") == 9
    assert value(found, "fleetlearn_parts_checkpoint_errors_total", gateway="gw-0") == 2
    assert value(found, "fleetlearn_model_version", node="gw-0", kind="gateway") == 7
    assert value(found, "fleetlearn_model_age_seconds", node="gw-0") == 1.0
    assert value(found, "fleetlearn_resident_memory_bytes", node="gw-0", kind="gateway") == 2**27


def test_a_latency_histogram_is_cumulative_and_its_inf_bucket_is_the_count():
    found = samples(node_families([GATEWAY], now=100.0))
    bucket = "fleetlearn_sync_latency_seconds_bucket"
    assert value(found, bucket, gateway="gw-0", le="0.0025") == 1
    assert value(found, bucket, gateway="gw-0", le="0.025") == 3
    assert value(found, bucket, gateway="gw-0", le="30.0") == 3  # 40 s is beyond every bound
    assert value(found, bucket, gateway="gw-0", le="+Inf") == 4
    assert value(found, "fleetlearn_sync_latency_seconds_count", gateway="gw-0") == 4
    assert math.isclose(value(found, "fleetlearn_sync_latency_seconds_sum", gateway="gw-0"),
                        40.042)


def test_a_latency_on_a_bound_counts_in_that_bucket():
    h = histogram(*BOUNDS)
    assert h["buckets"] == list(range(1, len(BOUNDS) + 1)) and h["count"] == len(BOUNDS)


def test_the_aggregators_and_predictors_snapshots():
    found = samples(node_families([AGGREGATOR, PREDICTOR, FLEET], now=100.0))
    assert value(found, "fleetlearn_updates_accepted_total", aggregator="aggregator") == 11
    assert value(found, "fleetlearn_updates_refused_total", aggregator="aggregator",
                 reason="stale") == 2
    assert value(found, "fleetlearn_models_broadcast_total", aggregator="aggregator") == 6
    assert value(found, "fleetlearn_model_age_seconds", node="aggregator") == 10.0
    assert value(found, "fleetlearn_model_age_seconds", node="predictor") == 5.0
    assert value(found, "fleetlearn_pending_updates", aggregator="aggregator") == 1
    assert value(found, "fleetlearn_learners_offline", aggregator="aggregator") == 1
    assert value(found, "fleetlearn_federated_r2", aggregator="aggregator") == 0.8
    assert value(found, "fleetlearn_predictions_total", predictor="predictor") == 40
    assert value(found, "fleetlearn_predictor_rejected_total", predictor="predictor",
                 reason="schema") == 1
    assert value(found, "fleetlearn_predictor_skipped_total", predictor="predictor",
                 reason="no_model_yet") == 3
    assert value(found, "fleetlearn_models_refused_total", node="predictor",
                 reason="model_too_large") == 1
    assert value(found, "fleetlearn_prediction_latency_seconds_count", predictor="predictor") == 1
    assert value(found, "fleetlearn_readings_published_total", source="fleet") == 30
    assert value(found, "fleetlearn_readings_unsent_total", source="fleet",
                 reason="send_buffer_full") == 2
    assert value(found, "fleetlearn_unacked_messages", node="fleet") == 5


def test_what_is_not_a_finite_number_is_left_out():
    bad = {"node": "gw-0", "kind": "gateway", "learned": "9", "gaps": True,
           "rejected": {"schema": float("nan"), "late": 2}, "model_version": None,
           "sync_latency": {"le": [0.1, 1.0], "buckets": [1], "count": 1, "sum": 0.1}}
    found = samples(node_families([bad, {"kind": "gateway"}, {"node": 3, "kind": "x"}], 0.0))
    assert found == {("fleetlearn_readings_total", (("gateway", "gw-0"), ("outcome", "rejected"),
                                                     ("reason", "late"))): 2}


def test_every_family_is_in_the_catalogue_and_the_text_parses_back_to_the_same_numbers():
    families = node_families([GATEWAY, AGGREGATOR, PREDICTOR, FLEET], now=100.0)
    assert {f.name for f in families} <= set(METRICS)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: families))
    parsed = list(text_string_to_metric_families(generate_latest(registry).decode()))
    assert {s.name for f in parsed for s in f.samples} <= sample_names()
    assert samples(parsed) == samples(families)
    for f in parsed:
        assert f.type == METRICS[f.name].type
        assert all(set(s.labels) - {"le"} == set(METRICS[f.name].labels) for s in f.samples)


def test_a_deployments_families_are_the_monitors_counts():
    state = DeploymentState(known={"fleet": "fleet", "gw-0": "gateway",
                                   "aggregator": "aggregator", "predictor": "predictor"})
    for snapshot in (FLEET, GATEWAY, AGGREGATOR, PREDICTOR):
        state.on_metrics(snapshot, snapshot["node"])
    state.on_status("gw-0", b"offline")
    state.on_deadletter("schema")
    state.on_deadletter("schema")
    found = samples(deployment_families(state, now=100.0))
    readings = state.readings()
    learned = value(found, "fleetlearn_readings_total", gateway="gw-0", outcome="learned",
                    reason="")
    assert learned == readings["learned"]
    for reason, count in readings["rejected"].items():
        assert value(found, "fleetlearn_readings_total", gateway="gw-0", outcome="rejected",
                     reason=reason) == count
    assert value(found, "fleetlearn_readings_published_total", source="fleet") == 30
    assert value(found, "fleetlearn_readings_backlog") == readings["not_taken_in"] == 30 - 9 - 3 - 3
    assert value(found, "fleetlearn_node_online", node="gw-0") == 0
    assert value(found, "fleetlearn_deadletters_total", reason="schema") == 2
    assert value(found, "fleetlearn_models_seen_total") == 0
