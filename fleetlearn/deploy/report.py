"""The summary of a finished deployment, as the dict `up` prints and writes with `--report`."""

from __future__ import annotations

import time
from typing import Any

from fleetlearn.deploy.processes import task_problem


def truth_drifted_at(state: Any) -> float | None:
    """When the simulated fleet's truth drifted, in seconds into the watch (the clock of
    ``model.history``), or None: its wall-clock time, moved by the least gap between a model's
    wall-clock ``ts`` and when the monitor saw it."""
    drift = state.drift()
    if drift is None or not state.models:
        return None
    return round(drift[1] + min(m.at - m.ts for m in state.models), 3)


def deployment_report(deployment: Any) -> dict[str, Any]:
    """Readings accounted for, the model against the truth, prequential and federated error,
    dead letters, and every process with how it ended, from a finished
    :class:`~fleetlearn.deploy.up.LocalDeployment`.

    ``readings`` splits what was published (:meth:`~fleetlearn.deploy.state.DeploymentState.
    readings`); ``accounted`` is False when some of it is not accounted for (``up`` then
    exits with code 3); ``task_problem``: what a gateway said when it found the task does not
    fit the stream while the run drained (``up`` then exits with code 4)."""
    from fleetlearn.deploy.baselines import baselines  # learners: numba, after the run only

    d = deployment
    s, st = d.settings, d.state
    elapsed = max((d.fleet_stopped or time.monotonic()) - d.fleet_started, 1e-9)
    readings = st.readings()
    nodes = d.node_config
    secured = getattr(d, "secured", None)
    return {
        "broker": str(d.address), "own_broker": d.own_broker is not None,
        # up --secure: where the CA, the passwords and the signing keys are (False: plain)
        "secure": secured is not None, "secure_files": None if secured is None else {
            "dir": str(secured.files.path), "ca": str(secured.files.ca_cert),
            "credentials": str(secured.files.credentials_file), "trust": str(secured.trust)},
        "prefix": s.prefix, "seconds": round(elapsed, 3), "interrupted": d.interrupted,
        "settings": {"devices": s.devices, "sites": s.sites, "gateways": s.gateways,
                     "rate": s.rate, "batch": s.batch, "layout": s.layout, "qos": s.qos,
                     "seed": s.seed, "send_buffer": s.send_buffer,
                     "drain_timeout": s.drain_timeout,
                     "sync_every": nodes.get("sync", {}).get("sync_every"),
                     "lr": nodes.get("learner", {}).get("lr"),
                     "drift_at": s.drift_at,
                     "strategy": st.nodes.get("aggregator", {}).get("strategy")},
        "node_config": str(d.config_path),
        "readings": readings,
        "accounted": readings["unaccounted"] == 0,
        "task_problem": task_problem(d.children, st.nodes),
        "readings_per_s": readings["published"] / elapsed,
        "faults": s.faults or None,
        "ground_truth_check": st.ground_truth_check(),
        "model": st.model_summary(),
        "truth": None if d.truth is None else {
            "weights": d.truth.weights, "intercept": d.truth.intercept,
            "target": d.truth.target},
        "source": "replay" if s.replay else "simulated fleet",
        "prequential": {n: m.get("prequential", {}) for n, m in st.of_kind("gateway").items()},
        # lr = "auto": each gateway's step at the end (the fleet's choice); else None
        "lr": {n: m.get("lr") for n, m in st.of_kind("gateway").items() if m.get("lr_auto")}
        or None,
        # and their personal parts' own step (learners.personal), if they choose one
        "personal_lr": {n: m["personal_lr"] for n, m in st.of_kind("gateway").items()
                        if m.get("personal_lr")} or None,
        # the last model's announcement of the fleet's step (learners.steps), if any
        "step": st.last_model.notes.get("step") if st.last_model is not None else None,
        # and of a binary fleet's decision threshold (learners.imbalance), if any
        "threshold": st.last_model.notes.get("threshold") if st.last_model is not None else None,
        "federated": st.nodes.get("aggregator", {}).get("federated", {}),
        # the fleet's model against persistence, each gateway alone and one central learner,
        # on the samples the gateways learned (fleetlearn.deploy.baselines)
        "baselines": baselines(d.samples_dir, nodes),
        "predictions": st.nodes.get("predictor", {}).get("predictions", 0),
        # taken in, answered in how many messages, not predicted (by the gateways' reasons),
        # and turns that found more waiting than one turn reads (it fell behind)
        "predictor": {k: st.nodes.get("predictor", {}).get(k) for k in (
            "received", "prediction_messages", "not_predicted", "skipped", "full_turns",
            "models_refused", "personal_parts")},
        "deadletters": dict(st.deadletters),
        "ignored_metrics": dict(st.ignored),
        "processes": [c.record() for c in d.children],
        "broker_pid": getattr(d.own_broker, "_stopped_pid", None),
        "log_dir": str(d.log_dir),
        # the metrics over time (seconds into the watch, as model.history): for the plots
        "series": st.series.as_dict() | {"truth_drifted_at": truth_drifted_at(st)},
    }
