"""`fleetlearn bench --scenario drift`: how long the federated model takes to come back within
10 % of a simulated fleet's new ground truth, under each drift policy, in the same run.

Each policy runs a whole local deployment (`fleetlearn up`: its own broker, aggregator, two
gateways, predictor and fleet) whose hidden truth changes ``drift_at`` seconds in; the
baseline is the policy ``none`` (the drift is noted, nothing changes).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetlearn.deploy.up import LocalDeployment, UpSettings

POLICIES = ("none", "rescale", "reset")


def run_policy(policy: str, drift_at: float, duration: float, seed: int = 0) -> dict[str, Any]:
    """One deployment with a drift; the model figures of its report."""
    with tempfile.TemporaryDirectory(prefix=f"fleetlearn-drift-{policy}-") as log_dir:
        settings = UpSettings(duration=duration, drift_at=drift_at, drift_policy=policy,
                              seed=seed, log_dir=Path(log_dir))
        report = LocalDeployment(settings).run()
    model = report["model"]
    return {"policy": policy, "reactions": len(model["drift_reactions"]),
            "first_within_s": model["seconds_to_first_within_drifted"],
            "within_and_stays_s": model["seconds_to_recover"],
            "final_weight_error": model["weight_error"],
            "federated_r2": report["federated"].get("r2")}


def bench_drift(n: int = 0, repeats: int = 1, drift_at: float = 10.0, duration: float = 30.0,
                progress: Callable[[str], None] = lambda text: None) -> list[dict[str, Any]]:
    """Seconds to recover from a drift, per policy; ``n`` > 0 shortens the run to n seconds
    after the drift (for a smoke test)."""
    if n:
        duration = drift_at + n
    rows = []
    for i in range(repeats):
        runs = {}
        for p in POLICIES:
            progress(f"drift: policy {p}, run {i + 1} of {repeats} ({duration:.0f} s)")
            runs[p] = run_policy(p, drift_at, duration)
        base = runs["none"]["within_and_stays_s"]
        for row in runs.values():
            stays = row["within_and_stays_s"]
            rows.append({"scenario": "drift", "baseline": "policy none",
                         "baseline_s": base, **row,
                         "speedup": round(base / stays, 2) if base and stays else None})
    return rows
