"""A whole deployment's families, from what `up`'s monitor keeps
(:class:`~fleetlearn.deploy.state.DeploymentState`): every node's latest snapshot, plus what
only the monitor sees (node status, dead letters, models, the readings' backlog).

Called from the HTTP server's thread while the monitor's thread updates the state: it takes
copies first (a dict's or list's copy is one step under the GIL; snapshots are replaced whole,
never changed in place).

>>> from fleetlearn.deploy.state import DeploymentState
>>> state = DeploymentState()
>>> state.on_metrics({"node": "fleet", "kind": "fleet", "published": 10})
>>> state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 7})
>>> state.on_status("gw-0", b"online"); state.on_deadletter("schema")
>>> fams = {f.name: f for f in deployment_families(state, now=0.0)}
>>> fams["fleetlearn_readings_backlog"].samples[0].value
3
>>> [(s.labels, s.value) for s in fams["fleetlearn_node_online"].samples]
[({'node': 'gw-0'}, 1)]
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import Metric

from fleetlearn.metrics.families import Families, add_node


def deployment_families(state: Any, now: float) -> list[Metric]:
    f = Families()
    for snapshot in list(dict(state.nodes).values()):
        add_node(f, snapshot, now)
    for node, online in sorted(dict(state.online).items()):
        f.add("fleetlearn_node_online", [node], int(online))
    f.add_each("fleetlearn_deadletters", [], dict(state.deadletters))
    f.add_each("fleetlearn_ignored_metrics", [], dict(state.ignored))
    f.add("fleetlearn_models_seen", [], len(list(state.models)))
    f.add("fleetlearn_readings_backlog", [], state.readings()["not_taken_in"])
    return f.families()
