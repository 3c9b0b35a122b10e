"""What the live page shows, as one JSON-able dict made from a watcher's state.

Pure: :func:`snapshot` reads a :class:`~fleetlearn.deploy.state.DeploymentState` (what the
monitor received), the rates measured over the last seconds and the wall clock, and gives the
object the page draws; nothing in it is HTML (the page puts every string in as text).

>>> import numpy as np
>>> from broker.messages import LinearParams, Model, Scaler
>>> from fleetlearn.deploy.state import DeploymentState
>>> state = DeploymentState(known={"aggregator": "aggregator", "gw-0": "gateway"})
>>> state.on_status("gw-0", b"online")
>>> state.on_metrics({"node": "gw-0", "kind": "gateway", "ts": 99.0, "learned": 7,
...                   "prequential": {"n": 7, "mae": 0.4, "r2": 0.8}}, "gw-0", 1.5)
>>> params = LinearParams(("a",), np.array([1.0]), 0.0)
>>> state.on_model(Model(3, 95.0, 7, ("gw-0",), "y", params, Scaler.empty(1)), at=1.0)
>>> snap = snapshot(state, now=100.0, rates={"learned": 2.0})
>>> snap["model"]["version"], snap["model"]["age"], snap["curves"]["gw-0"]
(3, 5.0, [[1.5, 0.4, 0.8]])
>>> [(n["name"], n["online"], n["last_report"]) for n in snap["nodes"]]
[('aggregator', None, None), ('gw-0', True, 1.0)]
"""

from __future__ import annotations

from typing import Any

from fleetlearn.deploy.state import DeploymentState

#: Most points of one curve the page gets (a long run's are thinned evenly, the last kept).
CURVE_POINTS = 300
#: Dead letters the page lists, newest first.
LETTERS = 10


def thin(points: list[Any], limit: int = CURVE_POINTS) -> list[Any]:
    """At most ``limit`` of ``points``, evenly spread, the last one always among them.

    >>> thin(list(range(10)), 4)
    [0, 3, 6, 9]
    >>> thin([1, 2], 4)
    [1, 2]
    """
    if len(points) <= limit:
        return list(points)
    step = -(-(len(points) - 1) // (limit - 1))  # ceiling: at most limit - 1 steps
    kept = points[::step]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def metric_names(state: DeploymentState) -> dict[str, str]:
    """The prequential metrics the curves show: MAE and R², or for a binary task log-loss and
    accuracy.

    >>> metric_names(DeploymentState())["error"]
    'mae'
    """
    series = [*state.series.gateways.values(), state.series.federated]
    binary = any("accuracy" in value for points in series for _, value in points[-1:])
    if binary:
        return {"error": "log_loss", "quality": "accuracy", "error_name": "log-loss",
                "quality_name": "accuracy"}
    return {"error": "mae", "quality": "r2", "error_name": "MAE", "quality_name": "R²"}


def curves(state: DeploymentState, names: dict[str, str]) -> dict[str, list[list[Any]]]:
    """Per gateway, and ``federated`` (the aggregator's view), ``[at, error, quality]``."""
    error, quality = names["error"], names["quality"]
    lines = {**state.series.gateways, "federated": state.series.federated}
    return {name: [[at, value.get(error), value.get(quality)] for at, value in thin(points)]
            for name, points in lines.items() if points}


def totals(state: DeploymentState) -> dict[str, int]:
    """The running totals whose rates the page shows: readings published, learned and
    rejected, and predictions made."""
    readings = state.readings()
    return {"published": readings["published"], "learned": readings["learned"],
            "rejected": sum(readings["rejected"].values()),
            "predictions": sum(int(m.get("predictions", 0) or 0)
                               for m in state.of_kind("predictor").values())}


def nodes(state: DeploymentState, now: float,
          processes: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every node known, seen reporting or with a retained status: its kind, online (True,
    False, or None while no status came), the model version it reports and how many seconds
    ago its last report was made (by its clock), and, for a process `up` started, its pid and
    exit code (None while it runs: a node killed shows offline with a signal's code, -9)."""
    known = state.known or {}
    rows = []
    for name in sorted({*known, *state.online, *state.nodes}):
        metrics, process = state.nodes.get(name, {}), (processes or {}).get(name, {})
        ts = metrics.get("ts")
        rows.append({
            "name": name, "kind": known.get(name) or metrics.get("kind"),
            "online": state.online.get(name),
            "version": metrics.get("model_version"),
            "last_report": round(now - ts, 1) if isinstance(ts, int | float) else None,
            "pid": process.get("pid"), "exit_code": process.get("exit_code"),
        })
    return rows


def model(state: DeploymentState, now: float) -> dict[str, Any]:
    """The latest model: version, age (seconds since the aggregator made it), samples,
    contributors, its error against the truth (simulated fleets), and versions over time."""
    last = state.last_model
    seen = state.models[-1] if state.models else None
    return {
        "version": last.version if last else None,
        "age": round(now - last.ts, 1) if last and last.ts else None,
        "samples": last.n if last else None,
        "contributors": list(last.contributors) if last else [],
        "weight_error": seen.weight_error if seen else None,
        "versions": thin([[m.at, m.version] for m in state.models]),
    }


def snapshot(state: DeploymentState, now: float, rates: dict[str, float] | None = None,
             processes: dict[str, dict[str, Any]] | None = None,
             ended: str | None = None, connected: bool = True) -> dict[str, Any]:
    """Everything the page shows at wall-clock time ``now``; ``ended``: why the deployment is
    over (the page's last update), None while it runs; ``connected``: whether the watcher has
    its broker (what it shows is as old as the loss, if not)."""
    names = metric_names(state)
    return {
        "ts": now, "ended": ended, "broker_connected": connected,
        "model": model(state, now),
        "metrics": names, "curves": curves(state, names),
        "nodes": nodes(state, now, processes),
        "totals": totals(state),
        "rates": {k: round(v, 1) for k, v in (rates or {}).items()},
        "deadletters": {"total": sum(state.deadletters.values()),
                        "by_reason": dict(state.deadletters.most_common()),
                        "recent": list(reversed(state.recent_deadletters))[:LETTERS]},
    }
