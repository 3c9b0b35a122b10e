"""Hierarchical aggregation over real bridges: two site brokers bridged (hierarchical) to a
core; at each site a gateway and the site aggregator; at the core the aggregator, which merges
the two site updates. The global model comes down, each site adopts it as its next site model,
and it converges to the truth."""

from __future__ import annotations

import random
import time

import numpy as np
import orjson
import pytest

from broker.address import BrokerAddress
from broker.messages import Reading
from broker.reading_codec import encode_reading
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.site_aggregator import SiteAggregator
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration]

SPEC = FeatureSpec(("a", "b"), "y")
TRUTH = np.array([2.0, -1.0, 1.0])  # y = 2a - b + 1


def error(model) -> float:
    got = np.append(model.params.weights, model.params.intercept)
    return float(np.linalg.norm(got - TRUTH) / np.linalg.norm(TRUTH))


class Site:
    """A site's gateway and aggregator on its broker, and a sender of its readings."""

    def __init__(self, name: str, address: BrokerAddress, t: Topics) -> None:
        from gateway.service import Gateway  # numba: only where a gateway runs

        self.name, self.t, self.seq = name, t, 0
        self.rng = random.Random(name)
        self.aggregator = SiteAggregator(AggregatorConfig(federation=FederationConfig(
            SyncRounds(round_timeout=30), quorum=1)), t, address, name)
        self.gateway = Gateway(GatewayConfig(f"gw-{name}", SPEC, sync_every=25,
                                             sync_interval=60, check_after=0), t, address)
        self.sender = Recorder(address, t.model, t.global_model)

    def feed(self, n: int = 25) -> None:
        device = f"{self.name}-d1"
        for _ in range(n):
            a, b = self.rng.uniform(-2, 2), self.rng.uniform(-2, 2)
            reading = Reading(device, self.seq, time.time(), {"a": a, "b": b,
                                                              "y": 2 * a - b + 1})
            self.sender.publish(self.t.reading(self.name, device), encode_reading(reading))
            self.seq += 1
        self.sender.wait(lambda: self.gateway.learned >= self.seq - 1, 20,
                         f"{self.name}'s gateway to learn")


@pytest.mark.timeout(90)
def test_two_sites_converge_through_their_site_aggregators(core_broker, site_brokers, prefix):
    t = Topics(prefix)
    core_address = BrokerAddress(port=core_broker.port)
    core = Aggregator(AggregatorConfig(federation=FederationConfig(
        SyncRounds(round_timeout=2), quorum=2)), t, core_address)
    watch = Recorder(core_address, t.model, t.updates_filter)
    sites = [Site(name, BrokerAddress(port=site_brokers(core_broker.port, name,
                                                        hierarchical=True).port), t)
             for name in ("s0", "s1")]
    threads = [ServiceThread(core)] + [ServiceThread(s.aggregator) for s in sites] + [
        ServiceThread(s.gateway) for s in sites]
    try:
        for thread in threads:
            thread.__enter__()
        for _ in range(400):  # bounded: 400 x 25 readings a site at most
            for site in sites:
                site.feed()
            watch.poll()
            if core.federation.model is not None and error(core.federation.model) < 0.05:
                break
        final = core.federation.model
        assert final is not None and error(final) < 0.05, \
            f"global model not within 5 % of the truth: {final}"
        # only the site aggregators' updates reached the core, and both sites contributed
        learners = {t.last_level(topic) for topic, _ in watch.messages if "/update/" in topic}
        assert learners == {"site-s0", "site-s1"}
        assert set(core.federation.learners) == {"site-s0", "site-s1"}
        assert set(core.refused) <= {"stale"}, dict(core.refused)
        for site in sites:
            site.sender.wait(lambda s=site: s.aggregator.global_version >= 2, 20,
                             "the site to adopt a global model")
            models = [orjson.loads(p) for p in site.sender.on(t.model)]
            versions = [m["version"] for m in models]
            assert versions == sorted(versions) and len(set(versions)) == len(versions)
            built_on = [m["notes"]["global_version"] for m in models]
            assert built_on == sorted(built_on) and built_on[-1] >= 1
            assert site.aggregator.sent_up > 0 and set(site.aggregator.refused) <= {"stale"}
    finally:
        for thread in reversed(threads):
            if thread.thread.is_alive():
                thread.__exit__(None, None, None)
        for rec in [watch, *(s.sender for s in sites)]:
            rec.close()
