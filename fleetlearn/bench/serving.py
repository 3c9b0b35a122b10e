"""Serving: predictions per second one predictor makes against the readings per second one
gateway learns, from the same backlog through the same broker, back to back in the same run;
single readings and batches of 20 (columns), QoS 0 and 1 (of the readings and of the
predictions). Then the latency from a reading's publish to its prediction's arrival at a
subscriber, p50 / p99, with readings published at half the predictor's measured capacity.

The predictor is :class:`gateway.predictor.Predictor` itself (the gateway's cleaning and
features, one compiled call a turn, one prediction message per message in), given a model of
the task in-process before it listens.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from broker.address import BrokerAddress
from broker.client import Node
from broker.client_factory import Session
from broker.messages import LinearParams, Model, Scaler
from broker.reading_codec import encode_reading
from broker.topics import Topics
from fleetlearn.bench.harness import Backlog, Child, Progress, new_prefix, own_broker, run_backlog
from fleetlearn.bench.ingest import _rate, gateway_config
from fleetlearn.bench.measure import percentile, rss_mib

#: (QoS, readings per message)
MODES = ((0, 1), (1, 1), (0, 20), (1, 20))


def bench_model(features: tuple[str, ...], target: str) -> Model:
    """A model of the task (its numbers do not matter to the speed)."""
    return Model(1, time.time(), 1, ("bench",), target,
                 LinearParams(features, np.ones(len(features)), 0.5),
                 Scaler.empty(len(features) + 1))


def predictor_subscriber(conn: Any, address: BrokerAddress, prefix: str, n: int, qos: int = 1,
                         timeout: float = 120.0, **fleet: Any) -> None:
    """A :class:`Predictor` driven by its own node loop until it has judged n readings and the
    broker has every prediction it sent (QoS 1) or it has written them (QoS 0)."""
    from gateway.config import PredictorConfig
    from gateway.predictor import Predictor

    gw = gateway_config(**fleet)
    predictor = Predictor(PredictorConfig("predictor-bench", spec=gw.spec, kind=gw.kind,
                                          cleaning=gw.cleaning, qos=qos), Topics(prefix),
                          address)
    predictor.take_model(bench_model(gw.spec.features, gw.spec.target), b"")
    predictor.connect()
    conn.send({"ready": True, "rss_mib": rss_mib()})
    conn.recv()
    start = time.monotonic()
    deadline = start + timeout
    books = predictor.serving.pipeline.accounting
    while books.total < n and time.monotonic() < deadline:
        predictor.node.poll()
    predictor.node.flush(timeout=max(0.0, deadline - time.monotonic()))
    end = time.monotonic()
    conn.send({"start": start, "end": end, "received": books.total,
               "predictions": predictor.predictions, "messages": predictor.messages_out,
               "full_turns": predictor.full_turns, "rss_mib": rss_mib()})
    predictor.node.close(1.0)


def prediction_watcher(conn: Any, address: BrokerAddress, prefix: str, n: int, qos: int = 1,
                       timeout: float = 120.0) -> None:
    """A process of its own that receives predictions until n have come (or the timeout) and
    sends each one's arrival time minus its reading's publish time (the reading's ``ts``), ms."""
    arrived: list[float] = []

    def on_prediction(topic: str, payload: bytes) -> None:
        arrived.append(time.time() - orjson.loads(payload)["ts"])

    node = Node(f"bench-watch-{prefix}", address,
                subscriptions=[(Topics(prefix).predictions_filter, qos)], handler=on_prediction)
    node.connect()
    conn.send({"ready": True})
    conn.recv()
    deadline = time.monotonic() + timeout
    while len(arrived) < n and time.monotonic() < deadline:
        node.poll(0.01)
    conn.send({"ms": [a * 1000.0 for a in arrived]})
    node.close(1.0)


def latency(address: BrokerAddress, rate: float, qos: int, seconds: float,
            devices: int = 100) -> dict[str, float]:
    """Single readings at ``rate`` a second for ``seconds`` to a predictor process; each
    prediction's arrival (at a watcher process, so neither the publisher's work nor the
    watcher's delays the other) minus its reading's publish time. ``predictions``: arrived;
    ``predicted``: what the predictor says it sent."""
    prefix = new_prefix()
    topics = Topics(prefix)
    sim = Backlog.build(devices, 1, devices=devices).sim
    n = int(rate * seconds)
    spec = {"address": address, "prefix": prefix, "n": n, "qos": qos, "timeout": seconds + 60.0}
    children = [Child("predictor", **spec), Child("watcher", **spec)]
    # no in-flight limit: paho's 100 would queue QoS 1 readings here, not at the predictor
    node = Node(f"bench-lat-{prefix}", address, session=Session(max_inflight=0))
    try:
        for child in children:
            child.receive(60.0)
        node.connect()
        for child in children:
            child.go()
        start, i = time.monotonic(), 0
        while i < n:  # paced in steps: what is due now, then the network
            due = min(n, int((time.monotonic() - start) * rate) + 1)
            while i < due:
                index = i % devices
                dev = sim.devices[index]
                node.publish(topics.reading(dev.site, dev.device),
                             encode_reading(sim.reading(index, time.time())), qos=qos)
                i += 1
            node.poll(0.0005)
        node.flush(seconds + 60.0)  # every reading out before we wait (and stop polling)
        result, watched = (child.receive(seconds + 70.0) for child in children)
    finally:
        node.close(1.0)
        for child in children:
            child.stop()
    ms = watched["ms"]
    if not ms:
        raise RuntimeError("no prediction arrived")
    return {"p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2),
            "predictions": len(ms), "predicted": result["predictions"], "sent": n}


def bench_serving(n: int = 40_000, batch_n: int = 200_000, repeats: int = 2,
                  latency_s: float = 5.0, progress: Progress | None = None, **_: Any
                  ) -> list[dict[str, Any]]:
    """Predictor against gateway per (QoS, batch) mode, the best of ``repeats`` each; then the
    latency at half the predictor's single-reading capacity, QoS 0 and 1."""
    rows = []
    capacity: dict[int, float] = {}
    with own_broker() as address:
        for qos, batch in MODES:
            readings = n if batch == 1 else batch_n
            backlog = Backlog.build(readings, batch)
            stream = f"QoS {qos}, {batch} per message"
            best = {"gateway": 0.0, "predictor": 0.0}
            done = {}
            for r in range(repeats):
                for kind in ("gateway", "predictor"):
                    if progress:
                        progress(f"serving {stream}: {kind} {r + 1}/{repeats}")
                    spec = {"n": readings, **({"qos": qos} if kind == "predictor" else {})}
                    [result] = run_backlog(address, backlog, qos, [(kind, spec)])
                    best[kind] = max(best[kind], _rate([result], readings))
                    done[kind] = result
            if batch == 1:
                capacity[qos] = best["predictor"]
            rows.append({"scenario": "serving", "stream": stream, "readings": readings,
                         "baseline": "gateway (learned readings/s)",
                         "baseline_per_s": round(best["gateway"]),
                         "per_s": round(best["predictor"]),
                         "ratio": round(best["predictor"] / best["gateway"], 3),
                         "predictions": done["predictor"]["predictions"],
                         "prediction_messages": done["predictor"]["messages"],
                         "learned": done["gateway"]["learned"]})
        for qos in (0, 1):
            rate = capacity[qos] / 2
            if progress:
                progress(f"serving latency: QoS {qos} at {rate:,.0f} readings/s")
            lat = latency(address, rate, qos, latency_s)
            rows.append({"scenario": "serving", "stream": f"latency, QoS {qos}, single readings "
                         f"at {rate:,.0f}/s (half capacity)", "readings": lat["sent"],
                         "baseline": "-", "per_s": round(rate), **lat})
    return rows
