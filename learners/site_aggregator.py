"""A site's aggregator in a hierarchical deployment: the aggregator of the site's gateways on
the site broker, and one learner (``site-S``) of the core's aggregator.

It merges its gateways' updates exactly as the aggregator does (same strategies, hygiene,
robust merges and rollback guard) and broadcasts each site model retained on the site broker,
so the site's gateways and predictors never need the core. After each merge of gateway updates
it has a *site update* for the core (``{p}/learn/update/site-S``, which the site's bridge
carries up, ``broker/bridge.py``): the site model's parameters, the samples and moments of
every merge since the site adopted its global version (cumulative, as a gateway's update is
since its model: the core counts only what is new), the drift flags and loss. It goes up at
most once every ``up_interval`` seconds (a later one holds the earlier: a slow link carries
one, not every merge's), and always before the site adopts a newer global model, so nothing
the site learned is left out. The core merges site updates like any learner's
(sample-weighted).

The core's model reaches the site as ``{p}/learn/global/model`` (the bridge renames it). A
global model newer than the one adopted becomes the next *site* version (site versions only go
up; the model's notes say ``global_version``), broadcast to the site's gateways. The same
global version again (the retained one after a reconnect) changes nothing; an older one is
refused as ``global_stale``, one for another task as ``global_wrong_task``, an undecodable or
badly signed one as ``global_<reason>``: counted and dead-lettered. A global model that comes
before the site's own retained model was read waits for it, so a restart never goes back.

It reads the global model on a connection of its own (clean: the retained global model comes
on every connect), beside the aggregator's kept session.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from broker.address import BrokerAddress
from broker.bridge import site_aggregator_id
from broker.client import Node
from broker.keyring import SignatureRefused
from broker.messages import Model, Update
from broker.model_codec import decode_model, encode_update
from broker.topics import Topics
from broker.wire import DecodeError
from learners.aggregator import Aggregator, AggregatorConfig
from learners.ledger import Contribution
from learners.reporting import federated_metrics

log = logging.getLogger(__name__)


def site_update(learner: str, seq: int, base_version: int, model: Model,
                used: list[Contribution], ts: float, carried: Update | None = None) -> Update:
    """The update a site sends up after a merge of ``used``: the site model's parameters;
    the samples and moments of every merge since the site adopted global ``base_version``
    (``carried``: its previous update on that base; the core takes a learner's updates on one
    base as cumulative and counts only what is new); the drift flags and recent loss of
    this merge's updates.

    >>> import numpy as np
    >>> from broker.messages import LinearParams, Scaler
    >>> p = LinearParams(("x",), np.array([2.0]), 1.0)
    >>> s = Scaler(10, np.zeros(2), np.ones(2))
    >>> m = Model(4, 0.0, 30, ("gw-0", "gw-1"), "y", p, s + s + s)
    >>> c = [Contribution("gw-0", 1, 3, 0, 10, np.zeros(2), np.zeros(2), s, 0,
    ...                   {"recent_loss": 1.0, "recent_n": 10.0}),
    ...      Contribution("gw-1", 1, 3, 0, 20, np.zeros(2), np.zeros(2), s + s, 1,
    ...                   {"recent_loss": 4.0, "recent_n": 30.0})]
    >>> u = site_update("site-s0", 7, 2, m, c, 0.0)
    >>> u.n, u.scaler.count, u.base_version, u.drift, u.metrics["recent_loss"], u.params == p
    (30, 30, 2, 1, 3.25, True)
    >>> later = site_update("site-s0", 8, 2, m, c[:1], 0.0, carried=u)
    >>> later.n, later.scaler.count, later.drift
    (40, 40, 0)
    >>> import dataclasses  # the task's local time goes up with it (the core's ledger checks it)
    >>> site_update("site-s0", 9, 2, dataclasses.replace(m, local_time={"default": "+09:00"}),
    ...             c, 0.0).local_time
    {'default': '+09:00'}
    """
    scaler = used[0].scaler if carried is None else carried.scaler + used[0].scaler
    for c in used[1:]:
        scaler = scaler + c.scaler
    n = sum(c.n for c in used) + (0 if carried is None else carried.n)
    weights = [(c.metrics.get("recent_loss"), c.metrics.get("recent_n", 0.0)) for c in used]
    weights = [(loss, n) for loss, n in weights if loss is not None and n > 0]
    total = sum(n for _, n in weights)
    metrics = {"n": float(n)}
    if total:
        metrics |= {"recent_loss": sum(loss * n for loss, n in weights) / total,
                    "recent_n": total}
    return Update(learner=learner, seq=seq, base_version=base_version,
                  n=n, target=model.target, params=model.params, ts=ts,
                  scaler=scaler, kind=model.kind, metrics=metrics,
                  drift=sum(c.drift for c in used), local_time=model.local_time)


@dataclass(frozen=True)
class SiteConfig:
    """What makes an aggregator a site's."""

    site: str
    #: Seconds between two site updates up the bridge, at most (0: after every merge).
    up_interval: float = 1.0

    def __post_init__(self) -> None:
        site_aggregator_id(self.site)
        if self.up_interval < 0:
            raise ValueError("the up interval must be >= 0 seconds")


