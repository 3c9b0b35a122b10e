"""Every metric the exporter defines: its name, type, labels and help (one table, so the
mapping, the docs and the Grafana dashboard's test read the same names).

Names follow Prometheus conventions: a ``fleetlearn_`` prefix, base units in the name
(``_seconds``, ``_bytes``), counters exposed with ``_total``, histograms with ``_bucket``,
``_sum`` and ``_count``.

>>> METRICS["fleetlearn_readings"].labels
('gateway', 'outcome', 'reason')
>>> sorted(sample_names())[:2]
['fleetlearn_checkpoint_errors_total', 'fleetlearn_deadletters_total']
>>> "fleetlearn_sync_latency_seconds_bucket" in sample_names()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Spec:
    type: Literal["counter", "gauge", "histogram"]
    labels: tuple[str, ...]
    help: str


C, G, H = "counter", "gauge", "histogram"
GW, AGG, PRED, SRC, NODE = ("gateway",), ("aggregator",), ("predictor",), ("source",), ("node",)

#: Prequential (gateways) and federated (aggregator) measures the nodes report, by their key.
MEASURES = ("mae", "rmse", "r2", "accuracy", "log_loss")

#: name (a counter's without ``_total``) -> spec.
METRICS: dict[str, Spec] = {
    # gateways
    "fleetlearn_readings": Spec(C, ("gateway", "outcome", "reason"), "Readings a gateway "
                                "took in: outcome 'learned', or 'rejected' with its reason."),
    "fleetlearn_readings_received": Spec(C, GW, "Readings a gateway received (any outcome)."),
    "fleetlearn_reading_gaps": Spec(C, GW, "Readings never received: gaps in devices' "
                                    "sequence numbers."),
    "fleetlearn_device_restarts": Spec(C, GW, "Device restarts (a larger boot id) seen."),
    "fleetlearn_updates_sent": Spec(C, GW, "Model updates a gateway sent."),
    "fleetlearn_models_adopted": Spec(C, GW, "Models a gateway adopted."),
    "fleetlearn_drifts_detected": Spec(C, GW, "Drifts a gateway's detector flagged."),
    "fleetlearn_messages_refused": Spec(C, ("gateway", "reason"), "Messages a gateway refused "
                                        "that are not readings (bad topics, crashes)."),
    "fleetlearn_gateway_devices": Spec(G, GW, "Devices a gateway has seen."),
    "fleetlearn_sync_latency_seconds": Spec(H, GW, "From a gateway's first update after its "
                                            "last adoption to its adopting a model that "
                                            "names it among the contributors."),
    **{f"fleetlearn_prequential_{m}": Spec(G, GW, f"Prequential {m} of a gateway "
                                           "(predict, then learn).") for m in MEASURES},
    "fleetlearn_prequential_samples": Spec(G, GW, "Samples a gateway's prequential "
                                           "measures cover."),
    "fleetlearn_parts_checkpoint_errors": Spec(C, GW, "Checkpoints of its personal parts a "
                                               "gateway failed to write."),
    # the aggregator
    "fleetlearn_updates_accepted": Spec(C, AGG, "Updates the aggregator accepted."),
    "fleetlearn_updates_refused": Spec(C, ("aggregator", "reason"), "Updates (and other "
                                       "messages) the aggregator refused, by reason."),
    "fleetlearn_models_broadcast": Spec(C, AGG, "Models the aggregator broadcast."),
    "fleetlearn_rollbacks": Spec(C, AGG, "Merges the aggregator rolled back."),
    "fleetlearn_checkpoint_errors": Spec(C, AGG, "Checkpoints the aggregator failed to write."),
    "fleetlearn_pending_updates": Spec(G, AGG, "Updates waiting for the next merge."),
    "fleetlearn_model_samples": Spec(G, AGG, "Samples the current model has seen."),
    "fleetlearn_learners_offline": Spec(G, AGG, "Known learners whose status is offline."),
    **{f"fleetlearn_federated_{m}": Spec(G, AGG, f"Sample-weighted mean of the learners' "
                                         f"prequential {m}.") for m in MEASURES},
    # the predictor
    "fleetlearn_predictions": Spec(C, PRED, "Readings predicted."),
    "fleetlearn_prediction_messages": Spec(C, PRED, "Prediction messages published."),
    "fleetlearn_predictor_rejected": Spec(C, ("predictor", "reason"), "Readings not "
                                          "predicted: refused by the gateways' cleaning."),
    "fleetlearn_predictor_skipped": Spec(C, ("predictor", "reason"), "Readings (or "
                                         "messages) not predicted for want of a usable model."),
    "fleetlearn_stale_predictions": Spec(C, PRED, "Predictions made by a stale model."),
    "fleetlearn_predictor_full_turns": Spec(C, PRED, "Turns that found more waiting than "
                                            "one turn reads."),
    "fleetlearn_predictor_behind_turns": Spec(G, PRED, "Full turns in the last metrics "
                                              "interval (0: keeping up)."),
    "fleetlearn_prediction_lag_seconds": Spec(G, PRED, "Largest reading-to-prediction time "
                                              "in the last metrics interval."),
    "fleetlearn_prediction_latency_seconds": Spec(H, PRED, "From a reading's own timestamp "
                                                  "to its prediction."),
    # gateways and the predictor
    "fleetlearn_models_refused": Spec(C, ("node", "reason"), "Models a node refused, by "
                                      "reason."),
    # the fleet or replay
    "fleetlearn_readings_published": Spec(C, SRC, "Readings a source published "
                                          "(acknowledged by the broker at QoS 1)."),
    "fleetlearn_readings_unsent": Spec(C, ("source", "reason"), "Readings due that were "
                                       "never sent: 'send_buffer_full' or 'behind'."),
    # every node
    "fleetlearn_model_version": Spec(G, ("node", "kind"), "Version of the model a node "
                                     "holds."),
    "fleetlearn_model_age_seconds": Spec(G, NODE, "Now minus the current model's own "
                                         "timestamp."),
    "fleetlearn_unacked_messages": Spec(G, NODE, "QoS 1 messages the broker has not yet "
                                        "acknowledged."),
    "fleetlearn_resident_memory_bytes": Spec(G, ("node", "kind"), "A node process's "
                                             "resident memory."),
    "fleetlearn_last_metrics_timestamp_seconds": Spec(G, ("node", "kind"), "When a node "
                                                      "last reported (Unix time)."),
    # the deployment, as `up`'s monitor sees it
    "fleetlearn_node_online": Spec(G, NODE, "1 if a node's retained status is online."),
    "fleetlearn_deadletters": Spec(C, ("reason",), "Dead letters seen, by reason."),
    "fleetlearn_models_seen": Spec(C, (), "Distinct models the monitor received."),
    "fleetlearn_readings_backlog": Spec(G, (), "Readings published that no gateway has "
                                        "accounted for yet."),
    "fleetlearn_ignored_metrics": Spec(C, ("reason",), "Metrics messages the monitor "
                                       "ignored, by reason."),
}

SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def sample_names() -> set[str]:
    """Every sample name the exposition can hold (what a PromQL expression names)."""
    return {name + suffix for name, spec in METRICS.items() for suffix in SUFFIXES[spec.type]}
