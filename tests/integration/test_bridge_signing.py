"""Signatures in a hierarchy, over a real bridge: a site broker bridged (hierarchical) to a core
on loopback; every node has its own key and the one trust file. The site aggregator signs its
site updates and its site models with its ``site_aggregator`` key named ``site-s0``; the core
accepts the site updates, the site aggregator adopts the core's signed global model, and the
site's gateway and predictor adopt the re-broadcast site model. An update for ``site-s0`` signed
by a trusted *gateway* key named ``site-s0`` is refused at the core as ``wrong_signer``, counted
and dead-lettered."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from broker.address import BrokerAddress
from broker.keyring import Keyring, read_trust, write_private, write_trust
from broker.messages import Reading
from broker.reading_codec import encode_reading
from broker.signing import PrivateKey, TrustedKey, TrustSet, sign, split, verify
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.predictor import Predictor, PredictorConfig
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.site_aggregator import SiteAggregator, SiteConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration]

SPEC = FeatureSpec(("a", "b"), "y")
#: node -> role of its key; "mallory" is a trusted gateway key that names itself site-s0
ROLES = {"aggregator": "aggregator", "site-s0": "site_aggregator", "gw-s0": "gateway",
         "mallory": "gateway"}


def keys(tmp: Path) -> tuple[dict[str, PrivateKey], Path]:
    """A key file per node and the trust file of all their public keys."""
    made = {node: PrivateKey.generate() for node in ROLES}
    trust = tmp / "trust.toml"
    write_trust(trust, [TrustedKey(k.kid, "site-s0" if node == "mallory" else node,
                                   ROLES[node], k.public) for node, k in made.items()])
    for node, key in made.items():
        write_private(tmp / f"{node}.key", key.to_pem())
    return made, trust


@pytest.mark.timeout(90)
def test_signed_site_updates_and_site_models_cross_the_bridge(core_broker, site_brokers,
                                                              prefix, tmp_path):
    from gateway.service import Gateway  # numba: only where a gateway runs

    made, trust = keys(tmp_path)
    ring = lambda node: Keyring(tmp_path / f"{node}.key", trust)  # noqa: E731
    t = Topics(prefix)
    core_address = BrokerAddress(port=core_broker.port)
    site_address = BrokerAddress(port=site_brokers(core_broker.port, "s0",
                                                   hierarchical=True).port)
    core = Aggregator(AggregatorConfig(federation=FederationConfig(
        SyncRounds(round_timeout=2), quorum=1), keyring=ring("aggregator")), t, core_address)
    site = SiteAggregator(AggregatorConfig(federation=FederationConfig(
        SyncRounds(round_timeout=30), quorum=1), keyring=ring("site-s0")), t, site_address,
        SiteConfig("s0", up_interval=0.2))
    gateway = Gateway(GatewayConfig("gw-s0", SPEC, sync_every=25, sync_interval=60,
                                    check_after=0, keyring=ring("gw-s0")), t, site_address)
    predictor = Predictor(PredictorConfig(keyring=Keyring(None, trust)), t, site_address)
    at_core = Recorder(core_address, t.updates_filter, t.deadletter_filter)
    at_site = Recorder(site_address, t.model)
    threads = [ServiceThread(s) for s in (core, site, gateway, predictor)]
    rng, seq = random.Random(3), 0
    try:
        for thread in threads:
            thread.__enter__()
        for _ in range(200):  # bounded: 200 x 25 readings at most
            for _ in range(25):
                a, b = rng.uniform(-2, 2), rng.uniform(-2, 2)
                at_site.publish(t.reading("s0", "s0-d1"), encode_reading(Reading(
                    "s0-d1", seq, time.time(), {"a": a, "b": b, "y": 2 * a - b + 1})))
                seq += 1
            at_site.wait(lambda n=seq: gateway.learned >= n - 1, 20, "the gateway to learn")
            if site.global_version >= 2 and gateway.local.base_version > site.global_version:
                break
        # the core took the signed site updates, and the site adopted its signed global models
        # (a gateway update on a site model the site has moved past is stale: not a signature)
        assert core.accepted >= 2 and set(core.refused) <= {"stale"}, dict(core.refused)
        assert site.globals_adopted >= 2 and set(site.refused) <= {"stale"}, dict(site.refused)
        # each site model on the site broker is signed by site-s0's site_aggregator key
        signers = {verify(p, TrustSet(read_trust(trust)), "model")[1]
                   for p in at_site.on(t.model)}
        assert {(k.name, k.role) for k in signers} == {("site-s0", "site_aggregator")}
        # and adopted by the site's gateway and predictor, which refused none
        at_site.wait(lambda: predictor.model is not None
                     and predictor.model.version == site.federation.version, 20,
                     "the predictor to adopt the last site model")
        assert gateway.local.base_version >= 2 and not gateway.other_rejected
        assert not predictor.refused, dict(predictor.refused)

        # a trusted gateway key named site-s0 re-signs a real site update: refused
        at_core.wait(lambda: bool(at_core.on(t.update("site-s0"))), 20, "a site update")
        body = split(at_core.on(t.update("site-s0"))[-1])[0]
        at_core.publish(t.update("site-s0"), sign(body, made["mallory"], "update"))
        at_core.wait(lambda: core.refused["wrong_signer"] == 1, 20, "the forgery refused")
        at_core.wait(lambda: any(topic == t.deadletter(core.node_id)
                                 and b"wrong_signer" in p for topic, p in at_core.messages),
                     20, "the forgery dead-lettered")
    finally:
        for thread in reversed(threads):
            if thread.thread.is_alive():
                thread.__exit__(None, None, None)
        for rec in (at_core, at_site):
            rec.close()
