"""The fleet's model against its baselines, on exactly the readings the gateways learned.

Each gateway of `up` writes the samples it learned, and the prediction it made of each before
learning it (:mod:`gateway.sample_log`). From those, with the gateways' own learner settings:

- ``persistence``: a device's previous target predicts its next;
- ``local``: each gateway learning alone, on its samples in its order;
- ``central``: one learner over every sample, in the order of the readings' clocks;
- ``federated``: what the global model predicted (the fleet's model as each gateway held it);
- ``personalised``: with personal parts, what the gateways predicted with them.

Each strategy scored per gateway, as their sample-weighted mean, and pooled over every sample
(:func:`fleetlearn.evaluate.table.figures`, the table of ``fleetlearn evaluate``).

>>> import tempfile, pathlib
>>> from gateway.sample_log import SampleLog
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> for g in range(2):
...     log = SampleLog(d / f"gw-{g}.npz", ("a",))
...     X = rng.normal(size=(300, 1)); y = 2.0 * X[:, 0] + 1.0
...     log.add(X, y, y + 0.1, [f"d{g}"] * 300, np.arange(300.0)); log.save()
>>> out = baselines(d, {"task": {"kind": "regression"}})
>>> sorted(out["strategies"]), out["samples"], out["dropped"]
(['central', 'federated', 'local', 'persistence'], 600, 0)
>>> round(out["strategies"]["federated"]["pooled"]["mae"], 6)
0.1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fleetlearn.evaluate.settings import EvaluateSettings
from fleetlearn.evaluate.strategies import central, local, persistence
from fleetlearn.evaluate.table import figures
from gateway.features import FeatureSpec
from gateway.sample_log import Samples, load
from learners.imbalance import parse_threshold

#: What each strategy means, one sentence each (the summary and docs say it).
MEANING = {
    "persistence": "each device's previous target as its prediction",
    "local": "each gateway learning alone from its own devices",
    "central": "one learner over every reading, in the order of their clocks",
    "federated": "the fleet's model, as each gateway held it when the reading came",
    "personalised": "the fleet's model mixed with each site's (or device's) own part",
}


def baselines(samples_dir: Path, node_config: dict[str, dict[str, Any]]
              ) -> dict[str, Any] | None:
    """Every strategy's figures over the samples the gateways wrote to ``samples_dir``
    (``gw-K.npz``); None when there are none."""
    files = sorted(Path(samples_dir).glob("gw-*.npz"), key=lambda p: int(p.stem[3:]))
    kept = [load(f) for f in files]
    if not kept or not sum(len(s.y) for s in kept):
        return None
    X = np.concatenate([s.X for s in kept])
    y = np.concatenate([s.y for s in kept])
    gateway = np.concatenate([np.full(len(s.y), g, np.int64) for g, s in enumerate(kept)])
    task, learner = node_config.get("task", {}), node_config.get("learner", {})
    settings = EvaluateSettings(
        FeatureSpec(kept[0].features, "y"), kind=task.get("kind", "regression"),
        **{k: learner[k] for k in ("optimizer", "lr", "l2", "clip", "class_weight", "threshold")
           if k in learner})
    make = settings.learner
    k = len(kept)
    predictions = {"persistence": persistence(y, _device_codes(kept)),
                   "local": local(X, y, gateway, k, make),
                   "central": _central_by_clock(kept, X, y, make),
                   "federated": np.concatenate([s.predicted for s in kept])}
    personal = np.concatenate([s.personal for s in kept])
    if not np.isnan(personal).all():
        predictions["personalised"] = personal
    table = figures(settings.kind, predictions, y, gateway, k, np.ones(len(y), bool),
                    parse_threshold(settings.threshold))
    names = [f.stem for f in files]
    return {"samples": len(y), "dropped": sum(s.dropped for s in kept), "kind": settings.kind,
            "strategies": {s: _named(t, names) for s, t in table.items()},
            "meaning": MEANING}


def _device_codes(kept: list[Samples]) -> np.ndarray:
    """One integer per device id (a device's samples are all at one gateway, in order)."""
    _, codes = np.unique(np.concatenate([s.device for s in kept]), return_inverse=True)
    return codes


def _central_by_clock(kept: list[Samples], X: np.ndarray, y: np.ndarray, make: Any
                      ) -> np.ndarray:
    """One learner over every sample in the order of the readings' clocks (ties: by gateway,
    then as learned); its predictions in the samples' order."""
    order = np.argsort(np.concatenate([s.ts for s in kept]), kind="stable")
    out = np.empty(len(y))
    out[order] = central(X[order], y[order], make)
    return out


def _named(table: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The table's ``gw-K`` keys as the gateways' own names."""
    per = table["gateways"]
    return {**table, "gateways": {names[g]: per[f"gw-{g}"] for g in range(len(names))}}
