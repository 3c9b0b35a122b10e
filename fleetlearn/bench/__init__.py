"""`fleetlearn bench`: measured side by side, as ratios against a baseline of the same run.

One module per scenario; the ones that need a broker start their own:

- ``cleaning`` (:mod:`.cleaning`): the gateway's validation + cleaning against orjson alone.
- ``learning`` (:mod:`.learning`): the learning core and its prequential R² on real weather,
  against River (and persistence).
- ``ingest`` (:mod:`.ingest`): a gateway against a raw paho subscriber on the same backlog,
  QoS 0 / 1, single readings and batches.
- ``sync`` (:mod:`.sync`): from a round's first update to every learner having adopted its
  model, p50 / p99, 2 / 8 / 32 learners.
- ``scale`` (:mod:`.ingest`): 2 gateways on two partitions against 1; one gateway from 100 to
  10,000 devices.
- ``memory`` (:mod:`.memory`): every node's RSS after N readings of a deployment, and its slope
  over a soak.
- ``drift`` (:mod:`.drift`): how fast the deployment reacts to a change of the truth, by policy.
- ``signing`` (:mod:`.signing`): verifying a model's signature against a gateway adopting it.
- ``security`` (:mod:`.security`): ingest over TLS, sync latency over TLS and with signatures,
  each against plain in one run, and the ``signing`` figures: issue #13's Performance goals.
- ``serving`` (:mod:`.serving`): a predictor's predictions/s against a gateway's learned
  readings/s, and the latency from publish to prediction at half its capacity.
- ``topology`` (:mod:`.topology`): messages and bytes a second into the core broker, bridged +
  hierarchical against flat (3 sites x 2 gateways), and seconds from healing a site's cut link
  to a global model that includes the site again.

A scenario is a function ``(progress=..., **options) -> rows`` named in :data:`SCENARIOS`; its
module is imported when it runs, so ``fleetlearn bench --scenario cleaning`` never loads paho
subscribers or a deployment. Adding one is a module and a line here.

>>> list(SCENARIOS)
['cleaning', 'learning', 'ingest', 'sync', 'scale', 'memory', 'drift', 'signing', 'security',
 'serving', 'topology']
>>> callable(scenario("cleaning"))
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Scenario = Callable[..., list[dict[str, Any]]]

#: Every scenario: its name and ``module:function``.
SCENARIOS: dict[str, str] = {
    "cleaning": "fleetlearn.bench.cleaning:bench_cleaning",
    "learning": "fleetlearn.bench.learning:bench_learning",
    "ingest": "fleetlearn.bench.ingest:bench_ingest",
    "sync": "fleetlearn.bench.sync:bench_sync",
    "scale": "fleetlearn.bench.ingest:bench_scale",
    "memory": "fleetlearn.bench.memory:bench_memory",
    "drift": "fleetlearn.bench.drift:bench_drift",
    "signing": "fleetlearn.bench.signing:bench_signature_cost",
    "security": "fleetlearn.bench.security:bench_security",
    "serving": "fleetlearn.bench.serving:bench_serving",
    "topology": "fleetlearn.bench.topology:bench_topology",
}


def scenario(name: str) -> Scenario:
    """The function that runs a scenario, its module imported now."""
    module, _, function = SCENARIOS[name].partition(":")
    return getattr(importlib.import_module(module), function)
