"""Metrics snapshots (the JSON the nodes publish on their metrics topic) -> Prometheus metric
families, by :mod:`~fleetlearn.metrics.catalogue`'s names. Pure: ``now`` is passed in.

A value that is not a finite number (a node of another version, a field it left out) is left
out, never guessed; a histogram whose bounds and counts do not fit is left out whole.

>>> snap = {"node": "gw-0", "kind": "gateway", "learned": 9, "rejected": {"schema": 1},
...         "gaps": 2, "prequential": {"n": 9, "mae": 0.5, "r2": 0.9}}
>>> fams = {f.name: f for f in node_families([snap], now=0.0)}
>>> [(s.name, s.labels, s.value) for s in fams["fleetlearn_readings"].samples]
... # doctest: +NORMALIZE_WHITESPACE
[('fleetlearn_readings_total', {'gateway': 'gw-0', 'outcome': 'learned', 'reason': ''}, 9),
 ('fleetlearn_readings_total', {'gateway': 'gw-0', 'outcome': 'rejected', 'reason': 'schema'}, 1)]
>>> fams["fleetlearn_prequential_r2"].samples[0].value
0.9
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fleetlearn.metrics.catalogue import MEASURES, METRICS

_MAKERS = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
           "histogram": HistogramMetricFamily}


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


class Families:
    """The families being built, each made on its first sample."""

    def __init__(self) -> None:
        self._made: dict[str, Metric] = {}

    def _family(self, name: str) -> Metric:
        if name not in self._made:
            spec = METRICS[name]
            self._made[name] = _MAKERS[spec.type](name, spec.help, labels=list(spec.labels))
        return self._made[name]

    def add(self, name: str, labels: Iterable[str], value: Any) -> None:
        """One sample of ``name`` (labels in the catalogue's order); a non-number is left out."""
        if (number := _number(value)) is not None:
            self._family(name).add_metric(list(labels), number)

    def add_each(self, name: str, first: Iterable[str], counts: Any) -> None:
        """One sample per reason of a ``{reason: count}`` mapping."""
        if isinstance(counts, Mapping):
            for reason, count in sorted(counts.items()):
                self.add(name, [*first, str(reason)], count)

    def add_histogram(self, name: str, labels: Iterable[str], h: Any) -> None:
        """A node's :class:`~broker.latency.LatencyHistogram` (``as_dict``)."""
        if not isinstance(h, Mapping):
            return
        le, buckets, count, total = h.get("le"), h.get("buckets"), h.get("count"), h.get("sum")
        if not (isinstance(le, list) and isinstance(buckets, list) and len(le) == len(buckets)):
            return
        values = [_number(v) for v in (*le, *buckets, count, total)]
        if any(v is None for v in values):
            return
        pairs = [(repr(float(b)), c) for b, c in zip(le, buckets, strict=True)]
        self._family(name).add_metric(list(labels), [*pairs, ("+Inf", count)], total)

    def families(self) -> list[Metric]:
        return list(self._made.values())


def _measures(f: Families, prefix: str, labels: list[str], measures: Any) -> None:
    if not isinstance(measures, Mapping):
        return
    for m in MEASURES:
        f.add(f"{prefix}_{m}", labels, measures.get(m))


def _gateway(f: Families, s: Mapping[str, Any], now: float) -> None:
    gw = [str(s["node"])]
    f.add("fleetlearn_readings", [*gw, "learned", ""], s.get("learned"))
    f.add_each("fleetlearn_readings", [*gw, "rejected"], s.get("rejected"))
    for key, name in (("received", "readings_received"), ("gaps", "reading_gaps"),
                      ("restarts", "device_restarts"), ("updates_sent", "updates_sent"),
                      ("models_adopted", "models_adopted"), ("drifts", "drifts_detected"),
                      ("devices", "gateway_devices"),
                      ("checkpoint_errors", "parts_checkpoint_errors")):
        f.add(f"fleetlearn_{name}", gw, s.get(key))
    other = s.get("other_rejected")
    if isinstance(other, Mapping):
        f.add_each("fleetlearn_models_refused", gw,
                   {r: n for r, n in other.items() if str(r).startswith("model_")})
        f.add_each("fleetlearn_messages_refused", gw,
                   {r: n for r, n in other.items() if not str(r).startswith("model_")})
    pq = s.get("prequential")
    _measures(f, "fleetlearn_prequential", gw, pq)
    if isinstance(pq, Mapping):
        f.add("fleetlearn_prequential_samples", gw, pq.get("n"))
    f.add_histogram("fleetlearn_sync_latency_seconds", gw, s.get("sync_latency"))


def _aggregator(f: Families, s: Mapping[str, Any], now: float) -> None:
    agg = [str(s["node"])]
    for key, name in (("accepted", "updates_accepted"), ("models_broadcast", "models_broadcast"),
                      ("rollbacks", "rollbacks"), ("checkpoint_errors", "checkpoint_errors"),
                      ("pending", "pending_updates"), ("samples", "model_samples")):
        f.add(f"fleetlearn_{name}", agg, s.get(key))
    f.add_each("fleetlearn_updates_refused", agg, s.get("refused"))
    if isinstance(s.get("offline"), list):
        f.add("fleetlearn_learners_offline", agg, len(s["offline"]))
    _measures(f, "fleetlearn_federated", agg, s.get("federated"))


def _predictor(f: Families, s: Mapping[str, Any], now: float) -> None:
    pred = [str(s["node"])]
    for key, name in (("predictions", "predictions"), ("prediction_messages",
                                                       "prediction_messages"),
                      ("stale_predictions", "stale_predictions"),
                      ("full_turns", "predictor_full_turns"),
                      ("behind", "predictor_behind_turns"), ("lag", "prediction_lag_seconds")):
        f.add(f"fleetlearn_{name}", pred, s.get(key))
    f.add_each("fleetlearn_predictor_rejected", pred, s.get("not_predicted"))
    f.add_each("fleetlearn_predictor_skipped", pred, s.get("skipped"))
    f.add_each("fleetlearn_models_refused", pred, s.get("models_refused"))
    f.add_histogram("fleetlearn_prediction_latency_seconds", pred, s.get("prediction_latency"))


def _source(f: Families, s: Mapping[str, Any], now: float) -> None:
    src = [str(s["node"])]
    f.add("fleetlearn_readings_published", src, s.get("published"))
    for reason in ("send_buffer_full", "behind"):
        f.add("fleetlearn_readings_unsent", [*src, reason], s.get(reason))


BY_KIND = {"gateway": _gateway, "aggregator": _aggregator, "predictor": _predictor,
           "fleet": _source, "replay": _source}


def add_node(f: Families, s: Mapping[str, Any], now: float) -> None:
    """One node's snapshot: what every node reports, then what its kind does."""
    if not isinstance(s.get("node"), str) or not isinstance(s.get("kind"), str):
        return
    node, kind = s["node"], s["kind"]
    f.add("fleetlearn_model_version", [node, kind], s.get("model_version"))
    if (ts := _number(s.get("model_ts"))) is not None:
        f.add("fleetlearn_model_age_seconds", [node], now - ts)
    f.add("fleetlearn_unacked_messages", [node], s.get("unacked"))
    f.add("fleetlearn_resident_memory_bytes", [node, kind], s.get("rss_bytes"))
    f.add("fleetlearn_last_metrics_timestamp_seconds", [node, kind], s.get("ts"))
    if kind in BY_KIND:
        BY_KIND[kind](f, s, now)


def node_families(snapshots: Iterable[Mapping[str, Any]], now: float) -> list[Metric]:
    """The families of these nodes' latest snapshots (one node's, or a deployment's)."""
    f = Families()
    for s in snapshots:
        add_node(f, s, now)
    return f.families()