class SiteAggregator(Aggregator):
    """The aggregator of a site (node id ``site-SITE``) on the site's broker."""

    kind = "site_aggregator"

    def __init__(self, config: AggregatorConfig, topics: Topics, broker: BrokerAddress,
                 site: SiteConfig) -> None:
        super().__init__(dataclasses.replace(config, node_id=site_aggregator_id(site.site)),
                         topics, broker)
        self.site, self.up_interval = site.site, site.up_interval
        self.global_version = 0  # the newest global model this site builds on
        self.waiting: tuple[str, bytes] | None = None  # a global model before the resume
        self.up_seq = time.time_ns() // 1000  # a gateway's seq rule: up across restarts
        self.sent_up = self.globals_adopted = 0
        #: what the site learned since it adopted its global version, as one update
        self.since_global: Update | None = None
        self.unsent, self.unsent_drift = False, 0
        if self.up_interval:
            self.node.every(self.up_interval, self.send_up)
        self.globals = Node(f"{self.node_id}-global", broker,
                            subscriptions=[(topics.global_model, 1)], handler=self.take_global)
        self.companions.append(self.globals)

    # ------------------------------------------------------------------ down

    def take_global(self, topic: str, payload: bytes) -> None:
        if not self.resumed:  # the site's own retained model first: versions never go back
            self.waiting = (topic, payload)
            return
        try:
            body, _ = self.keys.check(payload, "model", "aggregator")
            model = decode_model(body, self.config.max_payload)
        except (DecodeError, SignatureRefused) as exc:
            self.refuse(topic, payload, f"global_{exc.reason}", getattr(exc, "detail", str(exc)))
            return
        if model.version == self.global_version:
            return  # the retained one again, after a reconnect
        if model.version < self.global_version:
            self.refuse(topic, payload, "global_stale", f"global v{model.version} after "
                        f"v{self.global_version}")
            return
        ledger = self.federation.ledger
        if ledger.features is not None and (tuple(model.params.features) != tuple(
                ledger.features) or model.target != ledger.target or model.kind != ledger.kind):
            self.refuse(topic, payload, "global_wrong_task", f"global v{model.version} learns "
                        f"{list(model.params.features)} -> {model.target} ({model.kind})")
            return
        self.send_up()  # what was learned on the old global version goes up first
        local = dataclasses.replace(model, version=self.federation.version + 1,
                                    notes={**model.notes, "global_version": model.version})
        self.federation.resume(local)
        self.global_version, self.since_global = model.version, None
        self.globals_adopted += 1
        state = self.federation.to_state()
        self.publish_model(local, on_ack=lambda: self.checkpoint(local.version, state))
        log.info("%s: global model v%d adopted as site model v%d", self.node_id,
                 model.version, local.version,
                 extra={"node": self.node_id, "version": local.version})

    def on_resumed(self) -> None:
        model = self.federation.model
        if model is not None:
            self.global_version = max(self.global_version,
                                      int(model.notes.get("global_version", 0)))
        super().on_resumed()
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            self.take_global(*waiting)

    # ------------------------------------------------------------------ up

    def take_update(self, topic: str, payload: bytes) -> None:
        if topic != self.topics.update(self.node_id):  # our own, on its way up: not a learner's
            super().take_update(topic, payload)

    def merge_if_ready(self) -> None:
        pending = list(self.federation.strategy.pending.values())
        version = self.federation.version
        super().merge_if_ready()
        if self.federation.version == version or self.federation.model is None:
            return
        left = {id(c) for c in self.federation.strategy.pending.values()}
        used = [c for c in pending if id(c) not in left]
        if used:
            self.since_global = site_update(self.node_id, 0, self.global_version,
                                            self.federation.model, used, time.time(),
                                            self.since_global)
            self.unsent, self.unsent_drift = True, self.unsent_drift + self.since_global.drift
            if not self.up_interval:
                self.send_up()

    def send_up(self) -> None:
        """The site update, if the site learned anything since the last one went up."""
        if not self.unsent or self.since_global is None:
            return
        self.up_seq += 1
        # with the site's prequential metrics (its gateways', sample-weighted) for the core's view
        update = dataclasses.replace(self.since_global, seq=self.up_seq, ts=time.time(),
                                     drift=self.unsent_drift, metrics={
                                         **self.since_global.metrics,
                                         **federated_metrics(self.learner_metrics)})
        self.node.publish(self.topics.update(self.node_id),
                          self.keys.sign(encode_update(update), "update"), qos=1)
        self.unsent, self.unsent_drift = False, 0
        self.sent_up += 1

    def publish_model(self, model: Model, on_ack=None) -> bytes:
        """Every site model says which global version it builds on."""
        if model.notes.get("global_version") != self.global_version:
            model = dataclasses.replace(model, notes={**model.notes,
                                                      "global_version": self.global_version})
        return super().publish_model(model, on_ack)

    def counters(self) -> dict:
        return {**super().counters(), "site": self.site, "global_version": self.global_version,
                "globals_adopted": self.globals_adopted, "site_updates_sent": self.sent_up}
